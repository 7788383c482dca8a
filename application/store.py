"""The event store and the use cases: one eventsourcing ``Application`` whose
commands load aggregates, apply a domain command and save every changed aggregate
in one PostgreSQL transaction."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

import psycopg.errors
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    RecordConflictError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

IDEMPOTENCY_TABLE = "liudong_idempotency"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class CommandResult:
    """What a command returns: the aggregate it acted on, its new version, and the
    global position of the last event it stored (for read-your-writes)."""

    id: UUID
    version: int
    position: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class IdempotencyClaim:
    """Recorded with a command's events, in the same transaction, so a retried
    request finds the first response and never stores the events twice."""

    actor_id: str
    key: str
    fingerprint: str
    render: Callable[[CommandResult], tuple[int, dict[str, Any], str | None]]
    target: tuple[UUID, int] | None = field(default=None)
    details: dict[str, Any] = field(default_factory=dict)


class IdempotencyKeyTaken(Exception):
    """Another request with the same Idempotency-Key committed first."""


class NotFound(Exception):
    def __init__(self, kind: str, aggregate_id: UUID | str, field_name: str | None = None) -> None:
        super().__init__(f"{kind} {aggregate_id} not found")
        self.kind = kind
        self.aggregate_id = str(aggregate_id)
        self.field = field_name


class PreconditionFailed(Exception):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"If-Match names version {expected}, but the current version is {actual}")
        self.expected = expected
        self.actual = actual


class TooMuchContention(Exception):
    """A command kept losing races for the same aggregates; the client may retry."""


class LiudongRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, with two changes: the insert function locks the
    events table, so notification ids are committed in the order they are issued
    (followers never skip an id that commits late); and an idempotency record, when
    given, is written in the same transaction as the events."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION "
            "{schema}.{insert_events}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint "
            "LANGUAGE plpgsql "
            "AS "
            "$BODY$"
            "BEGIN"
            "    SET LOCAL lock_timeout = '{lock_timeout}s';"
            "    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
            "    NOTIFY {channel};"
            "    RETURN QUERY"
            "    INSERT INTO {schema}.{table} AS t ("
            "    originator_id, originator_version, topic, state)"
            "    SELECT originator_id, originator_version, topic, state"
            "    FROM unnest(events)"
            "    RETURNING notification_id;"
            "END;"
            "$BODY$"
        ).format(
            insert_events=Identifier(self.pg_function_name_insert_events),
            lock_timeout=self.datastore.lock_timeout,
            channel=Identifier(self.channel_name),
            event=Identifier(self.stored_event_type_name),
            schema=schema,
            table=Identifier(self.events_table_name),
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                " actor_id text NOT NULL,"
                " key text NOT NULL,"
                " fingerprint text NOT NULL,"
                " status integer NOT NULL,"
                " body jsonb NOT NULL,"
                " location text,"
                " created_at timestamptz NOT NULL DEFAULT now(),"
                " CONSTRAINT liudong_idempotency_pkey PRIMARY KEY (actor_id, key))"
            ).format(schema=schema, table=Identifier(IDEMPOTENCY_TABLE))
        )
        self._insert_claim = SQL(
            "INSERT INTO {schema}.{table} (actor_id, key, fingerprint, status, body, location) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(schema=schema, table=Identifier(IDEMPOTENCY_TABLE))

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        claim: IdempotencyClaim | None = kwargs.get("idempotency")
        if claim is None:
            return list(super().insert_events(stored_events) or [])
        rows = [
            self.construct_pg_stored_event(
                originator_id=e.originator_id,
                originator_version=e.originator_version,
                topic=e.topic,
                state=e.state,
            )
            for e in stored_events
        ]
        ids: list[int] = []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            if rows:  # a command that changed nothing still records its key
                curs.execute(self.sql_invoke_pg_function_insert_events, (rows,), prepare=True)
                ids = [r[self.pg_function_name_insert_events] for r in curs.fetchall()]
            assert claim.target is not None
            result = CommandResult(
                id=claim.target[0], version=claim.target[1], position=max(ids, default=0), details=claim.details
            )
            status, body, location = claim.render(result)
            curs.execute(
                self._insert_claim,
                (claim.actor_id, claim.key, claim.fingerprint, status, json.dumps(body), location),
            )
        return ids


A = TypeVar("A", bound=Aggregate)


class OfficeApplication(Application[UUID]):
    """Plumbing shared by every use case: loading, optimistic retries and saving.
    The use cases themselves are mixins in ``api/commands/``; ``application.office.Liudong``
    puts them together."""

    name = "Liudong"
    command_retries = 30

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- plumbing -----------------------------------------------------------
    def load(self, kind: type[A], aggregate_id: UUID, field_name: str | None = None) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(_kind_name(kind), aggregate_id, field_name) from None
        if not isinstance(aggregate, kind):
            raise NotFound(_kind_name(kind), aggregate_id, field_name)
        return aggregate

    def load_current(self, kind: type[A], aggregate_id: UUID, expected_version: int | None) -> A:
        """Load the aggregate a command acts on; a stale If-Match version is refused
        before any rule is checked."""
        aggregate = self.load(kind, aggregate_id)
        if expected_version is not None and aggregate.version != expected_version:
            raise PreconditionFailed(expected_version, aggregate.version)
        return aggregate

    def _execute(
        self,
        decide: Callable[[], tuple[Aggregate, Sequence[Aggregate | None]]],
        *,
        idempotency: IdempotencyClaim | None = None,
        details: Callable[[], dict[str, Any]] | None = None,
    ) -> CommandResult:
        """Run ``decide`` (load, check, act) and save what it changed atomically.
        A write that loses a race for an aggregate's next version is decided again
        on fresh state, so rules are always checked against what was committed."""
        for _ in range(self.command_retries):
            target, changed = decide()
            extra = details() if details is not None else {}
            if idempotency is not None:
                idempotency.target = (target.id, target.version)
                idempotency.details = extra
            try:
                recordings = self.save(*changed, idempotency=idempotency)
            except IntegrityError as error:
                if _violates(error, "liudong_idempotency_pkey"):
                    raise IdempotencyKeyTaken() from error
                continue
            except RecordConflictError:
                continue
            position = max(r.notification.id for r in recordings) if recordings else 0
            return CommandResult(id=target.id, version=target.version, position=position, details=extra)
        raise TooMuchContention("too many concurrent changes to the same records; retry the request")


def _kind_name(kind: type[Aggregate]) -> str:
    """``HousingSite`` -> ``housing site``: how error messages name an aggregate class."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", kind.__name__).lower()


