"""Subsidy rules, checked without any I/O: programs, applications, four eyes,
budget, payments due, outcome verification and revocation."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.common import Actor, InvalidValue, Role, RuleViolated, Stamp
from domain.sites import HousingSite, OperatorType
from domain.subsidies import SubsidyApplication, SubsidyProgram

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 2026-11-25 in Shanghai
TODAY = date(2026, 11, 25)
CASEWORKER = Stamp(Actor("cw-1", Role.CASEWORKER), NOW)
SUPERVISOR = Stamp(Actor("sup-1", Role.SUPERVISOR), NOW)
SECOND_SUPERVISOR = Stamp(Actor("sup-2", Role.SUPERVISOR), NOW)
FINANCE = Stamp(Actor("fin-1", Role.FINANCE), NOW)
SYSTEM = Actor("system", Role.SYSTEM)
THRESHOLD = Decimal("500000.00")
ALL_MODES = ["one_off", "phased", "reward_in_lieu"]


def a_site(operator_type: str = "village_cooperative") -> HousingSite:
    return HousingSite.register(name="Ginkgo", area="Xinqiao", address="1 Road", operator_type=operator_type,
                                operator_name="Operator", capacity=10, facilities=[], stamp=SUPERVISOR)


def a_program(budget: str = "1000000.00", modes: list[str] | None = None) -> SubsidyProgram:
    return SubsidyProgram.open(name="Facilities 2026", purpose="facilities", fiscal_year=2026, budget=budget,
                               modes=ALL_MODES if modes is None else modes, stamp=SUPERVISOR)


def an_application(program: SubsidyProgram, amount: str = "10000.00", mode: str = "one_off", *,
                   site: HousingSite | None = None, instalments: list[tuple[str, date]] | None = None,
                   submitter: Stamp = CASEWORKER) -> SubsidyApplication:
    return SubsidyApplication.submit(program=program, site=site or a_site(), amount=amount, mode=mode,
                                     justification="new canteen", instalments=instalments,
                                     two_approvals_from=THRESHOLD, stamp=submitter)


def refused(error: type[Exception], action: Any) -> Any:
    with pytest.raises(error) as caught:
        action()
    return caught.value


def event_names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


# -- programs -------------------------------------------------------------------
@pytest.mark.parametrize(("budget", "rule"), [("-1.00", "money_format"), ("0.00", "money_not_positive"),
                                              ("10.005", "money_format"), ("1e6", "money_format")])
def test_a_program_budget_is_positive_money_with_at_most_two_decimals(budget: str, rule: str) -> None:
    error = refused(InvalidValue, lambda: a_program(budget=budget))
    assert (error.field, error.rule) == ("budget", rule)


def test_a_program_needs_known_modes_and_purpose_and_a_plausible_fiscal_year() -> None:
    assert refused(InvalidValue, lambda: a_program(modes=[])).field == "modes"
    assert refused(InvalidValue, lambda: a_program(modes=["cash"])).field == "modes"
    open_with = SubsidyProgram.open
    assert refused(InvalidValue, lambda: open_with(name="x", purpose="parties", fiscal_year=2026, budget="1.00",
                                                   modes=ALL_MODES, stamp=SUPERVISOR)).field == "purpose"
    assert refused(InvalidValue, lambda: open_with(name="x", purpose="other", fiscal_year=26, budget="1.00",
                                                   modes=ALL_MODES, stamp=SUPERVISOR)).field == "fiscal_year"


def test_a_new_program_has_committed_and_paid_nothing() -> None:
    program = a_program(budget="1200.50", modes=["phased", "one_off", "phased"])
    assert (program.budget, program.committed, program.paid) == (Decimal("1200.50"), Decimal(0), Decimal(0))
    assert program.modes == ["one_off", "phased"]
    (opened,) = program.collect_events()
    assert (opened.actor_id, opened.actor_role) == ("sup-1", "supervisor")  # type: ignore[attr-defined]


# -- submission -----------------------------------------------------------------
def test_a_submission_records_the_sites_operator_type_and_area() -> None:
    site = a_site("employer")
    application = an_application(a_program(), site=site)
    assert (application.operator_type, application.site_area, application.site_id) == ("employer", "Xinqiao", site.id)
    assert (application.status, application.submitted_by, application.approvals_required) == ("submitted", "cw-1", 1)


def test_a_mode_the_program_does_not_allow_is_refused_naming_the_field() -> None:
    error = refused(InvalidValue, lambda: an_application(a_program(modes=["one_off"]), mode="reward_in_lieu"))
    assert (error.field, error.rule) == ("mode", "mode_not_allowed")


def test_no_application_for_a_closed_site() -> None:
    site = a_site()
    site.close(closed_on=date(2026, 6, 1), reason="demolished", stamp=SUPERVISOR)
    assert refused(RuleViolated, lambda: an_application(a_program(), site=site)).rule == "site_closed"


@pytest.mark.parametrize(
    ("mode", "instalments", "field", "rule"),
    [
        ("phased", None, "instalments", "instalments_required"),
        ("phased", [("100.00", date(2026, 12, 1))], "instalments", "instalments_required"),
        ("phased", [("60.00", date(2026, 12, 1)), ("60.00", date(2027, 1, 1))], "instalments",
         "instalments_sum_mismatch"),
        ("phased", [("100.00", date(2026, 12, 1)), ("0.00", date(2027, 1, 1))], "instalments.1.amount",
         "money_not_positive"),
        ("one_off", [("50.00", date(2026, 12, 1)), ("50.00", date(2027, 1, 1))], "instalments",
         "instalments_not_allowed"),
    ],
)
def test_phased_subsidies_need_instalments_adding_up_to_the_amount_and_only_they_have_any(
    mode: str, instalments: list[tuple[str, date]] | None, field: str, rule: str
) -> None:
    error = refused(InvalidValue, lambda: an_application(a_program(), "100.00", mode, instalments=instalments))
    assert (error.field, error.rule) == (field, rule)


# -- approval -------------------------------------------------------------------
def test_one_approval_below_the_threshold_commits_the_budget_and_schedules_one_payment_due_today() -> None:
    program = a_program()
    application = an_application(program, "499999.99")
    application.collect_events()
    application.approve(program, note="visited", stamp=SUPERVISOR)
    assert application.status == "approved" and application.approved_on == TODAY
    assert event_names(application) == ["ApprovalGiven", "PaymentScheduled"]
    assert program.committed == Decimal("499999.99")
    assert [(i.amount, i.due_on) for i in application.schedule] == [(Decimal("499999.99"), TODAY)]


def test_the_submitter_never_approves_their_own_application() -> None:
    program = a_program()
    application = SubsidyApplication.submit(program=program, site=a_site(), amount="10.00", mode="one_off",
                                            justification="x", instalments=None, two_approvals_from=THRESHOLD,
                                            stamp=SUPERVISOR)
    assert refused(RuleViolated, lambda: application.approve(program, note=None, stamp=SUPERVISOR)).rule == (
        "approver_is_submitter")
    assert application.status == "submitted" and program.committed == 0


def test_from_the_threshold_two_different_approvers_are_needed_and_the_second_one_takes_effect() -> None:
    program = a_program()
    application = an_application(program, "500000.00")
    assert application.approvals_required == 2
    application.approve(program, note=None, stamp=SUPERVISOR)
    assert application.status == "submitted" and program.committed == 0
    again = refused(RuleViolated, lambda: application.approve(program, note=None, stamp=SUPERVISOR))
    assert again.rule == "already_approved_by_approver"
    application.approve(program, note="second pair of eyes", stamp=SECOND_SUPERVISOR)
    assert application.status == "approved" and program.committed == Decimal("500000.00")
    assert [a.approved_by for a in application.approvals] == ["sup-1", "sup-2"]


def test_an_approval_that_would_exceed_the_budget_is_refused_naming_what_remains_and_changes_nothing() -> None:
    program = a_program(budget="15000.00")
    first, second = an_application(program), an_application(program)
    first.approve(program, note=None, stamp=SUPERVISOR)
    second.collect_events()
    program.collect_events()
    error = refused(RuleViolated, lambda: second.approve(program, note=None, stamp=SUPERVISOR))
    assert (error.rule, error.details["remaining"]) == ("budget_exceeded", "5000.00")
    assert second.status == "submitted" and second.collect_events() == [] and program.collect_events() == []
    assert program.committed == Decimal("10000.00")


def test_rejection_only_before_it_takes_effect() -> None:
    program = a_program()
    rejected, approved = an_application(program), an_application(program)
    rejected.reject(reason="no operator", stamp=SUPERVISOR)
    assert rejected.status == "rejected"
    error = refused(RuleViolated, lambda: rejected.approve(program, note=None, stamp=SUPERVISOR))
    assert (error.rule, error.details["current_status"]) == ("application_status", "rejected")
    approved.approve(program, note=None, stamp=SUPERVISOR)
    too_late = refused(RuleViolated, lambda: approved.reject(reason="late", stamp=SUPERVISOR))
    assert too_late.details["current_status"] == "approved"


# -- payments -------------------------------------------------------------------
def test_a_one_off_subsidy_is_paid_once_due_and_its_last_payment_makes_it_paid() -> None:
    program = a_program()
    application = an_application(program, "10000.00")
    not_yet = refused(RuleViolated, lambda: application.record_payment(
        program, amount="1.00", reference="P0", paid_on=TODAY, stamp=FINANCE))
    assert (not_yet.rule, not_yet.details["current_status"]) == ("application_status", "submitted")
    application.approve(program, note=None, stamp=SUPERVISOR)
    too_much = refused(RuleViolated, lambda: application.record_payment(
        program, amount="10000.01", reference="P1", paid_on=TODAY, stamp=FINANCE))
    assert (too_much.rule, too_much.details["due"]) == ("payment_exceeds_due", "10000.00")
    application.record_payment(program, amount="4000.00", reference="P1", paid_on=TODAY, stamp=FINANCE)
    assert refused(RuleViolated, lambda: application.record_payment(
        program, amount="1.00", reference="P1", paid_on=TODAY, stamp=FINANCE)).rule == "payment_reference_used"
    application.record_payment(program, amount="6000.00", reference="P2", paid_on=TODAY, stamp=FINANCE)
    assert (application.status, application.paid, program.paid) == ("paid", Decimal("10000.00"), Decimal("10000.00"))


def test_a_phased_subsidy_pays_each_instalment_once_it_falls_due_and_never_before_approval() -> None:
    program = a_program()
    plan = [("4000.00", date(2027, 1, 15)), ("6000.00", TODAY)]
    application = an_application(program, "10000.00", "phased", instalments=plan)
    application.approve(program, note=None, stamp=SUPERVISOR)
    assert [i.due_on for i in application.schedule] == [TODAY, date(2027, 1, 15)]
    too_much = refused(RuleViolated, lambda: application.record_payment(
        program, amount="10000.00", reference="P1", paid_on=TODAY, stamp=FINANCE))
    assert (too_much.rule, too_much.details["due"]) == ("payment_exceeds_due", "6000.00")
    before_approval = refused(RuleViolated, lambda: application.record_payment(
        program, amount="1.00", reference="P1", paid_on=date(2026, 11, 24), stamp=FINANCE))
    assert before_approval.rule == "paid_before_approval"
    application.record_payment(program, amount="6000.00", reference="P1", paid_on=TODAY, stamp=FINANCE)
    assert application.status == "approved"
    in_january = Stamp(FINANCE.actor, datetime(2027, 1, 20, 2, 0, tzinfo=UTC))
    application.record_payment(program, amount="4000.00", reference="P2", paid_on=date(2027, 1, 16),
                               stamp=in_january)
    assert application.status == "paid"


def test_a_payment_date_in_the_future_is_refused() -> None:
    program = a_program()
    application = an_application(program)
    application.approve(program, note=None, stamp=SUPERVISOR)
    error = refused(InvalidValue, lambda: application.record_payment(
        program, amount="1.00", reference="P1", paid_on=date(2026, 11, 26), stamp=FINANCE))
    assert (error.field, error.rule) == ("paid_on", "effective_date_in_future")


def test_a_reward_in_lieu_is_due_only_once_its_outcome_is_verified() -> None:
    program = a_program()
    application = an_application(program, "8000.00", "reward_in_lieu")
    too_soon = refused(RuleViolated, lambda: application.verify_outcome(verified_on=TODAY, note="x",
                                                                        stamp=SUPERVISOR))
    assert too_soon.details["current_status"] == "submitted"
    application.approve(program, note=None, stamp=SUPERVISOR, target="canteen open", target_due=date(2027, 3, 1))
    assert [i.due_on for i in application.schedule] == [None]
    nothing_due = refused(RuleViolated, lambda: application.record_payment(
        program, amount="8000.00", reference="P1", paid_on=TODAY, stamp=FINANCE))
    assert (nothing_due.rule, nothing_due.details["due"]) == ("payment_exceeds_due", "0.00")
    application.verify_outcome(verified_on=TODAY, note="canteen open", stamp=SECOND_SUPERVISOR)
    assert refused(RuleViolated, lambda: application.verify_outcome(
        verified_on=TODAY, note="x", stamp=SECOND_SUPERVISOR)).rule == "outcome_already_verified"
    application.record_payment(program, amount="8000.00", reference="P1", paid_on=TODAY, stamp=FINANCE)
    assert application.status == "paid"


def test_only_a_reward_in_lieu_has_an_outcome_to_verify() -> None:
    program = a_program()
    application = an_application(program)
    application.approve(program, note=None, stamp=SUPERVISOR)
    assert refused(RuleViolated, lambda: application.verify_outcome(
        verified_on=TODAY, note="x", stamp=SUPERVISOR)).rule == "outcome_not_applicable"


# -- reward in lieu: a target set in advance, verified by a third person, or it lapses ----
THIRD_SUPERVISOR = Stamp(Actor("sup-3", Role.SUPERVISOR), NOW)
ADMIN = Stamp(Actor("adm-1", Role.ADMIN), NOW)


def test_a_reward_in_lieu_takes_effect_only_with_a_target_and_a_deadline_after_today() -> None:
    program = a_program()
    application = an_application(program, "8000.00", "reward_in_lieu")
    for kwargs, field, rule in (
        ({}, "target", "reward_target_required"),
        ({"target": "canteen open"}, "target_due", "reward_target_required"),
        ({"target": " ", "target_due": date(2027, 3, 1)}, "target", "reward_target_required"),
        ({"target": "canteen open", "target_due": TODAY}, "target_due", "target_due_not_after_today"),
        # found by a review: a deadline in 9999 held the budget for good; a fiscal-2026 budget is
        # carried over into 2027 at most
        ({"target": "canteen open", "target_due": date(2028, 1, 1)}, "target_due", "target_due_after_carry_over"),
    ):
        error = refused(InvalidValue, lambda kwargs=kwargs: application.approve(  # type: ignore[misc]
            program, note=None, stamp=SUPERVISOR, **kwargs))
        assert (error.field, error.rule) == (field, rule)
    assert application.status == "submitted" and program.committed == 0
    assert event_names(application) == ["Submitted"]
    one_off = an_application(program)
    assert refused(InvalidValue, lambda: one_off.approve(program, note=None, stamp=SUPERVISOR, target="x",
                                                         target_due=date(2027, 3, 1))).rule == "target_not_applicable"
    application.approve(program, note=None, stamp=SUPERVISOR, target="canteen open", target_due=date(2027, 3, 1))
    assert (application.target, application.target_due) == ("canteen open", date(2027, 3, 1))


def test_a_target_given_with_a_first_approval_holds_when_the_second_takes_effect() -> None:
    program = a_program()
    application = an_application(program, "600000.00", "reward_in_lieu")
    application.approve(program, note=None, stamp=SUPERVISOR, target="school built", target_due=date(2027, 9, 1))
    application.approve(program, note=None, stamp=SECOND_SUPERVISOR)
    assert application.status == "approved" and application.target_due == date(2027, 9, 1)


def test_the_verifier_is_a_supervisor_who_neither_submitted_nor_approved() -> None:
    program = a_program()
    application = an_application(program, "8000.00", "reward_in_lieu", submitter=SECOND_SUPERVISOR)
    application.approve(program, note=None, stamp=SUPERVISOR, target="canteen open", target_due=date(2027, 3, 1))
    for stamp, rule in ((SUPERVISOR, "verifier_is_approver"), (SECOND_SUPERVISOR, "verifier_is_submitter"),
                        (ADMIN, "verifier_not_supervisor")):
        error = refused(RuleViolated, lambda stamp=stamp: application.verify_outcome(  # type: ignore[misc]
            verified_on=TODAY, note="x", stamp=stamp))
        assert error.rule == rule
    late = refused(RuleViolated, lambda: application.verify_outcome(
        verified_on=date(2027, 3, 2), note="x", stamp=Stamp(THIRD_SUPERVISOR.actor, datetime(2027, 3, 5, 2, 0,
                                                                                              tzinfo=UTC))))
    assert late.rule == "reward_deadline_passed"
    application.verify_outcome(verified_on=TODAY, note="canteen open", stamp=THIRD_SUPERVISOR)
    assert application.outcome_verified_on == TODAY


def test_an_unverified_reward_lapses_after_its_deadline_and_releases_its_budget() -> None:
    program = a_program()
    application = an_application(program, "8000.00", "reward_in_lieu")
    application.approve(program, note=None, stamp=SUPERVISOR, target="canteen open", target_due=date(2027, 3, 1))
    assert program.committed == Decimal("8000.00")
    on_the_day = Stamp(SYSTEM, datetime(2027, 3, 1, 2, 0, tzinfo=UTC))
    assert not application.lapses_by(on_the_day.today)
    assert refused(RuleViolated, lambda: application.lapse(program, stamp=on_the_day)).rule == "reward_not_lapsed"
    after = Stamp(SYSTEM, datetime(2027, 3, 2, 2, 0, tzinfo=UTC))
    program.collect_events()
    application.lapse(program, stamp=after)
    assert (application.status, program.committed, program.remaining) == ("lapsed", 0, program.budget)
    assert event_names(program) == ["CommitmentReleased"]
    assert refused(RuleViolated, lambda: application.verify_outcome(
        verified_on=TODAY, note="x", stamp=THIRD_SUPERVISOR)).details["current_status"] == "lapsed"


# -- revocation -----------------------------------------------------------------
def test_revocation_releases_the_unpaid_commitment_and_claws_back_at_most_what_was_paid() -> None:
    program = a_program()
    plan = [("6000.00", date(2026, 11, 25)), ("4000.00", date(2027, 3, 1))]
    application = an_application(program, "10000.00", "phased", instalments=plan)
    refused(RuleViolated, lambda: application.revoke(program, reason="x", claw_back="0.00", stamp=SUPERVISOR))
    application.approve(program, note=None, stamp=SUPERVISOR)
    application.record_payment(program, amount="6000.00", reference="P1", paid_on=TODAY, stamp=FINANCE)
    error = refused(RuleViolated, lambda: application.revoke(program, reason="x", claw_back="6000.01",
                                                             stamp=SUPERVISOR))
    assert (error.rule, error.details["paid"]) == ("claw_back_exceeds_paid", "6000.00")
    program.collect_events()
    application.revoke(program, reason="never built", claw_back="6000.00", stamp=SUPERVISOR)
    assert (application.status, application.claw_back) == ("revoked", Decimal("6000.00"))
    assert (program.committed, program.paid) == (Decimal("6000.00"), Decimal("6000.00"))
    assert event_names(program) == ["CommitmentReleased"]
    after = refused(RuleViolated, lambda: application.record_payment(
        program, amount="1.00", reference="P2", paid_on=TODAY, stamp=FINANCE))
    assert after.details["current_status"] == "revoked"


# -- equal treatment --------------------------------------------------------------
def test_no_rule_depends_on_the_operator_type() -> None:
    def outcome(operator_type: str) -> list[Any]:
        program = a_program(budget="900000.00")
        results: list[Any] = []
        for amount, mode in (("500000.00", "one_off"), ("400000.00", "reward_in_lieu"), ("100.00", "one_off")):
            application = an_application(program, amount, mode, site=a_site(operator_type))
            target = {"target": "canteen", "target_due": date(2027, 3, 1)} if mode == "reward_in_lieu" else {}
            for stamp in (SUPERVISOR, SECOND_SUPERVISOR):
                try:
                    application.approve(program, note=None, stamp=stamp, **target)  # type: ignore[arg-type]
                except RuleViolated as error:
                    results.append(error.rule)
            results.append((application.status, application.approvals_required, application.paid))
        results.append((program.committed, program.remaining))
        return results

    outcomes = {operator_type.value: outcome(operator_type.value) for operator_type in OperatorType}
    first = next(iter(outcomes.values()))
    assert all(result == first for result in outcomes.values()), outcomes


def test_a_reward_deadline_given_with_the_first_approval_must_still_lie_ahead_when_the_second_takes_effect() -> None:
    """Found by a review: the day, checked only when given, had passed when the second approval
    came; the reward took effect past its deadline and lapsed at the next sweep."""
    program = a_program()
    application = an_application(program, "600000.00", mode="reward_in_lieu")
    application.approve(program, note=None, stamp=SUPERVISOR, target="canteen open", target_due=date(2026, 11, 26))
    later = Stamp(Actor("sup-2", Role.SUPERVISOR), datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    stale = refused(InvalidValue, lambda: application.approve(program, note=None, stamp=later))
    assert (stale.rule, stale.field) == ("target_due_not_after_today", "target_due")
    assert program.committed == 0 and application.status == "submitted"
    application.approve(program, note=None, stamp=later, target="canteen open", target_due=date(2027, 3, 1))
    assert application.status == "approved" and application.target_due == date(2027, 3, 1)
