"""Operator and co-building rules, checked without any I/O: the sites an operator runs and
the one-operator-per-site claim, employees of an employer operator only, yearly reports
and corrections, sanitation inspections; pairings and their contributions."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from domain.cobuilding import Pairing
from domain.common import Actor, InvalidValue, Role, RuleViolated, Stamp
from domain.identity import IdentityNumber
from domain.operators import Operator, SiteOperatorClaim, YearlyReport, site_claim_id
from domain.residents import Resident
from domain.sites import OperatorType
from tests.factories import id_number

NOW = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 2026-11-25 in Shanghai
SUPERVISOR = Stamp(Actor("sup-1", Role.SUPERVISOR), NOW)
FIGURES = {"income_from_site": "100000.00", "reinvested_management": "10000.00",
           "reinvested_sanitation": "5000.00", "reinvested_facilities": "15000.00"}


def an_operator(operator_type: str = "village_cooperative") -> Operator:
    return Operator.register(operator_type=operator_type, name="Yanhai Cooperative", contact="Chen Jie 13800000000",
                             area="Xinqiao", stamp=SUPERVISOR)


def running(operator: Operator, site_id: Any = None, assigned_on: date = date(2026, 1, 1)) -> Any:
    site_id = site_id or uuid4()
    operator.assign_site(None, site_id=site_id, site_area="Xinqiao", assigned_on=assigned_on, stamp=SUPERVISOR)
    return site_id


def refused(error: type[Exception], action: Any) -> Any:
    with pytest.raises(error) as caught:
        action()
    return caught.value


def event_names(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


# -- registration ---------------------------------------------------------------
def test_an_operator_is_one_of_the_three_types_the_office_recognises() -> None:
    assert {an_operator(t.value).operator_type for t in OperatorType} == {t.value for t in OperatorType}
    error = refused(InvalidValue, lambda: an_operator("landlord"))
    assert (error.field, error.rule) == ("type", "operator_type_unknown")


def test_an_operator_has_a_name() -> None:
    error = refused(InvalidValue, lambda: Operator.register(operator_type="employer", name="  ", contact="x",
                                                             area="Xinqiao", stamp=SUPERVISOR))
    assert (error.field, error.rule) == ("name", "operator_name_missing")


# -- sites and their claims -----------------------------------------------------
def test_a_site_assigned_to_an_operator_makes_the_site_claim_with_the_site_derived_id() -> None:
    operator, site_id = an_operator(), uuid4()
    claim = operator.assign_site(None, site_id=site_id, site_area="Xinqiao", assigned_on=date(2026, 1, 1),
                                 stamp=SUPERVISOR)
    assert claim.id == site_claim_id(site_id) and claim.operator_id == operator.id
    assert operator.runs(site_id)
    assert event_names(operator) == ["Registered", "SiteAssigned"]


def test_a_site_run_by_one_operator_is_refused_to_another_until_released() -> None:
    first, second, site_id = an_operator(), an_operator("employer"), uuid4()
    claim = first.assign_site(None, site_id=site_id, site_area="Xinqiao", assigned_on=date(2026, 1, 1),
                              stamp=SUPERVISOR)
    error = refused(RuleViolated, lambda: second.assign_site(claim, site_id=site_id, site_area="Xinqiao",
                                                             assigned_on=date(2026, 2, 1), stamp=SUPERVISOR))
    assert error.rule == "site_run_by_another_operator" and error.details["operator_id"] == str(first.id)
    assert not second.runs(site_id)
    first.release_site(claim, site_id=site_id, released_on=date(2026, 6, 30), reason="contract ended",
                       stamp=SUPERVISOR)
    second.assign_site(claim, site_id=site_id, site_area="Xinqiao", assigned_on=date(2026, 7, 1), stamp=SUPERVISOR)
    assert claim.operator_id == second.id and second.runs(site_id) and not first.runs(site_id)
    assert event_names(claim) == ["Claimed", "Released", "Taken"]


def test_an_operator_is_not_assigned_a_site_it_runs_already() -> None:
    operator = an_operator()
    site_id = running(operator)
    error = refused(RuleViolated, lambda: running(operator, site_id))
    assert error.rule == "site_already_assigned"


def test_a_site_is_assigned_on_a_day_not_in_the_future() -> None:
    error = refused(InvalidValue, lambda: running(an_operator(), assigned_on=date(2026, 11, 26)))
    assert (error.field, error.rule) == ("assigned_on", "effective_date_in_future")


def test_only_a_site_the_operator_runs_is_released_and_not_before_it_was_assigned() -> None:
    operator, other = an_operator(), an_operator()
    site_id = uuid4()
    claim = operator.assign_site(None, site_id=site_id, site_area="Xinqiao", assigned_on=date(2026, 3, 1),
                                 stamp=SUPERVISOR)
    error = refused(RuleViolated, lambda: other.release_site(claim, site_id=site_id, released_on=date(2026, 4, 1),
                                                             reason="x", stamp=SUPERVISOR))
    assert error.rule == "site_not_run_by_operator"
    error = refused(RuleViolated, lambda: operator.release_site(claim, site_id=site_id,
                                                                released_on=date(2026, 2, 1), reason="x",
                                                                stamp=SUPERVISOR))
    assert error.rule == "released_before_assigned"
    assert claim.operator_id == operator.id
    # Nor before an inspection of the site recorded while it ran it (found by a review).
    operator.record_inspection(site_id=site_id, inspected_on=date(2026, 10, 1), score=80, findings="", stamp=SUPERVISOR)
    error = refused(RuleViolated, lambda: operator.release_site(claim, site_id=site_id, released_on=date(2026, 5, 1),
                                                                reason="x", stamp=SUPERVISOR))
    assert (error.rule, error.details["earliest"]) == ("released_before_last_inspection", "2026-10-01")
    operator.release_site(claim, site_id=site_id, released_on=date(2026, 10, 1), reason="x", stamp=SUPERVISOR)


# -- employees ------------------------------------------------------------------
def a_resident(registered_on: date = date(2026, 3, 1)) -> Resident:
    return Resident.register(id_number=IdentityNumber.parse(id_number()), name="Li Wei", phone="13800138000",
                             hometown="Anhui", employer=None, area="xinqi", registered_on=registered_on,
                             stamp=SUPERVISOR)


@pytest.mark.parametrize("operator_type", ["village_cooperative", "government_entrusted"])
def test_only_an_employer_operator_links_employees(operator_type: str) -> None:
    error = refused(RuleViolated, lambda: an_operator(operator_type).link_employee(
        resident=a_resident(), linked_on=date(2026, 5, 1), stamp=SUPERVISOR))
    assert error.rule == "employees_only_for_employer_operator"


def test_an_employer_links_and_unlinks_an_employee_once() -> None:
    employer, person = an_operator("employer"), a_resident()
    resident = person.id
    employer.link_employee(resident=person, linked_on=date(2026, 5, 1), stamp=SUPERVISOR)
    again = refused(RuleViolated, lambda: employer.link_employee(resident=person, linked_on=date(2026, 5, 2),
                                                                 stamp=SUPERVISOR))
    assert again.rule == "employee_already_linked"
    early = refused(RuleViolated, lambda: employer.unlink_employee(resident_id=resident,
                                                                   unlinked_on=date(2026, 4, 1), stamp=SUPERVISOR))
    assert early.rule == "unlinked_before_linked"
    employer.unlink_employee(resident_id=resident, unlinked_on=date(2026, 9, 1), stamp=SUPERVISOR)
    gone = refused(RuleViolated, lambda: employer.unlink_employee(resident_id=resident,
                                                                  unlinked_on=date(2026, 9, 2), stamp=SUPERVISOR))
    assert gone.rule == "employee_not_linked"
    assert employer.employees == {}


def test_an_employee_is_on_the_register_in_the_district_and_not_erased_on_the_day_linked() -> None:
    """Found by a review: an erased resident, one away from the district, and a link dated years
    before the registration were all taken."""
    employer = an_operator("employer")
    before = refused(RuleViolated, lambda: employer.link_employee(resident=a_resident(), linked_on=date(2020, 1, 1),
                                                                  stamp=SUPERVISOR))
    assert before.rule == "effective_date_before_registration"
    gone = a_resident()
    gone.depart(effective_date=date(2026, 6, 1), reason="home", stamp=SUPERVISOR)
    away = refused(RuleViolated, lambda: employer.link_employee(resident=gone, linked_on=date(2026, 7, 1),
                                                                stamp=SUPERVISOR))
    assert away.rule == "resident_away_then"
    employer.link_employee(resident=gone, linked_on=date(2026, 5, 1), stamp=SUPERVISOR)  # told late: taken
    erased = a_resident()
    erased.erase_personal_data(legal_basis="data_subject_request", note="request 1", stamp=SUPERVISOR)
    refusal = refused(RuleViolated, lambda: employer.link_employee(resident=erased, linked_on=date(2026, 5, 1),
                                                                   stamp=SUPERVISOR))
    assert refusal.rule == "already_erased"


# -- yearly reports -------------------------------------------------------------
def test_a_yearly_report_gives_the_reinvestment_ratio_and_none_without_income() -> None:
    operator = an_operator()
    operator.file_report(year=2025, figures=FIGURES, stamp=SUPERVISOR)
    assert operator.reports[2025].ratio == Decimal("0.3000")
    operator.file_report(year=2024, figures={**FIGURES, "income_from_site": "0"}, stamp=SUPERVISOR)
    assert operator.reports[2024].ratio is None
    assert YearlyReport(2023, Decimal("3.00"), Decimal("1.00"), Decimal("0"), Decimal("0")).ratio == Decimal("0.3333")


def test_one_report_per_year_a_change_is_a_correction_of_a_filed_report() -> None:
    operator = an_operator()
    missing = refused(RuleViolated, lambda: operator.correct_report(year=2025, figures=FIGURES, reason="typo",
                                                                    stamp=SUPERVISOR))
    assert missing.rule == "report_not_filed"
    operator.file_report(year=2025, figures=FIGURES, stamp=SUPERVISOR)
    twice = refused(RuleViolated, lambda: operator.file_report(year=2025, figures=FIGURES, stamp=SUPERVISOR))
    assert twice.rule == "report_already_filed"
    operator.correct_report(year=2025, figures={**FIGURES, "reinvested_sanitation": "25000.00"}, reason="receipts",
                            stamp=SUPERVISOR)
    operator.correct_report(year=2025, figures={**FIGURES, "reinvested_sanitation": "25000"}, reason="the same",
                            stamp=SUPERVISOR)
    assert operator.reports[2025].ratio == Decimal("0.5000")
    assert event_names(operator) == ["Registered", "YearlyReportFiled", "YearlyReportCorrected"]


@pytest.mark.parametrize(("year", "figures", "field", "rule"), [
    (2027, FIGURES, "year", "report_year_out_of_range"),
    (1999, FIGURES, "year", "report_year_out_of_range"),
    (2025, {**FIGURES, "income_from_site": "-1"}, "income_from_site", "money_format"),
    (2025, {**FIGURES, "reinvested_facilities": "1.005"}, "reinvested_facilities", "money_format"),
])
def test_a_report_is_for_a_year_begun_with_figures_in_yuan(year: int, figures: dict[str, str], field: str,
                                                           rule: str) -> None:
    error = refused(InvalidValue, lambda: an_operator().file_report(year=year, figures=figures, stamp=SUPERVISOR))
    assert (error.field, error.rule) == (field, rule)


# -- sanitation -----------------------------------------------------------------
def test_an_inspection_is_of_a_site_the_operator_runs_since_before_the_inspection() -> None:
    operator = an_operator()
    site_id = running(operator, assigned_on=date(2026, 3, 1))
    other = refused(RuleViolated, lambda: operator.record_inspection(site_id=uuid4(), inspected_on=date(2026, 4, 1),
                                                                     score=80, findings="", stamp=SUPERVISOR))
    assert other.rule == "site_not_run_by_operator"
    early = refused(RuleViolated, lambda: operator.record_inspection(
        site_id=site_id, inspected_on=date(2026, 2, 1), score=80, findings="", stamp=SUPERVISOR))
    assert early.rule == "inspected_before_assigned"
    operator.record_inspection(site_id=site_id, inspected_on=date(2026, 4, 1), score=80, findings="bins full",
                               stamp=SUPERVISOR)
    inspected = operator.collect_events()[-1]
    assert (inspected.site_area, inspected.score) == ("Xinqiao", 80)  # type: ignore[attr-defined]


@pytest.mark.parametrize("score", [-1, 101])
def test_a_sanitation_score_lies_between_0_and_100(score: int) -> None:
    operator = an_operator()
    site_id = running(operator)
    error = refused(InvalidValue, lambda: operator.record_inspection(
        site_id=site_id, inspected_on=date(2026, 4, 1), score=score, findings="", stamp=SUPERVISOR))
    assert (error.field, error.rule) == ("score", "score_out_of_range")


def test_no_rule_but_employment_reads_the_operator_type() -> None:
    """Equal treatment: the same commands give the same events for every type, except linking employees."""
    outcomes = []
    for operator_type in OperatorType:
        operator = an_operator(operator_type.value)
        site_id = running(operator)
        operator.file_report(year=2025, figures=FIGURES, stamp=SUPERVISOR)
        operator.record_inspection(site_id=site_id, inspected_on=date(2026, 4, 1), score=70, findings="",
                                   stamp=SUPERVISOR)
        outcomes.append(event_names(operator))
    assert outcomes[0] == outcomes[1] == outcomes[2]


# -- co-building ----------------------------------------------------------------
def a_pairing(agreed_on: date = date(2026, 3, 1)) -> Pairing:
    return Pairing.agree(site_id=uuid4(), site_area="Xinqiao", partner_type="enterprise",
                         partner_name="Shenzhou Knitting", agreed_on=agreed_on, stamp=SUPERVISOR)


def test_a_pairing_is_with_an_enterprise_unit_or_school_named() -> None:
    for partner_type in ("enterprise", "unit", "school"):
        assert Pairing.agree(site_id=uuid4(), site_area="Xinqiao", partner_type=partner_type, partner_name="P",
                             agreed_on=date(2026, 3, 1), stamp=SUPERVISOR).partner_type == partner_type
    error = refused(InvalidValue, lambda: Pairing.agree(site_id=uuid4(), site_area="Xinqiao", partner_type="church",
                                                        partner_name="P", agreed_on=date(2026, 3, 1),
                                                        stamp=SUPERVISOR))
    assert (error.field, error.rule) == ("partner_type", "partner_type_unknown")
    error = refused(InvalidValue, lambda: a_pairing(agreed_on=date(2026, 12, 1)))
    assert (error.field, error.rule) == ("agreed_on", "effective_date_in_future")


def test_a_contribution_of_money_gives_its_value_others_may() -> None:
    pairing = a_pairing()
    error = refused(InvalidValue, lambda: pairing.deliver(delivered_on=date(2026, 4, 1), kind="money",
                                                          description="for the canteen", value_yuan=None,
                                                          stamp=SUPERVISOR))
    assert (error.field, error.rule) == ("value_yuan", "money_contribution_without_value")
    error = refused(InvalidValue, lambda: pairing.deliver(delivered_on=date(2026, 4, 1), kind="cake",
                                                          description="", value_yuan=None, stamp=SUPERVISOR))
    assert (error.field, error.rule) == ("kind", "kind_unknown")
    pairing.deliver(delivered_on=date(2026, 4, 1), kind="labour", description="cleaned the yards", value_yuan=None,
                    stamp=SUPERVISOR)
    pairing.deliver(delivered_on=date(2026, 4, 2), kind="money", description="canteen", value_yuan="5000",
                    stamp=SUPERVISOR)
    delivered = pairing.collect_events()[-1]
    assert delivered.value_yuan == Decimal("5000.00")  # type: ignore[attr-defined]


def test_a_contribution_falls_within_the_pairing_and_an_end_after_the_last_contribution() -> None:
    pairing = a_pairing()
    early = refused(RuleViolated, lambda: pairing.deliver(delivered_on=date(2026, 2, 1), kind="goods",
                                                          description="books", value_yuan=None, stamp=SUPERVISOR))
    assert early.rule == "delivered_before_agreed"
    pairing.deliver(delivered_on=date(2026, 6, 1), kind="goods", description="books", value_yuan="800.00",
                    stamp=SUPERVISOR)
    before_last = refused(RuleViolated, lambda: pairing.end(ended_on=date(2026, 5, 1), reason="moved",
                                                            stamp=SUPERVISOR))
    assert before_last.rule == "ended_before_last_contribution"
    pairing.end(ended_on=date(2026, 9, 30), reason="the company moved", stamp=SUPERVISOR)
    after = refused(RuleViolated, lambda: pairing.deliver(delivered_on=date(2026, 10, 1), kind="training",
                                                          description="", value_yuan=None, stamp=SUPERVISOR))
    assert after.rule == "pairing_ended"
    # delivered before the end, recorded late: accepted
    pairing.deliver(delivered_on=date(2026, 9, 1), kind="training", description="first aid", value_yuan=None,
                    stamp=SUPERVISOR)
    twice = refused(RuleViolated, lambda: pairing.end(ended_on=date(2026, 10, 1), reason="x", stamp=SUPERVISOR))
    assert twice.rule == "pairing_ended"


def test_a_pairing_without_contributions_ends_not_before_it_was_agreed() -> None:
    error = refused(RuleViolated, lambda: a_pairing().end(ended_on=date(2026, 2, 1), reason="x", stamp=SUPERVISOR))
    assert error.rule == "ended_before_agreed"


def test_site_claim_is_refused_to_an_operator_who_does_not_hold_it() -> None:
    owner, site_id = uuid4(), uuid4()
    claim = SiteOperatorClaim.claim(site_id=site_id, operator_id=owner, stamp=SUPERVISOR)
    error = refused(RuleViolated, lambda: claim.release(uuid4(), SUPERVISOR))
    assert error.rule == "site_not_run_by_operator"