def _violates(error: BaseException, constraint: str) -> bool:
    cause = error.__cause__
    return isinstance(cause, psycopg.errors.UniqueViolation) and cause.diag.constraint_name == constraint


# -- reading the log ---------------------------------------------------------------------
# eventsourcing names the table and its NOTIFY channel after the application.
EVENTS_TABLE = "liudong_events"
EVENTS_CHANNEL = "liudong_events"


@dataclass(frozen=True)
class StoredRow:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes


def read_stored(conn: Any, after: int, limit: int, *, upto: int | None = None,
                topics: Sequence[str] | None = None) -> list[StoredRow]:
    """Stored events after ``after`` in the global order, at most ``limit``, as far as a
    follower may read: the insert function commits positions in order, so no event can
    still commit below one that is visible."""
    clauses = ["notification_id > %s"]
    params: list[Any] = [after]
    if upto is not None:
        clauses.append("notification_id <= %s")
        params.append(upto)
    if topics is not None:
        clauses.append("topic = ANY(%s)")
        params.append(list(topics))
    rows = conn.execute(
        f"SELECT notification_id, originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
        f" WHERE {' AND '.join(clauses)} ORDER BY notification_id LIMIT %s",
        [*params, limit],
    ).fetchall()
    return [StoredRow(*_columns(r)) for r in rows]


def previous_position(conn: Any, position: int) -> int:
    """The position of the stored event before ``position`` (0 before the first)."""
    row = conn.execute(f"SELECT max(notification_id) FROM {EVENTS_TABLE} WHERE notification_id < %s",
                       (position,)).fetchone()
    value = _columns(row)[0] if row is not None else None
    return int(value) if value is not None else 0


def head_position(conn: Any) -> int:
    row = conn.execute(f"SELECT max(notification_id) FROM {EVENTS_TABLE}").fetchone()
    value = _columns(row)[0] if row is not None else None
    return int(value) if value is not None else 0


def _columns(row: Any) -> tuple[Any, ...]:
    values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
    if len(values) == 5:
        return (values[0], values[1], values[2], values[3], bytes(values[4]))
    return values
