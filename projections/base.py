"""What every read model shares: its tables (``View``) and its handlers (``SqlProjection``).

A projection is a class whose methods, marked with ``@handles``, write rows for one kind
of event through the cursor they are given. They never commit and never read the event
store: ``projections.engine`` decides what to apply, in which transaction, and records
how far each view got, so the same classes serve the in-process projector, rebuilds and
the Kafka workers.

A handler may rely on the earlier events of the same aggregate having been applied (they
arrive in order on one Kafka partition), never on events of other aggregates: across
partitions they arrive in any order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow

Handler = Callable[[Any, Cursor[DictRow], Any], None]
RowOf = Callable[[Any, Any], tuple[Any, ...]]


@dataclass(frozen=True)
class BulkRows:
    """A handler whose only write is one new row (``row`` makes its values, in the order of
    ``columns``: names and SQL types) can have a rebuild insert many such rows in one
    statement. The handler itself stays the one way the live views write it. (Bookkeeping the
    handler does besides, skipped while ``REBUILDING``, must be made by ``after_rebuild``.)"""

    table: str
    columns: tuple[tuple[str, str], ...]
    row: RowOf


class Privacy(Protocol):
    """What handlers may do with personal fields (application.privacy.Vault): open a
    sealed value (``[erased]`` once its key is destroyed) and make search tokens. Views keep
    only sealed values, masked values and tokens, never the plaintext."""

    def open(self, value: Any) -> Any: ...

    def name_tokens(self, name: str) -> list[str]: ...

    def id_suffix_tokens(self, id_number: str) -> list[str]: ...

    def prefetch(self, values: Any) -> None:
        """Make the keys of the sealed values in ``values`` (any JSON-like structure) ready,
        in one read, before a batch opens them one by one."""


class View:
    """A read model's tables: the statements that create them (idempotent, in order) and
    the names a rebuild drops. ``version``: raise it when the rows' meaning changes; a view
    built by an older version is dropped and built again from the events at start."""

    ddl: ClassVar[list[str]] = []
    tables: ClassVar[list[str]] = []
    version: ClassVar[int] = 1
    # Run at the end of a rebuild, which applies every event in one transaction with the
    # setting ``liudong.rebuilding`` on (``REBUILDING``): bookkeeping that a handler would
    # rewrite on every event (a count row updated a million times in one transaction costs
    # a walk along all its versions each time) is skipped then and computed once here.
    after_rebuild: ClassVar[list[str]] = []
    # True when the handlers find rows by primary key only: a rebuild then creates the view's
    # other indexes (the ``CREATE INDEX`` statements of ``ddl``) once, after the rows, instead
    # of updating each of them row by row.
    indexes_after_rebuild: ClassVar[bool] = False


# True in SQL while a rebuild applies events (see View.after_rebuild).
REBUILDING = "coalesce(current_setting('liudong.rebuilding', true), '') = 'on'"


# The name the first views were built with (on eventsourcing's tracking recorders).
ViewRecorder = View


class SqlProjection:
    """Base class of the read models. Subclasses map event classes to handlers
    with ``handles``; each handler writes rows through the given cursor."""

    name: ClassVar[str]
    view_class: ClassVar[type[View]]
    privacy: Privacy  # given by the engine
    handlers: ClassVar[dict[type, Handler]]
    bulk_rows: ClassVar[dict[type, BulkRows]]
    handled_topics: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.handlers = {}
        cls.bulk_rows = {}
        # Handlers are inherited; a subclass's handler of the same event wins.
        for klass in reversed(cls.__mro__):
            for attr in list(vars(klass).values()):
                for event_class in getattr(attr, "_handles", ()):
                    cls.handlers[event_class] = attr
                bulk = getattr(attr, "_bulk_rows", None)
                if bulk is not None:
                    for event_class in bulk[0]:
                        cls.bulk_rows[event_class] = BulkRows(bulk[1], bulk[2], attr)
        assert set(cls.bulk_rows) <= set(cls.handlers), f"{cls.__name__}: rows_of an event without a handler"
        cls.handled_topics = tuple(get_topic(event_class) for event_class in cls.handlers)

    @classmethod
    def tracking_table(cls) -> str:
        return f"{cls.name}_tracking"

    @classmethod
    def lock_key(cls) -> int:
        """The advisory lock that makes one writer at a time apply events to this view."""
        return zlib.crc32(f"liudong-projection:{cls.name}".encode())

    def handles_event(self, domain_event: Any) -> bool:
        return type(domain_event) in self.handlers

    def apply(self, cursor: Cursor[DictRow], domain_event: Any) -> None:
        handler = self.handlers.get(type(domain_event))
        if handler is not None:
            handler(self, cursor, domain_event)

    def bulk_row(self, domain_event: Any) -> tuple[BulkRows, tuple[Any, ...]] | None:
        """The event's row and where it goes, if its handler only inserts one (``rows_of``)."""
        bulk = self.bulk_rows.get(type(domain_event))
        return (bulk, bulk.row(self, domain_event)) if bulk is not None else None


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


def rows_of(*event_classes: type, table: str, columns: tuple[tuple[str, str], ...]) -> Callable[[RowOf], RowOf]:
    """Marks a projection method as the maker of the one row the handler of these event
    classes inserts into ``table`` (see ``BulkRows``); the handler should write the same
    values, by calling it."""

    def mark(func: RowOf) -> RowOf:
        func._bulk_rows = (event_classes, table, columns)  # type: ignore[attr-defined]
        return func

    return mark
