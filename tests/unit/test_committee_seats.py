"""Committee seats: a departure vacates a seat and a return resumes it, in the
committee's own events, and the quorum counts from them."""

from datetime import UTC, date, datetime

import pytest

from domain.committees import ManagementCommittee
from domain.common import Actor, InvalidValue, Role, RuleViolated, Stamp

STAMP = Stamp(Actor("sv-1", Role.SUPERVISOR), datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


def a_committee(size: int = 3) -> ManagementCommittee:
    return ManagementCommittee.establish(
        name="Ginkgo committee", area="xinqiao", site_id=None, members=[{"name": f"M{n}"} for n in range(size)],
        established_on=date(2026, 1, 10), stamp=STAMP,
    )


def test_a_vacant_seat_leaves_the_quorum_and_a_resumed_seat_rejoins_it() -> None:
    committee = a_committee(4)
    first = next(iter(committee.members))
    assert committee.quorum() == 3
    assert committee.vacate_seat(member_id=first, vacated_on=date(2026, 11, 1), reason="departed the district",
                                 stamp=STAMP)
    assert committee.quorum() == 2 and committee.is_vacant(first)
    assert not committee.vacate_seat(member_id=first, vacated_on=date(2026, 11, 2), reason="again", stamp=STAMP)
    assert committee.resume_seat(member_id=first, resumed_on=date(2026, 11, 20), stamp=STAMP)
    assert committee.quorum() == 3 and not committee.is_vacant(first)
    assert not committee.resume_seat(member_id=first, resumed_on=date(2026, 11, 21), stamp=STAMP)
    names = [type(e).__name__ for e in committee.collect_events()]
    assert names == ["Established", "SeatVacated", "SeatResumed"]


def test_a_member_in_a_vacant_seat_cannot_attend_and_does_not_count() -> None:
    committee = a_committee(3)
    ids = list(committee.members)
    committee.vacate_seat(member_id=ids[0], vacated_on=date(2026, 11, 1), reason="departed the district",
                          stamp=STAMP)
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 11, 24), agenda=[{"title": "t"}], stamp=STAMP)
    with pytest.raises(InvalidValue) as refused:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 24), attendees=[ids[0], ids[1]],
                                 decisions=[], stamp=STAMP)
    assert refused.value.rule == "member_departed"
    with pytest.raises(RuleViolated) as no_quorum:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 24), attendees=[ids[1]],
                                 decisions=[{"item_id": "1", "decision": "x"}], stamp=STAMP)
    assert no_quorum.value.rule == "no_quorum"
    committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 24), attendees=ids[1:],
                             decisions=[{"item_id": "1", "decision": "x"}], stamp=STAMP)
    assert committee.meetings[meeting]["minutes"]["quorum"] is True


def test_a_seat_cannot_fall_vacant_before_the_member_joined() -> None:
    committee = a_committee(2)
    with pytest.raises(RuleViolated) as refused:
        committee.vacate_seat(member_id=next(iter(committee.members)), vacated_on=date(2025, 12, 31),
                              reason="departed the district", stamp=STAMP)
    assert refused.value.rule == "departed_before_joining_committee"


def test_agenda_topics_are_the_seeds_five_and_a_dispute_item_is_about_disputes() -> None:
    committee = a_committee(3)
    with pytest.raises(InvalidValue) as refused:
        committee.schedule_meeting(scheduled_on=date(2026, 11, 24), agenda=[{"title": "t", "topic": "parking"}],
                                   stamp=STAMP)
    assert (refused.value.rule, refused.value.field) == ("agenda_topic", "agenda.0.topic")
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 11, 24), stamp=STAMP, agenda=[
        {"dispute_id": "0e5f6a9c-2f51-4f0e-9b5b-3f9a2f0c1d11"}, {"title": "Rota", "topic": "sanitation"}])
    assert [i["topic"] for i in committee.meetings[meeting]["agenda"]] == ["disputes", "sanitation"]


