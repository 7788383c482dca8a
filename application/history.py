"""A record's history, and the record as it stood at another time.

Two kinds of time are kept apart everywhere:

* **known at** ``T``: what the office had recorded by ``T`` (each event's ``recorded_at``);
* **effective at** ``D``: what was true in the world on date ``D``, as known now (each event's
  effective date: a late-reported move counts from the day it happened).

Both together answer "what did we believe on ``T`` about ``D``". The record is folded from its
events filtered so, by the aggregate's own methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from application.events import EventCatalogue
from application.store import EVENTS_TABLE, OfficeApplication
from domain.common import OFFICE_TZ


@dataclass(frozen=True)
class Entry:
    """One event of a record's history."""

    position: int
    event: Any
    name: str

    @property
    def version(self) -> int:
        return int(self.event.originator_version)

    @property
    def recorded_at(self) -> datetime | None:
        value = getattr(self.event, "recorded_at", None) or getattr(self.event, "timestamp", None)
        return value if isinstance(value, datetime) else None


def recorded_at(event: Any) -> datetime | None:
    value = getattr(event, "recorded_at", None) or getattr(event, "timestamp", None)
    return value if isinstance(value, datetime) else None


def effective_on(event: Any, catalogue: EventCatalogue) -> date | None:
    """The date the event took effect; for one without a date in the world (a note, a
    capacity change), the office's date when it was recorded."""
    event_type = catalogue.by_class.get(type(event))
    if event_type is not None and event_type.effective_field:
        value = event_type.effective_value(event)
        if isinstance(value, date):
            return value
        if isinstance(value, str):  # a date inside an entry (``member.joined_on``) is ISO text
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    when = recorded_at(event)
    return when.astimezone(OFFICE_TZ).date() if when is not None else None


def _dated(event: Any, catalogue: EventCatalogue) -> bool:
    event_type = catalogue.by_class.get(type(event))
    return bool(event_type is not None and event_type.effective_field)


def history(app: OfficeApplication, aggregate_id: UUID, catalogue: EventCatalogue, *, after_version: int = 0,
            limit: int | None = None) -> list[Entry]:
    """The record's events in order with their global positions (personal fields opened)."""
    from eventsourcing.persistence import StoredEvent

    with app.connection() as conn:
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
            " WHERE originator_id = %s AND originator_version > %s ORDER BY originator_version"
            + (" LIMIT %s" if limit else ""),
            [aggregate_id, after_version, *([limit] if limit else [])],
        ).fetchall()
    entries = []
    for row in rows:
        stored = StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
        event = app.mapper.to_domain_event(stored)
        entries.append(Entry(int(row["notification_id"]), event, catalogue.name_of(event)))
    return entries


def as_of(entries: list[Entry], catalogue: EventCatalogue, *, known_at: datetime | None = None,
          effective_at: date | None = None) -> Any:
    """The record folded from the events recorded by ``known_at`` and in effect by
    ``effective_at`` (None: the record did not exist then; a record created by an event with
    no date in the world exists on every date once recorded)."""
    aggregate: Any = None
    for entry in entries:
        event = entry.event
        if known_at is not None:
            when = recorded_at(event)
            if when is not None and when > known_at:
                continue
        if effective_at is not None and not (entry.version == 1 and not _dated(event, catalogue)):
            # A record whose creation has no date in the world (a housing site registered, a
            # program opened) is there on every date: the facts about it carry their own.
            on = effective_on(event, catalogue)
            if on is not None and on > effective_at:
                continue
        if aggregate is None:
            if entry.version != 1:
                return None  # created later than the moment asked about
            aggregate = event.mutate(None)
            continue
        # Skipping events breaks the version sequence mutate() checks: apply directly.
        event.apply(aggregate)
        aggregate.version = event.originator_version
    return aggregate
