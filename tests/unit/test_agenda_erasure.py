"""Erasing the text of one agenda event leaves the titles other events wrote (found by a review:
erasing the items added to a meeting blanked the titles it was scheduled with, and back)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.committees import ManagementCommittee
from domain.common import ERASED, Actor, Role, Stamp

STAMP = Stamp(Actor("unit", Role.CASEWORKER), datetime(2026, 11, 25, 2, tzinfo=UTC))


def _meeting() -> tuple[ManagementCommittee, str, list[str]]:
    committee = ManagementCommittee.establish(name="C", area="xinqi", site_id=None, members=[{"name": "Wang"}],
                                              established_on=date(2026, 1, 10), stamp=STAMP)
    meeting = committee.schedule_meeting(scheduled_on=date(2026, 11, 26), agenda=[{"title": "roof repair"}],
                                         stamp=STAMP)
    added = committee.add_agenda_items(meeting_id=meeting, items=[{"title": "Zhang San's noise complaint"}],
                                       stamp=STAMP)
    return committee, meeting, added


def titles(committee: ManagementCommittee, meeting: str) -> list[str]:
    return [str(i.get("title")) for i in committee.meetings[meeting]["agenda"]]


def test_erasing_the_added_items_leaves_the_scheduled_ones() -> None:
    committee, meeting, added = _meeting()
    committee.erase_texts(items=[{"event": "AgendaItemsAdded", "ref": f"{meeting}:{','.join(added)}"}], stamp=STAMP)
    assert titles(committee, meeting) == ["roof repair", ERASED]


def test_erasing_the_scheduled_items_leaves_the_added_ones() -> None:
    committee, meeting, _ = _meeting()
    committee.erase_texts(items=[{"event": "MeetingScheduled", "ref": meeting}], stamp=STAMP)
    assert titles(committee, meeting) == [ERASED, "Zhang San's noise complaint"]
