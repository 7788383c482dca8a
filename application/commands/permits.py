"""Use cases: residence permits (居住证) and their yearly endorsement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from uuid import UUID

import psycopg.errors
from eventsourcing.domain import Aggregate

from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.common import RuleViolated, Stamp
from domain.residents import PermitNumberClaim, Resident


class PermitCommands(OfficeApplication):
    def _permit_command(
        self, resident_id: UUID, act: Callable[[Resident], None], expected_version: int | None,
        idempotency: IdempotencyClaim | None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            act(resident)
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency)

    def apply_for_permit(
        self, resident_id: UUID, *, applied_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._permit_command(
            resident_id, lambda r: r.apply_for_permit(applied_on=applied_on, stamp=stamp), expected_version,
            idempotency,
        )

    def issue_permit(
        self, resident_id: UUID, *, number: str, issued_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Issue the permit with its number, claimed for this resident in the same save: a number
        another resident holds is refused (``permit_number_issued``), and two issues of one number
        racing write the same claim, so one is decided again and refused."""
        claim_id = self.vault.permit_claim_id(number)

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            claim = self.find(PermitNumberClaim, claim_id)
            if claim is not None:
                claim.check_free_for(resident.id, holder_erased=self._erased(claim.holder()))
            elif self._issued_before_claims(number, resident.id):
                raise RuleViolated("this residence-permit number was issued to another resident; check the number "
                                   "on the permit", rule="permit_number_issued", field="number")
            resident.issue_permit(number=number, issued_on=issued_on, stamp=stamp)
            if claim is None:
                return resident, [resident, PermitNumberClaim.claim(claim_id, resident_id=resident.id, stamp=stamp)]
            if claim.holder() != resident.id:
                claim.reclaim(resident_id=resident.id, stamp=stamp)
                return resident, [resident, claim]
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency)

    def _issued_before_claims(self, number: str, resident_id: UUID) -> bool:
        """A number issued before numbers were claimed (2026-11-29) has no claim: the residents'
        view holds it as written then (later ones are sealed, and claimed), and erased with its
        holder (found by a review: such a number could be issued again)."""
        try:
            with self.connection() as conn:
                row = conn.execute("SELECT 1 FROM residents WHERE upper(replace(permit_number, ' ', '')) = %s"
                                   " AND id <> %s LIMIT 1", ("".join(number.split()).upper(), resident_id)).fetchone()
        except psycopg.errors.UndefinedTable:  # no view yet: nothing was issued
            return False
        return row is not None

    def _erased(self, resident_id: UUID | None) -> bool:
        holder = self.find(Resident, resident_id) if resident_id is not None else None
        return holder is None or holder.erased_on is not None

    def endorse_permit(
        self, resident_id: UUID, *, endorsed_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._permit_command(
            resident_id, lambda r: r.endorse_permit(endorsed_on=endorsed_on, stamp=stamp), expected_version,
            idempotency,
        )

    def suspend_lapsed_permits(self, resident_ids: Iterable[UUID], stamp: Stamp) -> int:
        """The permit sweep: suspend each lapsed permit once. Returns how many it suspended."""
        suspended = 0
        for resident_id in resident_ids:
            result = self._permit_command(resident_id, lambda r: r.suspend_lapsed_permit(stamp), None, None)
            suspended += 1 if result.position else 0
        return suspended
