"""A site's way to a community (成熟一个发展一个), checked on the aggregate alone."""

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from domain.common import Actor, InvalidValue, Role, RuleViolated, Stamp
from domain.sites import HousingSite, readiness_conditions, size_band

STAMP = Stamp(Actor("sv-1", Role.SUPERVISOR), datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
CHECKLIST = ["canteen", "clinic", "kindergarten"]


def a_site() -> HousingSite:
    return HousingSite.register(name="Ginkgo", area="xinqi", address="1 Road", operator_type="village_cooperative",
                                operator_name="Ginkgo Cooperative", capacity=3000, facilities=[], stamp=STAMP)


def assess(site: HousingSite, on: date, **overrides: object) -> list[str]:
    fields: dict[str, object] = {"headcount": 3100, "facilities_present": CHECKLIST, "operator_status": "clear",
                                 "villages": ["Ginkgo"], "checklist": CHECKLIST, "min_headcount": 500, "note": None}
    fields.update(overrides)
    return site.assess(assessed_on=on, stamp=STAMP, **fields)  # type: ignore[arg-type]


def candidates(votes: list[int]) -> list[dict[str, object]]:
    return [{"name": f"C{n}", "votes": v} for n, v in enumerate(votes)]


def test_bands_follow_the_census() -> None:
    assert [size_band(n) for n in (1001, 1000, 500, 499, 0)] == [
        "over_1000", "500_to_1000", "500_to_1000", "under_500", "under_500"]


def test_an_assessment_names_each_missing_condition() -> None:
    missing = readiness_conditions(headcount=120, facilities_present=["canteen"], operator_status="disputed",
                                   checklist=CHECKLIST, min_headcount=500)
    assert missing == ["headcount", "facility:clinic", "facility:kindergarten", "operator_clear"]


def test_the_pilot_path_assessment_preparation_election() -> None:
    site = a_site()
    assert assess(site, date(2005, 11, 30)) == []
    site.approve_preparation(approved_on=date(2005, 12, 19), group=[{"name": "Wang"}], note=None, stamp=STAMP)
    elected = site.hold_election(held_on=date(2006, 7, 15), seats=7, candidates=candidates(list(range(100, 90, -1))),
                                 ballots=150, stamp=STAMP)
    assert len(elected) == 7 and site.stage == "community"
    assert [type(e).__name__ for e in site.collect_events()][-3:] == [
        "SiteAssessed", "PreparationApproved", "ElectionHeld"]


def test_a_preparation_is_refused_without_a_fresh_ready_assessment() -> None:
    site = a_site()
    with pytest.raises(RuleViolated) as none:
        site.approve_preparation(approved_on=date(2026, 11, 1), group=[], note=None, stamp=STAMP)
    assert none.value.rule == "site_not_ready" and none.value.details["missing_conditions"] == ["assessment"]
    assess(site, date(2026, 7, 1))
    with pytest.raises(RuleViolated) as stale:
        site.approve_preparation(approved_on=date(2026, 11, 1), group=[], note=None, stamp=STAMP)
    assert stale.value.details["missing_conditions"] == ["fresh_assessment"]
    assess(site, date(2026, 10, 1), facilities_present=["canteen"], operator_status="none")
    with pytest.raises(RuleViolated) as lacking:
        site.approve_preparation(approved_on=date(2026, 11, 1), group=[], note=None, stamp=STAMP)
    assert lacking.value.details["missing_conditions"] == ["facility:clinic", "facility:kindergarten",
                                                           "operator_clear"]
    assert site.stage == "assessed"


def test_an_election_needs_a_preparation_seats_in_range_and_no_tie_for_the_last_seat() -> None:
    site = a_site()
    assess(site, date(2026, 10, 1))
    with pytest.raises(RuleViolated) as early:
        site.hold_election(held_on=date(2026, 11, 1), seats=5, candidates=candidates([9] * 5), ballots=None,
                           stamp=STAMP)
    assert early.value.rule == "election_not_prepared"
    site.approve_preparation(approved_on=date(2026, 10, 20), group=[], note=None, stamp=STAMP)
    with pytest.raises(InvalidValue) as seats:
        site.hold_election(held_on=date(2026, 11, 1), seats=11, candidates=candidates([9] * 12), ballots=None,
                           stamp=STAMP)
    assert seats.value.rule == "seats_out_of_range"
    with pytest.raises(RuleViolated) as tie:
        site.hold_election(held_on=date(2026, 11, 1), seats=5, candidates=candidates([9, 8, 7, 6, 5, 5]),
                           ballots=None, stamp=STAMP)
    assert tie.value.rule == "tie_for_last_seat"
    with pytest.raises(RuleViolated) as majority:
        site.hold_election(held_on=date(2026, 11, 1), seats=5, candidates=candidates([9, 8, 7, 6, 5]), ballots=12,
                           stamp=STAMP)
    assert majority.value.rule == "elected_without_majority"
    with pytest.raises(RuleViolated) as before:
        site.hold_election(held_on=date(2026, 10, 19), seats=5, candidates=candidates([9, 8, 7, 6, 5]),
                           ballots=None, stamp=STAMP)
    assert before.value.rule == "election_before_preparation"


def test_members_change_and_a_term_ends_before_the_next_election() -> None:
    site = a_site()
    assess(site, date(2026, 1, 10))
    site.approve_preparation(approved_on=date(2026, 2, 1), group=[], note=None, stamp=STAMP)
    elected = site.hold_election(held_on=date(2026, 3, 1), seats=5, candidates=candidates([9, 8, 7, 6, 5, 4]),
                                 ballots=None, stamp=STAMP)
    joined = site.change_community_members(changed_on=date(2026, 6, 1), joined=[{"name": "New"}],
                                           left=[elected[0]["member_id"]], reason="moved away", stamp=STAMP)
    assert joined == ["m6"] and set(site.community["members"]) == {"m2", "m3", "m4", "m5", "m6"}  # type: ignore[index]
    with pytest.raises(InvalidValue) as unknown:
        site.change_community_members(changed_on=date(2026, 6, 2), joined=[], left=["m1"], reason="x", stamp=STAMP)
    assert unknown.value.rule == "unknown_member"
    site.end_term(ended_on=date(2026, 11, 1), stamp=STAMP)
    assert site.stage == "term_ended"
    site.hold_election(held_on=date(2026, 11, 20), seats=5, candidates=candidates([5, 4, 3, 2, 1]), ballots=None,
                       stamp=STAMP)
    assert site.stage == "community"


def test_a_term_does_not_end_before_the_last_change_of_its_members() -> None:
    """Found by a review: a term ended before a change made during it, so the history showed a
    change to the old committee after its successor was elected."""
    site = a_site()
    assess(site, date(2026, 1, 10))
    site.approve_preparation(approved_on=date(2026, 2, 1), group=[], note=None, stamp=STAMP)
    site.hold_election(held_on=date(2026, 3, 1), seats=5, candidates=candidates([9, 8, 7, 6, 5]), ballots=None,
                       stamp=STAMP)
    site.change_community_members(changed_on=date(2026, 3, 5), joined=[{"name": "New"}], left=[], reason="x",
                                  stamp=STAMP)
    with pytest.raises(RuleViolated) as early:
        site.end_term(ended_on=date(2026, 3, 2), stamp=STAMP)
    assert early.value.rule == "term_ended_before_members_changed" and early.value.details["earliest"] == "2026-03-05"
    site.end_term(ended_on=date(2026, 3, 5), stamp=STAMP)


def test_no_operator_takes_a_site_over_before_its_last_change_of_operator() -> None:
    """Found by a review: a second operator took a site over dated months before the first let
    it go, so two records ran it on the same days."""
    site = a_site()
    first, second = uuid4(), uuid4()
    site.change_operator(operator_type="employer", operator_name="A", changed_on=date(2026, 3, 1), stamp=STAMP,
                         operator_id=first, field_name="assigned_on")
    site.return_to_previous_operator(operator_id=first, released_on=date(2026, 6, 1), stamp=STAMP)
    with pytest.raises(RuleViolated) as early:
        site.change_operator(operator_type="employer", operator_name="B", changed_on=date(2026, 1, 1), stamp=STAMP,
                             operator_id=second, field_name="assigned_on")
    assert early.value.rule == "operator_change_before_latest"
    assert early.value.details["field"] == "assigned_on" and early.value.details["earliest"] == "2026-06-01"
    site.change_operator(operator_type="employer", operator_name="B", changed_on=date(2026, 6, 1), stamp=STAMP,
                         operator_id=second)
    assert site.operator_id == second


def test_a_closed_site_refuses_what_happens_after_its_closure_and_takes_late_records_of_before() -> None:
    site = a_site()
    site.close(closed_on=date(2026, 10, 1), reason="lease ended", stamp=STAMP)
    site.check_open_on(date(2026, 10, 1), "inspected_on")
    with pytest.raises(RuleViolated) as after:
        site.check_open_on(date(2026, 10, 2), "inspected_on")
    assert after.value.rule == "site_closed" and after.value.details["field"] == "inspected_on"


def test_a_site_does_not_close_before_its_own_last_record() -> None:
    site = a_site()
    assess(site, date(2026, 10, 10))
    with pytest.raises(RuleViolated) as early:
        site.close(closed_on=date(2026, 9, 1), reason="demolished", stamp=STAMP)
    assert early.value.rule == "closed_before_last_record" and early.value.details["earliest"] == "2026-10-10"
    site.close(closed_on=date(2026, 10, 10), reason="demolished", stamp=STAMP)
