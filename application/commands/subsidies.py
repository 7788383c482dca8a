"""Use cases: subsidy programs and subsidy applications."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.access import current_scope
from application.store import AreaNotAllowed, CommandResult, IdempotencyClaim, OfficeApplication
from domain.common import Stamp
from domain.sites import HousingSite
from domain.subsidies import SubsidyApplication, SubsidyProgram


class SubsidyCommands(OfficeApplication):
    # An application for at least this amount needs two approvals by different people.
    SUBSIDY_TWO_APPROVALS_THRESHOLD = Decimal("500000.00")

    def open_subsidy_program(
        self,
        *,
        name: str,
        purpose: str,
        fiscal_year: int,
        budget: str,
        modes: list[str],
        stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        if current_scope() is not None:  # programs are the district's: area-bound keys read them only
            raise AreaNotAllowed("program", "district")

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            program = SubsidyProgram.open(
                name=name, purpose=purpose, fiscal_year=fiscal_year, budget=budget, modes=modes, stamp=stamp
            )
            return program, [program]

        return self._execute(decide, idempotency=idempotency)

    def submit_subsidy_application(
        self,
        *,
        program_id: UUID,
        site_id: UUID,
        amount: str,
        mode: str,
        justification: str,
        instalments: list[tuple[str, date]] | None,
        stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Submit on a housing site's behalf; the site's operator type and area are
        recorded as they are now."""

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            program = self.load(SubsidyProgram, program_id, field_name="program_id")
            site = self.load_in_scope(HousingSite, site_id, field_name="site_id")
            application = SubsidyApplication.submit(
                program=program,
                site=site,
                amount=amount,
                mode=mode,
                justification=justification,
                instalments=instalments,
                two_approvals_from=self.SUBSIDY_TWO_APPROVALS_THRESHOLD,
                stamp=stamp,
            )
            return application, [application]

        return self._execute(decide, idempotency=idempotency)

    def _application_command(
        self,
        application_id: UUID,
        act: Callable[[SubsidyApplication, SubsidyProgram], None],
        expected_version: int | None,
        idempotency: IdempotencyClaim | None,
    ) -> CommandResult:
        """Act on an application and its program, and save both in one transaction:
        a program changed concurrently (another approval took budget) makes the
        command decide again on the committed state."""

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            application = self.load_current(SubsidyApplication, application_id, expected_version)
            program = self.load(SubsidyProgram, application.program_id, field_name="program_id")
            act(application, program)
            return application, [application, program]

        return self._execute(decide, idempotency=idempotency)

    def approve_subsidy_application(
        self, application_id: UUID, note: str | None, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
        target: str | None = None, target_due: date | None = None,
    ) -> CommandResult:
        def act(application: SubsidyApplication, program: SubsidyProgram) -> None:
            # A new commitment of budget for a site that closed since it was asked for (found by a
            # review); what was committed before the closure is still paid.
            self.load(HousingSite, application.site_id, field_name="site_id").check_open()
            application.approve(program, note=note, stamp=stamp, target=target, target_due=target_due)

        return self._application_command(application_id, act, expected_version, idempotency)

    def lapse_overdue_rewards(self, application_ids: Iterable[UUID], stamp: Stamp) -> int:
        """The lapse sweep: each reward in lieu not verified by its deadline lapses once,
        releasing its budget. Returns how many lapsed (one already lapsed, or verified
        meanwhile, is left alone)."""
        lapsed = 0
        for application_id in application_ids:
            def act(a: SubsidyApplication, p: SubsidyProgram) -> None:
                if a.lapses_by(stamp.today):
                    a.lapse(p, stamp=stamp)

            result = self._application_command(application_id, act, None, None)
            lapsed += 1 if result.position else 0
        return lapsed

    def reject_subsidy_application(
        self, application_id: UUID, reason: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._application_command(
            application_id, lambda a, _: a.reject(reason=reason, stamp=stamp), expected_version, idempotency
        )

    def record_subsidy_payment(
        self, application_id: UUID, amount: str, reference: str, paid_on: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._application_command(
            application_id,
            lambda a, p: a.record_payment(p, amount=amount, reference=reference, paid_on=paid_on, stamp=stamp),
            expected_version,
            idempotency,
        )

    def verify_subsidy_outcome(
        self, application_id: UUID, verified_on: date, note: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._application_command(
            application_id,
            lambda a, _: a.verify_outcome(verified_on=verified_on, note=note, stamp=stamp),
            expected_version,
            idempotency,
        )

    def revoke_subsidy_application(
        self, application_id: UUID, reason: str, claw_back: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._application_command(
            application_id,
            lambda a, p: a.revoke(p, reason=reason, claw_back=claw_back, stamp=stamp),
            expected_version,
            idempotency,
        )