def test_a_decision_assigns_actions_to_sitting_members_followed_to_done() -> None:
    committee = a_committee(3)
    ids = list(committee.members)
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 11, 2), agenda=[{"title": "Wages"}], stamp=STAMP)
    decision = {"item_id": "1", "decision": "press the employer",
                "actions": [{"description": "call the employer", "owner": ids[0], "due_on": date(2026, 11, 20)}]}
    with pytest.raises(InvalidValue) as stranger:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 2), attendees=ids, stamp=STAMP,
                                 decisions=[{**decision, "actions": [{**decision["actions"][0], "owner": "nobody"}]}])
    assert stranger.value.rule == "action_owner_not_member"
    with pytest.raises(InvalidValue) as early:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 2), attendees=ids, stamp=STAMP,
                                 decisions=[{**decision, "actions": [{**decision["actions"][0],
                                                                      "due_on": date(2026, 11, 1)}]}])
    assert early.value.rule == "action_due_before_meeting"
    with pytest.raises(InvalidValue) as twice_decided:  # found by a review: both decisions were stored
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 2), attendees=ids, stamp=STAMP,
                                 decisions=[decision, {"item_id": "1", "decision": "wait"}])
    assert (twice_decided.value.rule, twice_decided.value.field) == ("item_decided_twice", "decisions.1.item_id")
    committee.record_minutes(meeting_id=meeting, held_on=date(2026, 11, 2), attendees=ids, decisions=[decision],
                             stamp=STAMP)
    (action_id,) = committee.actions
    committee.complete_action(action_id=action_id, done_on=date(2026, 11, 18), note="paid", stamp=STAMP)
    with pytest.raises(RuleViolated) as twice:
        committee.complete_action(action_id=action_id, done_on=date(2026, 11, 19), note=None, stamp=STAMP)
    assert twice.value.rule == "action_done"


def test_the_sweep_records_each_month_without_a_meeting_once() -> None:
    committee = a_committee(3)  # established 2026-01-10
    ids = list(committee.members)
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 3, 5), agenda=[{"title": "t"}], stamp=STAMP)
    committee.record_minutes(meeting_id=meeting, held_on=date(2026, 3, 5), attendees=ids, decisions=[], stamp=STAMP)
    missed = committee.record_missed_months(date(2026, 11, 25), STAMP)
    assert missed == ["2026-02", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
    assert committee.record_missed_months(date(2026, 11, 30), STAMP) == []
    assert committee.record_missed_months(date(2026, 12, 1), STAMP) == ["2026-11"]
    late = committee.schedule_meeting(scheduled_on=date(2026, 6, 9), agenda=[{"title": "t"}], stamp=STAMP)
    committee.record_minutes(meeting_id=late, held_on=date(2026, 6, 9), attendees=ids, decisions=[], stamp=STAMP)
    assert "2026-06" not in committee.months_missed


def test_a_committee_established_long_ago_looks_back_one_year() -> None:
    old = ManagementCommittee.establish(name="Old", area="xinqiao", site_id=None, members=[{"name": "W"}],
                                        established_on=date(2006, 7, 15), stamp=STAMP)
    assert len(old.record_missed_months(date(2026, 11, 25), STAMP)) == 12


def test_minutes_are_judged_by_the_members_of_the_day_the_meeting_was_held() -> None:
    """Found by a review: minutes recorded late were checked against today's members, so a
    member who departed since could not be listed, one who joined since could, and the quorum
    was today's."""
    committee = a_committee(3)
    first, second, third = list(committee.members)
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 9, 5), agenda=[{"title": "t"}], stamp=STAMP)
    late = committee.add_member(member={"name": "Late"}, joined_on=date(2026, 10, 1), stamp=STAMP)
    committee.vacate_seat(member_id=first, vacated_on=date(2026, 11, 1), reason="departed the district",
                          stamp=STAMP)
    with pytest.raises(InvalidValue) as not_yet:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 9, 5), attendees=[late, second],
                                 decisions=[], stamp=STAMP)
    assert not_yet.value.rule == "not_a_member_then" and not_yet.value.field == "attendees"
    assert not_yet.value.details["members"] == [late]
    # Three sat that day (the quorum two); the departed member's seat was not vacant yet.
    committee.record_minutes(meeting_id=meeting, held_on=date(2026, 9, 5), attendees=[first, second],
                             decisions=[{"item_id": "1", "decision": "x"}], stamp=STAMP)
    assert committee.meetings[meeting]["minutes"]["quorum"] is True
    assert committee.sitting_on(date(2026, 9, 5)) == {first, second, third}
    assert committee.sitting_on(date(2026, 11, 5)) == {second, third, late}


