"""What every read model shares: its tables and tracking position are written in
one transaction, each event is applied exactly once (a redelivered event, from a
restart, a second runner or Kafka, is skipped), and the whole view can be rebuilt from the
event log alone."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

Handler = Callable[[Any, Cursor[DictRow], Any], None]


class ViewRecorder(PostgresTrackingRecorder):
    """A tracking recorder that also creates the projection's own tables."""

    ddl: ClassVar[list[str]] = []
    tables: ClassVar[list[str]] = []

    def __init__(self, datastore: PostgresDatastore, *, tracking_table_name: str, **kwargs: Any) -> None:
        super().__init__(datastore, tracking_table_name=tracking_table_name, **kwargs)
        self.sql_create_statements.extend(Composed([SQL(statement)]) for statement in self.ddl)


class SqlProjection(Projection[ViewRecorder]):
    """Base class of the read models. Subclasses map event classes to handlers
    with ``handles``; each handler writes rows through the given cursor."""

    view_class: ClassVar[type[ViewRecorder]]
    handlers: ClassVar[dict[type, Handler]]
    handled_topics: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {}
        # Handlers are inherited; a subclass's handler of the same event wins.
        for klass in reversed(cls.__mro__):
            for attr in list(vars(klass).values()):
                for event_class in getattr(attr, "_handles", ()):
                    cls.handlers[event_class] = attr
        # The live subscription takes every event (``topics`` stays empty) so the
        # tracked position follows the head of the log and ``?after=POSITION`` waits
        # end; a rebuild reads only the topics it handles.
        cls.handled_topics = tuple(get_topic(event_class) for event_class in cls.handlers)

    @classmethod
    def lock_key(cls) -> int:
        return zlib.crc32(f"liudong-projection:{cls.name}".encode())

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.view.datastore.transaction(commit=True) as cursor:
            self.process_in(cursor, domain_event, tracking)

    def process_in(self, cursor: Cursor[DictRow], domain_event: Any, tracking: Tracking) -> None:
        """Apply the event and record the position in the caller's transaction, unless
        this view has already applied it (a redelivery)."""
        # One writer per view at a time (another runner, another process, a rebuild):
        # the second waits, then finds the event applied and skips it.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (self.lock_key(),))
        current = self.view._max_tracking_id(tracking.application_name, cursor)
        if current is not None and current >= tracking.notification_id:
            return
        self.apply(cursor, domain_event)
        self.view._insert_tracking(cursor, tracking)

    def apply(self, cursor: Cursor[DictRow], domain_event: Any) -> None:
        handler = self.handlers.get(type(domain_event))
        if handler is not None:
            handler(self, cursor, domain_event)

    @classmethod
    def rebuild(
        cls,
        view: ViewRecorder,
        application_name: str,
        read_events: Callable[[int | None], Iterable[tuple[int, DomainEventProtocol[Any]]]],
        head: int,
    ) -> int:
        """Drop the view's tables and build them again from the events alone, in one
        transaction, while live updates wait. ``head`` is the log's last position
        before reading: every event up to it has been read, relevant or not.
        Returns the position reached."""
        projection = cls(view=view)
        position = head
        with view.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (cls.lock_key(),))
            for table in view.tables:
                cursor.execute(SQL("DROP TABLE IF EXISTS {} CASCADE").format(Identifier(table)))
            for statement in view.ddl:
                cursor.execute(statement)
            cursor.execute(
                SQL("DELETE FROM {} WHERE application_name = %s").format(Identifier(view.tracking_table_name)),
                (application_name,),
            )
            for notification_id, domain_event in read_events(None):
                projection.apply(cursor, domain_event)
                position = max(position, notification_id)
            if position:
                view._insert_tracking(cursor, Tracking(application_name, position))
        return position


def event_class(aggregate: type, name: str) -> type:
    """An event class that eventsourcing's ``@event`` decorator made on ``aggregate``."""
    cls = getattr(aggregate, name)
    assert isinstance(cls, type), f"{aggregate.__name__}.{name} is not an event class"
    return cls


def handles(*event_classes: type) -> Callable[[Handler], Handler]:
    """Marks a projection method as the handler of the given event classes."""

    def mark(func: Handler) -> Handler:
        func._handles = event_classes  # type: ignore[attr-defined]
        return func

    return mark


def read_events_from(recorder: Any, mapper: Mapper[Any], topics: tuple[str, ...], batch: int = 1000) -> Callable[
    [int | None], Iterable[tuple[int, DomainEventProtocol[Any]]]
]:
    """An event reader over an application recorder, in notification order."""

    def read(after: int | None) -> Iterable[tuple[int, DomainEventProtocol[Any]]]:
        start = (after or 0) + 1
        while True:
            notifications = recorder.select_notifications(start=start, limit=batch, topics=topics)
            if not notifications:
                return
            for notification in notifications:
                yield notification.id, mapper.to_domain_event(notification)
            start = notifications[-1].id + 1

    return read
