"""Use cases: dispute cases, from logging to closure, and the service-level sweep."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.common import InvalidValue, Stamp
from domain.disputes import DisputeCase, SlaPolicy
from domain.residents import Resident
from domain.sites import HousingSite


class DisputeCommands(OfficeApplication):
    sla: SlaPolicy = SlaPolicy()

    def log_dispute(
        self,
        *,
        category: str,
        parties: list[dict[str, Any]],
        site_id: UUID | None,
        area: str | None,
        description: str,
        priority: str,
        occurred_on: date,
        stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            for n, party in enumerate(parties):
                if party.get("resident_id") is not None:  # nothing new of an erased person (found by a review)
                    self.load_in_scope(Resident, party["resident_id"],
                                       field_name=f"parties.{n}.resident_id").check_not_erased()
            if site_id is not None:
                site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
                site.check_open_on(occurred_on, "occurred_on")  # found by a review: a dispute after a closure
                self.check_site_in_area(site, self.place(area) if area else None)  # found by a review: overridden
                where = site.area
            elif area:
                where = self.place(area)
            else:
                raise InvalidValue("area", "give the site_id or the area where the dispute arose", rule="area_missing")
            case = DisputeCase.log(
                category=category, parties=parties, site_id=site_id, area=where, description=description,
                priority=priority, occurred_on=occurred_on, sla=self.sla, stamp=stamp,
            )
            return case, [case]

        return self._execute(decide, idempotency=idempotency)

    def _case_command(
        self,
        case_id: UUID,
        act: Callable[[DisputeCase], None],
        expected_version: int | None,
        idempotency: IdempotencyClaim | None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            case = self.load_current(DisputeCase, case_id, expected_version)
            act(case)
            return case, [case]

        return self._execute(decide, idempotency=idempotency)

    def assign_dispute(
        self, case_id: UUID, *, assignee: str | None, agency: str | None, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def act(case: DisputeCase) -> None:
            if assignee is not None:
                self._check_assignee_sees(assignee, case.area)
            case.assign(assignee=assignee, agency=agency, stamp=stamp)

        return self._case_command(case_id, act, expected_version, idempotency)

    def _check_assignee_sees(self, assignee: str, area: str) -> None:
        """A staff member the office knows (a web account or an API key) whose areas do not
        reach the case would be handed a case they cannot open (found by a review). (Whether
        the assignee exists at all the API and the pages check before.)"""
        with self.connection() as conn:
            rows = conn.execute(
                "SELECT areas FROM staff_users WHERE user_id = %s AND disabled_at IS NULL"
                " UNION ALL SELECT areas FROM api_keys WHERE user_id = %s AND revoked_at IS NULL",
                (assignee, assignee)).fetchall()
        if not rows or any(not r["areas"] or area in self.areas.within(list(r["areas"])) for r in rows):
            return
        raise InvalidValue("assignee", f"{assignee} works in {', '.join(sorted({a for r in rows for a in r['areas']}))}"
                           f" and cannot open a case in {area}", rule="assignee_outside_area", area=area)

    def add_dispute_note(
        self, case_id: UUID, *, text: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._case_command(case_id, lambda c: c.add_note(text=text, stamp=stamp), expected_version, idempotency)

    def hold_mediation(
        self, case_id: UUID, *, held_on: date, participants: list[str], outcome: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._case_command(
            case_id,
            lambda c: c.hold_mediation(held_on=held_on, participants=participants, outcome=outcome, stamp=stamp),
            expected_version, idempotency,
        )

    def escalate_dispute(
        self, case_id: UUID, *, to: str, reason: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._case_command(
            case_id, lambda c: c.escalate(to=to, reason=reason, stamp=stamp), expected_version, idempotency
        )

    def resolve_dispute(
        self, case_id: UUID, *, outcome: str, amount_recovered: Decimal | None, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._case_command(
            case_id, lambda c: c.resolve(outcome=outcome, amount_recovered=amount_recovered, stamp=stamp),
            expected_version, idempotency,
        )

    def close_dispute(
        self, case_id: UUID, *, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._case_command(case_id, lambda c: c.close(stamp=stamp), expected_version, idempotency)

    def reopen_dispute(
        self, case_id: UUID, *, reason: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._case_command(
            case_id, lambda c: c.reopen(reason=reason, sla=self.sla, stamp=stamp), expected_version, idempotency
        )

    def escalate_breaches(self, case_ids: Iterable[UUID], stamp: Stamp) -> int:
        """The SLA sweep: record each new breach once, by ``stamp``'s (system) actor.
        Two sweeps at once race for the same case version; the loser re-decides and
        finds the breach recorded. Returns the number of breaches recorded."""
        recorded = 0
        for case_id in case_ids:
            before = self.load(DisputeCase, case_id).version
            result = self._case_command(case_id, lambda c: c.escalate_breaches(stamp), None, None)
            if result.position:
                recorded += result.version - before
        return recorded
