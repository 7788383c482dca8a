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