def test_a_member_away_on_the_day_or_removed_before_it_did_not_sit_that_day() -> None:
    committee = a_committee(3)
    first, second, third = list(committee.members)
    committee.vacate_seat(member_id=first, vacated_on=date(2026, 5, 1), reason="away", stamp=STAMP)
    committee.resume_seat(member_id=first, resumed_on=date(2026, 7, 1), stamp=STAMP)
    committee.remove_member(member_id=third, reason="moved on", left_on=date(2026, 6, 1), stamp=STAMP)
    assert committee.sitting_on(date(2026, 4, 30)) == {first, second, third}
    assert committee.sitting_on(date(2026, 6, 15)) == {second}
    assert committee.sitting_on(date(2026, 7, 1)) == {first, second}
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 6, 15), agenda=[{"title": "t"}], stamp=STAMP)
    with pytest.raises(InvalidValue) as away:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 6, 15), attendees=[first, second],
                                 decisions=[], stamp=STAMP)
    assert away.value.rule == "member_departed"
    with pytest.raises(InvalidValue) as gone:
        committee.record_minutes(meeting_id=meeting, held_on=date(2026, 6, 15), attendees=[third, second],
                                 decisions=[], stamp=STAMP)
    assert gone.value.rule == "not_a_member_then"


def test_a_member_is_not_removed_before_joining_nor_before_a_meeting_they_attended() -> None:
    committee = a_committee(2)
    first = next(iter(committee.members))
    late = committee.add_member(member={"name": "Late"}, joined_on=date(2026, 10, 1), stamp=STAMP)
    with pytest.raises(RuleViolated) as before_joining:
        committee.remove_member(member_id=late, reason="left", left_on=date(2026, 9, 1), stamp=STAMP)
    assert before_joining.value.rule == "left_before_joining"
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 10, 5), agenda=[{"title": "t"}], stamp=STAMP)
    committee.record_minutes(meeting_id=meeting, held_on=date(2026, 10, 5), attendees=[first, late], decisions=[],
                             stamp=STAMP)
    with pytest.raises(RuleViolated) as before_meeting:
        committee.remove_member(member_id=first, reason="left", left_on=date(2026, 10, 4), stamp=STAMP)
    assert before_meeting.value.rule == "left_before_meeting_attended"
    assert before_meeting.value.details["earliest"] == "2026-10-05"
    committee.remove_member(member_id=first, reason="left", left_on=date(2026, 10, 5), stamp=STAMP)


def test_a_member_added_takes_effect_on_the_day_they_joined() -> None:
    """Found by a review: the published event's effectivedate was the day it was recorded."""
    from application.events import EventCatalogue

    added = EventCatalogue.of_domain().by_name["ManagementCommittee.MemberAdded"]
    assert added.effective_date({"member": {"name": "x", "joined_on": "2026-02-01"}}) == "2026-02-01"
    assert added.effective_date({"member": None}) is None


def test_a_seat_does_not_fall_vacant_before_a_meeting_its_member_attended() -> None:
    committee = a_committee(2)
    first, second = list(committee.members)
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 3, 1), agenda=[{"title": "t"}], stamp=STAMP)
    committee.record_minutes(meeting_id=meeting, held_on=date(2026, 3, 1), attendees=[first, second], decisions=[],
                             stamp=STAMP)
    with pytest.raises(RuleViolated) as early:
        committee.vacate_seat(member_id=first, vacated_on=date(2026, 2, 15), reason="departed", stamp=STAMP)
    assert early.value.rule == "departed_before_meeting_attended"
    assert committee.vacate_seat(member_id=first, vacated_on=date(2026, 3, 1), reason="departed", stamp=STAMP)
