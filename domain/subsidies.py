"""Subsidies (补助): programs with a budget, and applications on a housing site's
behalf that are approved by four eyes and paid in one go (一步到位), in phases
(分步到位), or as a reward once an outcome is verified (以奖代补).

Government support must not differ by operator type: each application records its
site's operator type so the ledger can show that it does not, and no rule here reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.common import ERASED, InvalidValue, Role, RuleViolated, Stamp, check_effective_date
from domain.money import format_money, parse_money
from domain.sites import HousingSite

ZERO = Decimal("0.00")
EARLIEST_FISCAL_YEAR, LATEST_FISCAL_YEAR = 2000, 2100
MIN_PHASED_INSTALMENTS = 2


class SubsidyPurpose(StrEnum):
    FACILITIES = "facilities"
    SANITATION = "sanitation"
    MANAGEMENT_COSTS = "management_costs"
    EDUCATION = "education"
    HEALTH = "health"
    TRAINING = "training"
    OTHER = "other"


class PaymentMode(StrEnum):
    ONE_OFF = "one_off"  # 一步到位: all of it, due on approval
    PHASED = "phased"  # 分步到位: in the instalments the application proposed
    REWARD_IN_LIEU = "reward_in_lieu"  # 以奖代补: due only once the outcome is verified


class ApplicationStatus(StrEnum):
    SUBMITTED = "submitted"  # waiting for its approvals
    APPROVED = "approved"  # took effect: budget committed, payments scheduled
    REJECTED = "rejected"
    PAID = "paid"
    REVOKED = "revoked"
    LAPSED = "lapsed"  # a reward in lieu whose outcome was not verified by its target's deadline


@dataclass(frozen=True)
class Instalment:
    """Part of a subsidy and the day it falls due; ``due_on`` is None for a reward
    in lieu whose outcome is not verified yet."""

    amount: Decimal
    due_on: date | None


@dataclass(frozen=True)
class Approval:
    approved_by: str
    note: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class Payment:
    amount: Decimal
    reference: str
    paid_on: date


def _vocabulary_value(vocabulary: type[StrEnum], value: str, field_name: str) -> str:
    allowed = [member.value for member in vocabulary]
    if value not in allowed:
        raise InvalidValue(
            field_name, f"unknown {field_name} {value!r}; allowed: {', '.join(allowed)}", rule=f"{field_name}_unknown"
        )
    return value


def _encode(instalments: Iterable[Instalment]) -> list[dict[str, Any]]:
    return [{"amount": i.amount, "due_on": i.due_on} for i in instalments]


def _decode(instalments: Iterable[dict[str, Any]]) -> list[Instalment]:
    return [Instalment(amount=i["amount"], due_on=i["due_on"]) for i in instalments]


def parse_instalments(
    mode: str, amount: Decimal, instalments: Sequence[tuple[str | Decimal, date]] | None
) -> list[Instalment]:
    """A phased subsidy's instalments, in due order: at least two, summing exactly to
    ``amount``. Other modes take none (their schedule follows from the mode)."""
    if mode != PaymentMode.PHASED:
        if instalments:
            raise InvalidValue("instalments", f"instalments are only for phased subsidies, not {mode}",
                               rule="instalments_not_allowed")
        return []
    if instalments is None or len(instalments) < MIN_PHASED_INSTALMENTS:
        raise InvalidValue("instalments", f"a phased subsidy needs at least {MIN_PHASED_INSTALMENTS} instalments",
                           rule="instalments_required")
    parsed = [
        Instalment(amount=parse_money(raw, f"instalments.{index}.amount"), due_on=due_on)
        for index, (raw, due_on) in enumerate(instalments)
    ]
    total = sum((i.amount for i in parsed), ZERO)
    if total != amount:
        raise InvalidValue(
            "instalments",
            f"the instalments add up to {format_money(total)}, not the amount {format_money(amount)}",
            rule="instalments_sum_mismatch",
            instalments_total=format_money(total),
        )
    return sorted(parsed, key=lambda i: i.due_on or date.max)


def _check_instalment_dates(instalments: Sequence[tuple[str | Decimal, date]], fiscal_year: int,
                            stamp: Stamp) -> None:
    """A phased subsidy's instalments fall due from the day it is asked for to the end of the year
    after its program's fiscal year, as a reward in lieu's deadline does (found by a review: one due
    in 2001 was payable at once, a phased subsidy paid as one-off; one due in 2099 held the budget
    for 73 years)."""
    latest = date(fiscal_year + 1, 12, 31)
    for index, (_, due_on) in enumerate(instalments):
        if due_on < stamp.today:
            raise InvalidValue(f"instalments.{index}.due_on", f"instalment {index + 1} is due on "
                               f"{due_on.isoformat()}, before the application ({stamp.today.isoformat()})",
                               rule="instalment_due_in_past")
        if due_on > latest:
            raise InvalidValue(f"instalments.{index}.due_on", f"instalment {index + 1} is due on "
                               f"{due_on.isoformat()}, after {latest.isoformat()}: the budget of fiscal year "
                               f"{fiscal_year} is carried over one year at most",
                               rule="instalment_due_after_carry_over", latest=latest.isoformat())


class SubsidyProgram(Aggregate):
    """A budget for one purpose and fiscal year, and the payment modes it allows.

    It counts what took effect against it (``committed``) and what was paid. An
    approval that takes effect commits budget here in the same save as the
    application's approval, so approvals racing for the last of the budget write
    the same program version and only one is stored: ``committed`` never exceeds
    ``budget``. ``commit``, ``release`` and ``record_payment`` are called by
    ``SubsidyApplication``, whose caller saves both aggregates together."""

    @classmethod
    def open(
        cls,
        *,
        name: str,
        purpose: str,
        fiscal_year: int,
        budget: str | Decimal,
        modes: Iterable[str],
        stamp: Stamp,
    ) -> SubsidyProgram:
        if not EARLIEST_FISCAL_YEAR <= fiscal_year <= LATEST_FISCAL_YEAR:
            raise InvalidValue("fiscal_year", f"fiscal_year must lie between {EARLIEST_FISCAL_YEAR} and "
                               f"{LATEST_FISCAL_YEAR}", rule="fiscal_year_out_of_range")
        allowed_modes = sorted({_vocabulary_value(PaymentMode, mode, "modes") for mode in modes})
        if not allowed_modes:
            raise InvalidValue("modes", "a program allows at least one payment mode", rule="modes_empty")
        program: SubsidyProgram = cls(
            name=name,
            purpose=_vocabulary_value(SubsidyPurpose, purpose, "purpose"),
            fiscal_year=fiscal_year,
            budget=parse_money(budget, "budget"),
            modes=allowed_modes,
            **stamp.event_fields(),
        )
        return program

    @event("Opened")
    def __init__(
        self,
        *,
        name: str,
        purpose: str,
        fiscal_year: int,
        budget: Decimal,
        modes: list[str],
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A subsidy program was opened for a fiscal year with its budget and payment modes."""
        self.name = name
        self.purpose = purpose
        self.fiscal_year = fiscal_year
        self.budget = budget
        self.modes = list(modes)
        self.committed = ZERO
        self.paid = ZERO

    @property
    def remaining(self) -> Decimal:
        return self.budget - self.committed

    def check_mode_allowed(self, mode: str) -> None:
        if mode not in self.modes:
            raise InvalidValue(
                "mode",
                f"subsidy program {self.id} does not pay {mode}; it allows {', '.join(self.modes)}",
                rule="mode_not_allowed",
                allowed_modes=self.modes,
            )

    def commit(self, application_id: UUID, amount: Decimal, stamp: Stamp) -> None:
        if amount > self.remaining:
            raise RuleViolated(
                f"approving {format_money(amount)} would exceed the budget of subsidy program {self.id}: "
                f"{format_money(self.remaining)} of {format_money(self.budget)} remains",
                rule="budget_exceeded",
                remaining=format_money(self.remaining),
                budget=format_money(self.budget),
                amount=format_money(amount),
            )
        self._budget_committed(application_id=application_id, amount=amount, **stamp.event_fields())

    @event("BudgetCommitted")
    def _budget_committed(
        self, *, application_id: UUID, amount: Decimal, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """Part of the budget was committed to an approved application."""
        self.committed += amount

    def release(self, application_id: UUID, amount: Decimal, stamp: Stamp) -> None:
        self._commitment_released(application_id=application_id, amount=amount, **stamp.event_fields())

    @event("CommitmentReleased")
    def _commitment_released(
        self, *, application_id: UUID, amount: Decimal, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """A commitment went back to the budget (the unpaid part of a revoked application)."""
        self.committed -= amount

    def record_payment(self, application_id: UUID, amount: Decimal, stamp: Stamp, reference: str | None = None) -> None:
        """Count a payment against the program. Its voucher (``reference``) is one payment's: one
        given on another application of the program is refused (found by a review: finance could
        pay two applications on one voucher)."""
        used = getattr(self, "references", {})
        if reference is not None and used.get(reference, application_id) != application_id:
            raise RuleViolated(f"the voucher {reference!r} was used for another application's payment",
                               rule="payment_reference_used", reference=reference, field="reference")
        self._payment_recorded(application_id=application_id, amount=amount, reference=reference,
                               **stamp.event_fields())

    @event("PaymentRecorded")
    def _payment_recorded(
        self, *, application_id: UUID, amount: Decimal, actor_id: str, actor_role: str, recorded_at: datetime,
        reference: str | None = None,
    ) -> None:
        """A payment on one of the program's applications was counted against it, under its voucher (the
        reference; none on payments recorded before 2026-11-29)."""
        self.paid += amount
        if reference is not None:
            self.references = {**getattr(self, "references", {}), reference: application_id}


class SubsidyApplication(Aggregate):
    """A request for a subsidy from a program for one housing site.

    It needs one approval, or two by different people when its amount reaches the
    threshold given at submission (recorded, so a later change of the threshold
    does not move pending applications); the submitter never approves. The last
    required approval makes it take effect: the program's budget is committed and
    the payment schedule recorded. Payments never exceed what has fallen due.
    Commands that change the program take it as an argument; the caller saves it
    with the application."""

    @classmethod
    def submit(
        cls,
        *,
        program: SubsidyProgram,
        site: HousingSite,
        amount: str | Decimal,
        mode: str,
        justification: str,
        instalments: Sequence[tuple[str | Decimal, date]] | None,
        two_approvals_from: Decimal,
        stamp: Stamp,
    ) -> SubsidyApplication:
        requested = parse_money(amount, "amount")
        payment_mode = _vocabulary_value(PaymentMode, mode, "mode")
        plan = parse_instalments(payment_mode, requested, instalments)
        program.check_mode_allowed(payment_mode)
        _check_instalment_dates(instalments or [], program.fiscal_year, stamp)
        if requested > program.budget:  # could never be approved (found by a review)
            raise InvalidValue("amount", f"{format_money(requested)} is more than the whole budget of subsidy "
                               f"program {program.id} ({format_money(program.budget)})",
                               rule="amount_exceeds_budget", budget=format_money(program.budget))
        site.check_open()
        application: SubsidyApplication = cls(
            program_id=program.id,
            fiscal_year=program.fiscal_year,
            site_id=site.id,
            operator_type=site.operator_type,
            site_area=site.area,
            amount=requested,
            mode=payment_mode,
            justification=justification,
            instalments=_encode(plan),
            approvals_required=2 if requested >= two_approvals_from else 1,
            **stamp.event_fields(),
        )
        return application

    @event("Submitted")
    def __init__(
        self,
        *,
        program_id: UUID,
        fiscal_year: int,
        site_id: UUID,
        operator_type: str,
        site_area: str,
        amount: Decimal,
        mode: str,
        justification: str,
        instalments: list[dict[str, Any]],
        approvals_required: int,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A subsidy application was submitted for a site's operator: amount, payment mode, instalments."""
        self.program_id = program_id
        self.fiscal_year = fiscal_year
        self.site_id = site_id
        self.operator_type = operator_type
        self.site_area = site_area
        self.amount = amount
        self.mode = mode
        self.justification = justification
        self.instalments = _decode(instalments)
        self.approvals_required = approvals_required
        self.submitted_by = actor_id
        self.status = ApplicationStatus.SUBMITTED.value
        self.approvals: list[Approval] = []
        self.approved_on: date | None = None
        self.schedule: list[Instalment] = []
        self.payments: list[Payment] = []
        self.paid = ZERO
        self.outcome_verified_on: date | None = None
        self.target: str | None = None  # a reward in lieu: the outcome it is for
        self.target_due: date | None = None  # and the day it must be verified by
        self.rejection_reason: str | None = None
        self.revocation_reason: str | None = None
        self.claw_back: Decimal | None = None

    # -- queries ------------------------------------------------------------
    def due_by(self, day: date) -> Decimal:
        """What may be paid with ``day`` as the payment date: the instalments due
        by then, less what has been paid."""
        fallen_due = sum((i.amount for i in self.schedule if i.due_on is not None and i.due_on <= day), ZERO)
        return max(fallen_due - self.paid, ZERO)

    # -- guards -------------------------------------------------------------
    def check_status(self, *allowed: ApplicationStatus, to: str) -> None:
        """Refuses, naming the current status, unless the application is in one of ``allowed``."""
        if self.status not in allowed:
            raise RuleViolated(
                f"subsidy application {self.id} is {self.status}; it can {to} only when {' or '.join(allowed)}",
                rule="application_status",
                current_status=self.status,
            )

    def _check_program(self, program: SubsidyProgram) -> None:
        if program.id != self.program_id:
            raise ValueError("program is not the application's subsidy program")

    # -- commands -----------------------------------------------------------
    def approve(self, program: SubsidyProgram, *, note: str | None, stamp: Stamp, target: str | None = None,
                target_due: date | None = None) -> None:
        """Record one approval; the last required one commits the budget on
        ``program`` and schedules the payments. A reward in lieu takes effect only with
        the outcome it rewards and the day it must be verified by (``target``,
        ``target_due``), given with that approval or an earlier one."""
        self._check_program(program)
        self.check_status(ApplicationStatus.SUBMITTED, to="be approved")
        approver = stamp.actor.user_id
        if approver == self.submitted_by:
            raise RuleViolated(f"{approver} submitted subsidy application {self.id} and cannot approve it",
                               rule="approver_is_submitter")
        if any(a.approved_by == approver for a in self.approvals):
            raise RuleViolated(f"{approver} already approved subsidy application {self.id}; "
                               "the next approval must come from someone else", rule="already_approved_by_approver")
        self._check_target(target, target_due, stamp)
        takes_effect = len(self.approvals) + 1 >= self.approvals_required
        in_force = (target, target_due) if target is not None else (self.target, self.target_due)
        if takes_effect and self.mode == PaymentMode.REWARD_IN_LIEU and in_force[0] is None:
            raise InvalidValue("target", "a reward in lieu takes effect only with its target and the day it must be "
                               "verified by (target, target_due)", rule="reward_target_required")
        if takes_effect and in_force[1] is not None and in_force[1] <= stamp.today:
            # given with an earlier approval, the day may have passed since (found by a review: the reward
            # took effect already past its deadline, and lapsed at the next sweep)
            raise InvalidValue("target_due", f"target_due {in_force[1].isoformat()}, given with an earlier approval,"
                               " is not after today: give a new one", rule="target_due_not_after_today")
        if takes_effect:
            program.commit(self.id, self.amount, stamp)
        self._approval_given(note=note, target=target, target_due=target_due, **stamp.event_fields())
        if takes_effect:
            self._payment_scheduled(
                approved_on=stamp.today, instalments=_encode(self._schedule_from(stamp.today)),
                target=in_force[0], target_due=in_force[1], **stamp.event_fields()
            )

    def _check_target(self, target: str | None, target_due: date | None, stamp: Stamp) -> None:
        if target is None and target_due is None:
            return
        if self.mode != PaymentMode.REWARD_IN_LIEU:
            raise InvalidValue("target", f"subsidy application {self.id} is paid {self.mode}; only a reward in lieu "
                               "has a target", rule="target_not_applicable")
        if not target or not target.strip():
            raise InvalidValue("target", "give the outcome the reward is for with its deadline",
                               rule="reward_target_required")
        if target_due is None:
            raise InvalidValue("target_due", "give the day the outcome must be verified by",
                               rule="reward_target_required")
        if target_due <= stamp.today:
            raise InvalidValue("target_due", f"target_due {target_due.isoformat()} is not after today "
                               f"({stamp.today.isoformat()})", rule="target_due_not_after_today")
        # A reward holds the budget of its program's fiscal year (the calendar year), carried over at
        # most into the next one, so it is verified or lapses by then (found by a review: a deadline
        # in 9999 held the budget for good).
        latest = date(self.fiscal_year + 1, 12, 31)
        if target_due > latest:
            raise InvalidValue("target_due", f"target_due {target_due.isoformat()} is after {latest.isoformat()}: "
                               f"the budget of fiscal year {self.fiscal_year} is carried over one year at most",
                               rule="target_due_after_carry_over", latest=latest.isoformat())

    def lapses_by(self, day: date) -> bool:
        """A reward in lieu approved with a deadline, not verified, and past the deadline
        on ``day``: it lapses (``lapse``)."""
        return (self.status == ApplicationStatus.APPROVED and self.mode == PaymentMode.REWARD_IN_LIEU
                and self.outcome_verified_on is None and self.target_due is not None and self.target_due < day)

    def lapse(self, program: SubsidyProgram, *, stamp: Stamp) -> None:
        """The reward's outcome was not verified by its deadline: it lapses and its
        committed budget goes back to ``program`` (the lapse sweep)."""
        self._check_program(program)
        if not self.lapses_by(stamp.today):
            raise RuleViolated(f"subsidy application {self.id} is not a reward past its verification deadline",
                               rule="reward_not_lapsed")
        unpaid = self.amount - self.paid
        if unpaid > 0:
            program.release(self.id, unpaid, stamp)
        assert self.target_due is not None
        self._reward_lapsed(target_due=self.target_due, released=unpaid, **stamp.event_fields())

    @event("RewardLapsed")
    def _reward_lapsed(self, *, target_due: date, released: Decimal, actor_id: str, actor_role: str,
                       recorded_at: datetime) -> None:
        """A reward in lieu was not verified by its deadline: it lapsed and its budget was released."""
        self.status = ApplicationStatus.LAPSED.value

    def _schedule_from(self, approved_on: date) -> list[Instalment]:
        if self.mode == PaymentMode.PHASED:
            return self.instalments
        if self.mode == PaymentMode.ONE_OFF:
            return [Instalment(amount=self.amount, due_on=approved_on)]
        return [Instalment(amount=self.amount, due_on=None)]

    @event("ApprovalGiven")
    def _approval_given(self, *, note: str | None, actor_id: str, actor_role: str, recorded_at: datetime,
                        target: str | None = None, target_due: date | None = None) -> None:
        """A supervisor approved the application (one of the approvals it needs), for a
        reward in lieu perhaps with its target and the day it must be verified by."""
        self.approvals.append(Approval(approved_by=actor_id, note=note, recorded_at=recorded_at))
        if target is not None:
            self.target, self.target_due = target, target_due

    @event("PaymentScheduled")
    def _payment_scheduled(
        self,
        *,
        approved_on: date,
        instalments: list[dict[str, Any]],
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
        target: str | None = None,
        target_due: date | None = None,
    ) -> None:
        """The last approval needed was given: the application is approved, its payments
        scheduled; a reward in lieu with the target in force and its deadline."""
        self.status = ApplicationStatus.APPROVED.value
        self.approved_on = approved_on
        self.schedule = _decode(instalments)
        if target is not None:
            self.target, self.target_due = target, target_due

    def reject(self, *, reason: str, stamp: Stamp) -> None:
        self.check_status(ApplicationStatus.SUBMITTED, to="be rejected")
        self._rejected(reason=reason, **stamp.event_fields())

    @event("Rejected")
    def _rejected(self, *, reason: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The application was rejected, for the reason given."""
        self.status = ApplicationStatus.REJECTED.value
        self.rejection_reason = reason

    def record_payment(
        self, program: SubsidyProgram, *, amount: str | Decimal, reference: str, paid_on: date, stamp: Stamp
    ) -> None:
        """Record money paid out; also counted on ``program``. The last payment
        makes the application paid."""
        self._check_program(program)
        paid = parse_money(amount, "amount")
        self.check_status(ApplicationStatus.APPROVED, to="be paid")
        check_effective_date(paid_on, stamp, earliest=self.approved_on, earliest_rule="paid_before_approval",
                             field_name="paid_on")
        if any(p.reference == reference for p in self.payments):
            raise RuleViolated(f"subsidy application {self.id} already has a payment with reference {reference!r}",
                               rule="payment_reference_used", reference=reference)
        due = self.due_by(paid_on)
        if paid > due:
            raise RuleViolated(
                f"{format_money(paid)} is more than the {format_money(due)} due on subsidy application {self.id} "
                f"by {paid_on.isoformat()}",
                rule="payment_exceeds_due",
                due=format_money(due),
                field="amount",  # the amount at fault, so a form ties the refusal to it
            )
        program.record_payment(self.id, paid, stamp, reference=reference)
        self._payment_recorded(amount=paid, reference=reference, paid_on=paid_on, **stamp.event_fields())

    @event("PaymentRecorded")
    def _payment_recorded(
        self, *, amount: Decimal, reference: str, paid_on: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """Finance recorded money paid out on the application."""
        self.payments.append(Payment(amount=amount, reference=reference, paid_on=paid_on))
        self.paid += amount
        if self.paid == self.amount:
            self.status = ApplicationStatus.PAID.value

    def verify_outcome(self, *, verified_on: date, note: str, stamp: Stamp) -> None:
        """A reward in lieu falls due once its outcome is verified."""
        if self.mode != PaymentMode.REWARD_IN_LIEU:
            raise RuleViolated(f"subsidy application {self.id} is paid {self.mode}; only a reward in lieu has an "
                               "outcome to verify", rule="outcome_not_applicable", mode=self.mode)
        self.check_status(ApplicationStatus.APPROVED, to="have its outcome verified")
        verifier = stamp.actor.user_id
        if stamp.actor.role != Role.SUPERVISOR:
            raise RuleViolated(f"an outcome is verified by a supervisor, not by a {stamp.actor.role}",
                               rule="verifier_not_supervisor")
        if verifier == self.submitted_by:
            raise RuleViolated(f"{verifier} submitted subsidy application {self.id} and cannot verify its outcome",
                               rule="verifier_is_submitter")
        if any(a.approved_by == verifier for a in self.approvals):
            raise RuleViolated(f"{verifier} approved subsidy application {self.id} and cannot verify its outcome",
                               rule="verifier_is_approver")
        if self.outcome_verified_on is not None:
            raise RuleViolated(
                f"the outcome of subsidy application {self.id} was verified on {self.outcome_verified_on.isoformat()}",
                rule="outcome_already_verified",
                verified_on=self.outcome_verified_on.isoformat(),
            )
        check_effective_date(verified_on, stamp, earliest=self.approved_on, earliest_rule="verified_before_approval",
                             field_name="verified_on")
        if self.target_due is not None and verified_on > self.target_due:
            raise RuleViolated(f"the outcome was due to be verified by {self.target_due.isoformat()}; the reward "
                               "lapses", rule="reward_deadline_passed", target_due=self.target_due.isoformat())
        self._outcome_verified(verified_on=verified_on, note=note, **stamp.event_fields())

    @event("OutcomeVerified")
    def _outcome_verified(
        self, *, verified_on: date, note: str, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The outcome of a reward in lieu (以奖代补) was verified: its payment falls due."""
        self.outcome_verified_on = verified_on
        self.schedule = [Instalment(amount=i.amount, due_on=verified_on) for i in self.schedule]

    def revoke(self, program: SubsidyProgram, *, reason: str, claw_back: str | Decimal, stamp: Stamp) -> None:
        """Withdraw a subsidy that took effect: what is unpaid goes back to
        ``program``'s budget; ``claw_back`` (at most what was paid) is recorded as
        owed back by the site's operator."""
        self._check_program(program)
        owed_back = parse_money(claw_back, "claw_back", allow_zero=True)
        self.check_status(ApplicationStatus.APPROVED, ApplicationStatus.PAID, to="be revoked")
        if owed_back > self.paid:
            raise RuleViolated(
                f"claw_back {format_money(owed_back)} is more than the {format_money(self.paid)} paid",
                rule="claw_back_exceeds_paid",
                paid=format_money(self.paid),
            )
        unpaid = self.amount - self.paid
        if unpaid > 0:
            program.release(self.id, unpaid, stamp)
        self._revoked(reason=reason, claw_back=owed_back, released=unpaid, **stamp.event_fields())

    @event("Revoked")
    def _revoked(
        self,
        *,
        reason: str,
        claw_back: Decimal,
        released: Decimal,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """The subsidy was revoked: the unpaid part released, the amount to claw back recorded."""
        self.status = ApplicationStatus.REVOKED.value
        self.revocation_reason = reason
        self.claw_back = claw_back

    # -- erasure ----------------------------------------------------------------
    def erase_texts(self, *, items: Sequence[dict[str, str]], stamp: Stamp) -> None:
        """Free texts of the application (the justification, an approval's note, why it was
        rejected or revoked, the verification's note) named a resident whose personal data was
        erased: the keys that sealed them were destroyed in the same transaction; every reader
        (and cache) sees them so. ``items``: ``{"event": the event's name, "ref": the approver
        for an approval}``."""
        wanted = [dict(i) for i in items if self._holds_text(i.get("event", ""), str(i.get("ref", "")))]
        if wanted:
            self._texts_erased(items=wanted, **stamp.event_fields())

    def _holds_text(self, kind: str, ref: str) -> bool:
        if kind == "Submitted":
            return self.justification != ERASED
        if kind == "ApprovalGiven":
            return any(a.approved_by == ref and a.note not in (None, ERASED) for a in self.approvals)
        if kind == "Rejected":
            return self.rejection_reason not in (None, ERASED)
        if kind == "Revoked":
            return self.revocation_reason not in (None, ERASED)
        return kind == "OutcomeVerified"  # the note is not kept here: recorded for the history's readers

    @event("TextsErased")
    def _texts_erased(self, *, items: list[dict[str, str]], actor_id: str, actor_role: str,
                      recorded_at: datetime) -> None:
        """Free texts of the application that named an erased resident read as erased; the rest stays."""
        for item in items:
            kind, ref = item.get("event"), str(item.get("ref", ""))
            if kind == "Submitted":
                self.justification = ERASED
            elif kind == "ApprovalGiven":
                self.approvals = [replace(a, note=ERASED) if a.approved_by == ref and a.note is not None else a
                                  for a in self.approvals]
            elif kind == "Rejected":
                self.rejection_reason = ERASED
            elif kind == "Revoked":
                self.revocation_reason = ERASED

    @event("JustificationErased")
    def _justification_erased(self, *, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The justification named an erased resident: it reads as erased; the rest of the application
        stays. (Stored by erasures before TextsErased; kept so their records replay.)"""
        self.justification = ERASED
