"""Use cases: operators, the sites they run, their employees, yearly reports and
sanitation inspections; and co-building pairings with their contributions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.privacy import NOTIFY_CHANNEL as PII_CHANNEL
from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.cobuilding import Pairing
from domain.common import Stamp
from domain.operators import Operator, SiteOperatorClaim, site_claim_id
from domain.residents import LegalBasis, Resident
from domain.sites import HousingSite


class OperatorCommands(OfficeApplication):
    def register_operator(self, *, operator_type: str, name: str, contact: str, area: str, stamp: Stamp,
                          idempotency: IdempotencyClaim | None = None) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            operator = Operator.register(operator_type=operator_type, name=name, contact=contact,
                                         area=self.place(area), stamp=stamp)
            return operator, [operator]

        return self._execute(decide, idempotency=idempotency)

    def _site_claim(self, site_id: UUID) -> SiteOperatorClaim | None:
        return self.find(SiteOperatorClaim, site_claim_id(site_id))

    def _operator_command(self, operator_id: UUID, act: Callable[[Operator], Sequence[Aggregate] | None],
                          expected_version: int | None, idempotency: IdempotencyClaim | None) -> CommandResult:
        """Act on an operator and save it with what else the act changed (a site's claim)."""

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            operator = self.load_current(Operator, operator_id, expected_version)
            others = act(operator) or []
            return operator, [operator, *others]

        return self._execute(decide, idempotency=idempotency)

    def assign_site_to_operator(self, operator_id: UUID, *, site_id: UUID, assigned_on: date, stamp: Stamp,
                                expected_version: int | None = None,
                                idempotency: IdempotencyClaim | None = None) -> CommandResult:
        """The operator starts running the site; the site's claim is saved with it, so of
        two operators racing for one site only one is stored (the other is decided again
        and refused: ``site_run_by_another_operator``)."""

        def act(operator: Operator) -> Sequence[Aggregate]:
            site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
            site.check_open()
            claim = operator.assign_site(self._site_claim(site_id), site_id=site_id, site_area=site.area,
                                         assigned_on=assigned_on, stamp=stamp)
            site.change_operator(operator_type=operator.operator_type, operator_name=operator.name,
                                 changed_on=assigned_on, stamp=stamp, operator_id=operator.id,
                                 field_name="assigned_on")
            return [claim, site]

        return self._operator_command(operator_id, act, expected_version, idempotency)

    def release_site_from_operator(self, operator_id: UUID, *, site_id: UUID, released_on: date, reason: str,
                                   stamp: Stamp, expected_version: int | None = None,
                                   idempotency: IdempotencyClaim | None = None) -> CommandResult:
        def act(operator: Operator) -> Sequence[Aggregate]:
            operator.check_runs(site_id)
            claim = self._site_claim(site_id)
            assert claim is not None, "an operator runs a site only with the site's claim"
            operator.release_site(claim, site_id=site_id, released_on=released_on, reason=reason, stamp=stamp)
            site = self.load(HousingSite, site_id, field_name="site_id")
            site.return_to_previous_operator(operator_id=operator.id, released_on=released_on, stamp=stamp)
            return [claim, site]

        return self._operator_command(operator_id, act, expected_version, idempotency)

    def link_operator_employee(self, operator_id: UUID, *, resident_id: UUID, linked_on: date, stamp: Stamp,
                               expected_version: int | None = None,
                               idempotency: IdempotencyClaim | None = None) -> CommandResult:
        def act(operator: Operator) -> None:
            resident = self.load_in_scope(Resident, resident_id, field_name="resident_id")
            operator.link_employee(resident=resident, linked_on=linked_on, stamp=stamp)

        return self._operator_command(operator_id, act, expected_version, idempotency)

    def unlink_operator_employee(self, operator_id: UUID, *, resident_id: UUID, unlinked_on: date, stamp: Stamp,
                                 expected_version: int | None = None,
                                 idempotency: IdempotencyClaim | None = None) -> CommandResult:
        return self._operator_command(
            operator_id, lambda o: o.unlink_employee(resident_id=resident_id, unlinked_on=unlinked_on, stamp=stamp),
            expected_version, idempotency)

    def file_operator_report(self, operator_id: UUID, *, year: int, figures: Mapping[str, str | Decimal],
                             stamp: Stamp, expected_version: int | None = None,
                             idempotency: IdempotencyClaim | None = None) -> CommandResult:
        return self._operator_command(
            operator_id, lambda o: o.file_report(year=year, figures=figures, stamp=stamp),
            expected_version, idempotency)

    def correct_operator_report(self, operator_id: UUID, *, year: int, figures: Mapping[str, str | Decimal],
                                reason: str, stamp: Stamp, expected_version: int | None = None,
                                idempotency: IdempotencyClaim | None = None) -> CommandResult:
        return self._operator_command(
            operator_id, lambda o: o.correct_report(year=year, figures=figures, reason=reason, stamp=stamp),
            expected_version, idempotency)

    def record_sanitation_inspection(self, operator_id: UUID, *, site_id: UUID, inspected_on: date, score: int,
                                     findings: str, stamp: Stamp, expected_version: int | None = None,
                                     idempotency: IdempotencyClaim | None = None) -> CommandResult:
        def act(operator: Operator) -> None:
            operator.record_inspection(site_id=site_id, inspected_on=inspected_on, score=score, findings=findings,
                                       stamp=stamp)
            self.load(HousingSite, site_id, field_name="site_id").check_open_on(inspected_on, "inspected_on")

        return self._operator_command(operator_id, act, expected_version, idempotency)

    def change_operator_contact(self, operator_id: UUID, *, contact: str, changed_on: date, stamp: Stamp,
                                expected_version: int | None = None,
                                idempotency: IdempotencyClaim | None = None) -> CommandResult:
        return self._operator_command(
            operator_id, lambda o: o.change_contact(contact=contact, changed_on=changed_on, stamp=stamp),
            expected_version, idempotency)

    def erase_operator_contact(self, operator_id: UUID, *, legal_basis: str, note: str, stamp: Stamp,
                               expected_version: int | None = None,
                               idempotency: IdempotencyClaim | None = None) -> CommandResult:
        """Erase the operator's contact person: the erasure recorded, and the keys that sealed
        every contact recorded so far destroyed in the same transaction."""
        return self._erasing_contacts(
            operator_id, lambda o: o.erase_contact(legal_basis=legal_basis, note=note, stamp=stamp),
            legal_basis, stamp, expected_version, idempotency)

    def erase_former_operator_contacts(self, operator_id: UUID, *, replaced_before: date,
                                       stamp: Stamp) -> CommandResult:
        """Retention: erase the operator's former contact persons replaced before
        ``replaced_before``, their keys destroyed in the same transaction; the current one stays."""
        return self._erasing_contacts(
            operator_id, lambda o: o.erase_former_contacts(replaced_before=replaced_before, stamp=stamp),
            LegalBasis.RETENTION_EXPIRED.value, stamp, None, None)

    def _erasing_contacts(self, operator_id: UUID, erase: Callable[[Operator], list[UUID]], legal_basis: str,
                          stamp: Stamp, expected_version: int | None,
                          idempotency: IdempotencyClaim | None) -> CommandResult:
        """Record an erasure of contacts and destroy the keys it names, in one transaction."""
        keys: list[UUID] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            operator = self.load_current(Operator, operator_id, expected_version)
            keys[:] = erase(operator)
            return operator, [operator]

        def destroy() -> list[tuple[str, Sequence[Any]]]:
            return [("UPDATE pii_keys SET wrapped = NULL, destroyed_at = now(), destroyed_by = %s,"
                     " legal_basis = %s WHERE key_id = ANY(%s) AND wrapped IS NOT NULL",
                     (stamp.actor.user_id, legal_basis, keys)),
                    (f"NOTIFY {PII_CHANNEL}", ())]

        result = self._execute(decide, idempotency=idempotency, side_effects=destroy)
        self.vault.forget(keys)
        return result

    # -- co-building --------------------------------------------------------
    def agree_pairing(self, *, site_id: UUID, partner_type: str, partner_name: str, agreed_on: date, stamp: Stamp,
                      idempotency: IdempotencyClaim | None = None) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
            site.check_open()
            pairing = Pairing.agree(site_id=site_id, site_area=site.area, partner_type=partner_type,
                                    partner_name=partner_name, agreed_on=agreed_on, stamp=stamp)
            return pairing, [pairing]

        return self._execute(decide, idempotency=idempotency)

    def _pairing_command(self, pairing_id: UUID, act: Callable[[Pairing], None], expected_version: int | None,
                         idempotency: IdempotencyClaim | None) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            pairing = self.load_current(Pairing, pairing_id, expected_version)
            act(pairing)
            return pairing, [pairing]

        return self._execute(decide, idempotency=idempotency)

    def record_contribution(self, pairing_id: UUID, *, delivered_on: date, kind: str, description: str,
                            value_yuan: str | None, stamp: Stamp, expected_version: int | None = None,
                            idempotency: IdempotencyClaim | None = None) -> CommandResult:
        def act(pairing: Pairing) -> None:
            pairing.deliver(delivered_on=delivered_on, kind=kind, description=description, value_yuan=value_yuan,
                            stamp=stamp)
            self.load(HousingSite, pairing.site_id, field_name="site_id").check_open_on(delivered_on, "delivered_on")

        return self._pairing_command(pairing_id, act, expected_version, idempotency)

    def end_pairing(self, pairing_id: UUID, *, ended_on: date, reason: str, stamp: Stamp,
                    expected_version: int | None = None, idempotency: IdempotencyClaim | None = None) -> CommandResult:
        return self._pairing_command(
            pairing_id, lambda p: p.end(ended_on=ended_on, reason=reason, stamp=stamp), expected_version, idempotency)
