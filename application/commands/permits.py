"""Use cases: residence permits (居住证) and their yearly endorsement."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.common import Stamp
from domain.residents import Resident


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
        return self._permit_command(
            resident_id, lambda r: r.issue_permit(number=number, issued_on=issued_on, stamp=stamp),
            expected_version, idempotency,
        )

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
