"""The event store and the use cases: one eventsourcing ``Application`` whose
commands load aggregates, apply a domain command and save every changed aggregate
in one PostgreSQL transaction."""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

import psycopg.errors
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    RecordConflictError,
    Recording,
    StoredEvent,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Composed, Identifier

from application.access import area_of, current_scope
from application.areas import SCHEMA as AREAS_SCHEMA
from application.areas import AreaDirectory
from application.audit import SCHEMA as AUDIT_SCHEMA
from application.import_jobs import SCHEMA as IMPORTS_SCHEMA
from application.keys import SCHEMA as KEYS_SCHEMA
from application.privacy import SCHEMA as PII_SCHEMA
from application.privacy import TEXTS_LOCK, MasterKeyMissing, MemoryKeyStore, NewKey, PgKeyStore, PrivateMapper, Vault
from application.users import SCHEMA as USERS_SCHEMA
from domain.common import InvalidValue
from domain.residents import Resident

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


class AreaNotAllowed(Exception):
    """A command would create or move something into an area outside the caller's."""

    def __init__(self, field_name: str, code: str) -> None:
        super().__init__(f"area {code} is outside the areas this key acts in")
        self.field = field_name
        self.code = code


class TooMuchContention(Exception):
    """A command kept losing races for the same aggregates; the client may retry."""


@dataclass(eq=False)
class _Write:
    """One command's writes, waiting for a group commit."""

    stored_events: Sequence[StoredEvent]
    claim: IdempotencyClaim | None
    new_keys: list[NewKey]
    ids: list[int] | None = None
    error: BaseException | None = None
    taken: bool = False  # by a leader, into its transaction
    done: bool = False

    def outcome(self) -> list[int]:
        if self.error is not None:
            raise self.error
        assert self.ids is not None
        return self.ids


class GroupCommit:
    """Commands that reach the store together are stored in one transaction (issue 9, group
    commit; docs/adr/0006). The first to arrive while no transaction is open leads: it takes
    every write queued so far and stores each in a savepoint of one transaction, so a write that
    fails (a lost race for an aggregate's next version, an Idempotency-Key already taken) is
    rolled back alone and answered alone, and its command is decided again as before; the rest
    commit together, with one COMMIT and one NOTIFY. Writes that arrive meanwhile wait for the
    next leader. No write waits for company: a command alone is stored at once, as before.
    Commands that write registry rows (an erasure destroying keys, an area, an API key) or a free
    text under a key of its own (which waits for an erasure scanning the texts) are not grouped:
    each keeps its own transaction."""

    def __init__(self, leaders: int = 2) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Write] = []
        self._flushing = 0
        self.leaders = leaders
        self.transactions = 0  # counted for /metrics and the bench
        self.commands = 0
        self.split = 0  # transactions stored write by write after one of them was refused

    def run(self, write: _Write, flush: Callable[[list[_Write]], None]) -> list[int]:
        with self._cond:
            self._queue.append(write)
            # Lead only while this write is still queued (a leader takes every queued write,
            # this one with them, so it is answered when that leader's flush ends).
            while not write.taken and self._flushing >= self.leaders:
                self._cond.wait()
            if write.taken:
                while not write.done:
                    self._cond.wait()
                return write.outcome()
            self._flushing += 1
            batch, self._queue = self._queue, []
            for taken in batch:
                taken.taken = True
        try:
            flush(batch)
        except BaseException as error:  # every write of the batch gets an answer, or its caller waits for ever
            for waiting in batch:
                if not waiting.done:
                    waiting.error, waiting.done = error, True
        finally:
            with self._cond:
                self.transactions += 1
                self.commands += len(batch)
                self._flushing -= 1
                self._cond.notify_all()
        return write.outcome()


_PERSISTENCE_ERRORS: tuple[tuple[type[psycopg.Error], type[Exception]], ...] = (
    (psycopg.IntegrityError, IntegrityError), (psycopg.OperationalError, OperationalError),
    (psycopg.InterfaceError, InterfaceError))


def _persistence_error(error: psycopg.Error) -> Exception:
    """As eventsourcing's datastore turns a psycopg error into its own (the cause kept)."""
    for theirs, ours in _PERSISTENCE_ERRORS:
        if isinstance(error, theirs):
            translated = ours(str(error))
            translated.__cause__ = error
            return translated
    return error


class LiudongRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, with two changes: the insert function takes no table
    lock (eventsourcing's locks the table until commit so that ids commit in order;
    here writers commit concurrently and followers read only settled positions, see
    ``read_stored`` and docs/adr/0005); and an idempotency record, the data keys and
    registry rows, when given, are written in the same transaction as the events."""

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
            # The transaction's id before its position: a reader that sees this
            # transaction's lock on the table finds its id too (settled_position).
            "    PERFORM pg_current_xact_id();"
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
            channel=Identifier(self.channel_name),
            event=Identifier(self.stored_event_type_name),
            schema=schema,
            table=Identifier(self.events_table_name),
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )
        # The same, taking one array per column, sent in binary: psycopg sends those about
        # ten times faster than an array of composite rows (whose text form it builds in
        # Python, escaping every byte of every state).
        columns_function = Identifier(f"{self.pg_function_name_insert_events}_columns")
        self.sql_create_statements.insert(self.create_insert_function_statement_index + 1, SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}("
            "ids uuid[], versions bigint[], topics text[], states bytea[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS "
            "$BODY$"
            "BEGIN"
            "    PERFORM pg_current_xact_id();"
            "    NOTIFY {channel};"
            "    RETURN QUERY"
            "    INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)"
            "    SELECT * FROM unnest(ids, versions, topics, states)"
            "    RETURNING notification_id;"
            "END;"
            "$BODY$"
        ).format(function=columns_function, channel=Identifier(self.channel_name), schema=schema,
                 table=Identifier(self.events_table_name)))
        self._insert_columns = SQL(
            "SELECT position FROM {schema}.{function}(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) AS position"
        ).format(schema=schema, function=columns_function)
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
        self.sql_create_statements.extend(
            Composed([SQL(statement)]) for statement in (*PII_SCHEMA, *AREAS_SCHEMA, *KEYS_SCHEMA, *AUDIT_SCHEMA,
                                                           *IMPORTS_SCHEMA, *USERS_SCHEMA))
        self._insert_claim = SQL(
            "INSERT INTO {schema}.{table} (actor_id, key, fingerprint, status, body, location) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(schema=schema, table=Identifier(IDEMPOTENCY_TABLE))

    # Set by the application: the mapper that sealed the events, whose new keys are stored
    # in the same transaction as the events sealed with them.
    private_mapper: PrivateMapper | None = None
    # Set by the application (LIUDONG_GROUP_COMMIT): concurrent commands share a transaction.
    group_commit: GroupCommit | None = None

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as eventsourcing's own
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Store events, atomically with what must commit with them: the data keys they
        were sealed with (new ones), the Idempotency-Key record, and registry rows
        (``side_effects``: SQL and parameters, e.g. the areas and the API keys)."""
        claim: IdempotencyClaim | None = kwargs.get("idempotency")
        effects: list[tuple[Any, Sequence[Any]]] = list(kwargs.get("side_effects") or [])
        consulted: list[UUID] = list(kwargs.get("consulted") or [])
        mapper = self.private_mapper
        new_keys = mapper.vault.take_new_keys(mapper.sealed_keys(list(stored_events))) if mapper else []
        if claim is None and not effects and not new_keys and not stored_events:
            return []  # a command that changed nothing: no transaction, no notification
        ids: list[int] = []
        try:
            # Grouped unless it writes registry rows, a free text or a record naming residents
            # (whose transaction waits for an erasure scanning them: it would hold every writer of
            # the batch with it).
            if self.group_commit is not None and not effects and not consulted and not any(
                    _waits_for_erasures(k) for k in new_keys):
                ids = self.group_commit.run(_Write(stored_events, claim, new_keys), self._insert_group)
            else:
                ids = self._insert(stored_events, claim, effects, new_keys, consulted)
        except (IntegrityError, psycopg.IntegrityError):
            # Another process stored these records first (a lost race, decided again on fresh
            # state): the keys made for them are not to be used, or this process would go on
            # reading the winner's values with them (a text key's id is derived from the event).
            if mapper is not None and new_keys:
                mapper.vault.discard(new_keys)
            raise
        if mapper is not None and new_keys:
            mapper.vault.stored(new_keys)
        return ids

    def _insert(self, stored_events: Sequence[StoredEvent], claim: IdempotencyClaim | None,
                effects: list[tuple[Any, Sequence[Any]]], new_keys: list[NewKey],
                consulted: Sequence[UUID] = ()) -> list[int]:
        if not consulted and not any(_waits_for_erasures(k) for k in new_keys):
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
                return self._write(curs, stored_events, claim, effects, new_keys)
        # An erasure scanning the texts and names waits for these, and these wait for an erasure:
        # a record naming a resident erased since it was decided (a dispute naming them as a party,
        # an election or an employer naming them) is decided again, and refused (found by reviews:
        # one logged while the erasure ran kept their data readable for good; one stored after it
        # recorded something new of them). They wait without a connection of the pool (found by a
        # review: twenty of them waiting on one each left the erasure none, and it failed).
        named = sorted({s for k in new_keys for s in k.subjects if s != k.key_id} | set(consulted))
        deadline, pause = time.monotonic() + ERASURE_WAIT, 0.005
        while True:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
                if _first(curs.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", (TEXTS_LOCK,)).fetchone()):
                    if named and curs.execute("SELECT 1 FROM pii_keys WHERE key_id = ANY(%s) AND wrapped IS NULL"
                                              " AND destroyed_at IS NOT NULL LIMIT 1", (named,)).fetchone():
                        raise IntegrityError("a resident this record names was erased meanwhile")
                    return self._write(curs, stored_events, claim, effects, new_keys)
            if time.monotonic() > deadline:
                raise TooMuchContention("an erasure is running; retry the request")
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _insert_group(self, batch: list[_Write]) -> None:
        """The writes of a group commit: one alone as ``_insert`` stores it; several with one
        statement per table for all of them, in one transaction. Where that fails on a
        constraint (one of them lost a race, or its Idempotency-Key was taken), it is rolled
        back and each write is stored again in a savepoint of its own, so only the writes that
        fail fail (see GroupCommit)."""
        if len(batch) == 1:
            only = batch[0]
            try:
                only.ids = self._insert(only.stored_events, only.claim, [], only.new_keys)
            except BaseException as error:
                only.error = error
            only.done = True
            return
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
                written = self._write_many(curs, batch)
        except (OperationalError, InterfaceError):
            raise  # the connection or the transaction failed as a whole: every caller retries or fails
        except Exception:  # any write refused (a constraint, a value, its claim): each alone below
            group = self.group_commit
            if group is not None:
                group.split += 1
        else:
            for write, ids in zip(batch, written, strict=True):
                write.ids, write.done = ids, True
            return
        outcomes: list[tuple[_Write, list[int] | None, BaseException | None]] = []
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            for write in batch:
                try:
                    with conn.transaction():  # a savepoint: this write fails alone
                        ids = self._write_many(curs, [write])[0]
                    outcomes.append((write, ids, None))
                except Exception as refused:  # this write alone fails, as it would on its own
                    outcomes.append((write, None, _persistence_error(refused) if isinstance(refused, psycopg.Error)
                                     else refused))
        for write, done_ids, failed in outcomes:  # answered once the transaction committed
            write.ids, write.error, write.done = done_ids, failed, True

    def _write(self, curs: Any, stored_events: Sequence[StoredEvent], claim: IdempotencyClaim | None,
               effects: list[tuple[Any, Sequence[Any]]], new_keys: list[NewKey]) -> list[int]:
        ids = self._write_many(curs, [_Write(stored_events, claim, new_keys)])[0]
        for statement, params in effects:
            curs.execute(statement, params)
        return ids

    def _write_many(self, curs: Any, writes: Sequence[_Write]) -> list[list[int]]:
        """Several commands' writes with one statement per table; each command's positions."""
        self._write_keys(curs, [k for w in writes for k in w.new_keys])
        ids = self._write_events(curs, [e for w in writes for e in w.stored_events])
        each: list[list[int]] = []
        start = 0
        for write in writes:
            each.append(ids[start:start + len(write.stored_events)])
            start += len(write.stored_events)
        claims = [self._claim_row(w.claim, own) for w, own in zip(writes, each, strict=True) if w.claim is not None]
        if claims:
            curs.executemany(self._insert_claim, claims)
        return each

    @staticmethod
    def _write_keys(curs: Any, new_keys: Sequence[NewKey]) -> None:
        if not new_keys:  # one statement each for all the keys
            return
        curs.execute("INSERT INTO pii_keys (key_id, kind, wrapped)"
                     " SELECT * FROM unnest(%b::uuid[], %b::text[], %b::bytea[])",
                     ([k.key_id for k in new_keys], [k.kind for k in new_keys], [k.wrapped for k in new_keys]))
        texts = [k for k in new_keys if k.origin is not None]
        if texts:
            curs.execute("INSERT INTO pii_texts (key_id, originator_id, originator_version)"
                         " SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::int[])",
                         ([k.key_id for k in texts], [k.origin[0] for k in texts if k.origin],
                          [k.origin[1] for k in texts if k.origin]))
        links = [(k.key_id, subject) for k in new_keys for subject in k.subjects]
        if links:
            curs.execute("INSERT INTO pii_key_subjects (key_id, resident_id)"
                         " SELECT * FROM unnest(%b::uuid[], %b::uuid[]) ON CONFLICT DO NOTHING",
                         ([k for k, _ in links], [r for _, r in links]))

    def _write_events(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        if not stored_events:  # a command that changed nothing still records its key
            return []
        curs.execute(self._insert_columns, (
            [e.originator_id for e in stored_events], [e.originator_version for e in stored_events],
            [e.topic for e in stored_events], [e.state for e in stored_events]), prepare=True)
        return [_first(r) for r in curs.fetchall()]

    @staticmethod
    def _claim_row(claim: IdempotencyClaim, ids: list[int]) -> tuple[Any, ...]:
        assert claim.target is not None
        result = CommandResult(id=claim.target[0], version=claim.target[1], position=max(ids, default=0),
                               details=claim.details)
        status, body, location = claim.render(result)
        return (claim.actor_id, claim.key, claim.fingerprint, status, json.dumps(body), location)


def _first(row: Any) -> Any:
    if isinstance(row, dict):
        return row["position"] if "position" in row else next(iter(row.values()))
    return row[0]


ERASURE_WAIT = 30.0  # seconds a write naming residents waits for an erasure running meanwhile


A = TypeVar("A", bound=Aggregate)


class _Collected(ProcessingEvent[UUID]):
    """Pending events collected by a class check where the object is an Aggregate (ours
    all are); anything else goes the library's way."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, Aggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                super().collect_events(obj)
        self.saved_kwargs.update(kwargs)


class OfficeApplication(Application[UUID]):
    """Plumbing shared by every use case: loading, optimistic retries and saving.
    The use cases themselves are mixins in ``api/commands/``; ``application.office.Liudong``
    puts them together."""

    name = "Liudong"
    command_retries = 30
    MASTER_KEY_ENV = "LIUDONG_PII_MASTER_KEY"

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        assert isinstance(self.recorder, LiudongRecorder), "the office's application stores its events in PostgreSQL"
        assert isinstance(self.mapper, PrivateMapper)
        self.recorder.private_mapper = self.mapper
        self.vault.store = PgKeyStore(self.recorder.datastore.get_connection)
        self.areas = AreaDirectory(self.recorder.datastore.get_connection)
        self._deferring = 0
        self._deferring_lock = threading.Lock()

    def connection(self) -> Any:
        """A connection of the event store's pool (dict rows), for registry queries."""
        recorder = self.recorder
        assert isinstance(recorder, LiudongRecorder)
        return recorder.datastore.get_connection()

    def construct_mapper(self) -> Mapper[UUID]:
        """The mapper that seals personal fields with the office's master key (given in the
        environment as base64; see application.privacy)."""
        master = self.env.get(self.MASTER_KEY_ENV)
        if not master:
            raise MasterKeyMissing(f"{type(self).__name__} needs {self.MASTER_KEY_ENV} in its environment")
        self.vault = Vault(base64.b64decode(master), MemoryKeyStore())
        return PrivateMapper(self.construct_transcoder(), self.vault)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """eventsourcing's ``Application.save``, collecting the pending events through
        ``_Collected``: the library's ``ProcessingEvent`` tests every object against two
        runtime Protocols, about 30 µs an aggregate on Python 3.11 (of a registration's
        two aggregates, a tenth of the time an import spends per row)."""
        processing_event = _Collected()
        processing_event.collect_events(*objs, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, called as its save calls it
        return recordings

    # -- plumbing -----------------------------------------------------------
    def find(self, kind: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate if there is one (a claim on a number or a site, a member's record),
        with no scope check: what guards a rule is read wherever it is kept."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, kind)
        return aggregate

    def load(self, kind: type[A], aggregate_id: UUID, field_name: str | None = None) -> A:
        """The aggregate a command acts on (or, with ``field_name``, one a request's body
        refers to). An aggregate in an area outside the acting scope is not found: a caller
        never learns that it exists."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(_kind_name(kind), aggregate_id, field_name) from None
        if not isinstance(aggregate, kind):
            raise NotFound(_kind_name(kind), aggregate_id, field_name)
        scope = current_scope()
        if field_name is None and scope is not None and not scope.allows(area_of(aggregate)):
            raise NotFound(_kind_name(kind), aggregate_id, field_name)
        _note_consulted(aggregate)
        return aggregate

    def load_in_scope(self, kind: type[A], aggregate_id: UUID, field_name: str) -> A:
        """A referenced aggregate that must lie in the acting scope too (a dispute's site,
        a subsidy application's site): outside it, it is an unknown reference."""
        aggregate = self.load(kind, aggregate_id, field_name)
        scope = current_scope()
        if scope is not None and not scope.allows(area_of(aggregate)):
            raise NotFound(_kind_name(kind), aggregate_id, field_name)
        return aggregate

    @contextlib.contextmanager
    def snapshots_deferred(self) -> Iterator[set[UUID]]:
        """For a bulk import: no snapshot is taken while it saves (a housing site taking
        thousands of moves would be snapshotted every 100 of them); the ids added to the
        yielded set are snapshotted once at the end."""
        with self._deferring_lock:
            self._deferring += 1
            setattr(self, "snapshotting_intervals", {})  # this instance only: the class keeps its intervals  # noqa: B010
        touched: set[UUID] = set()
        try:
            yield touched
        finally:
            with self._deferring_lock:
                self._deferring -= 1
                if not self._deferring:
                    delattr(self, "snapshotting_intervals")  # the class's intervals again
            intervals = type(self).snapshotting_intervals or {}
            for aggregate_id in touched:
                aggregate: Any = self.repository.get(aggregate_id)
                if type(aggregate) in intervals:
                    with contextlib.suppress(IntegrityError):  # one taken at this version already
                        self.take_snapshot(aggregate_id)

    def check_site_in_area(self, site: Any, area: str | None) -> None:
        """A site given with an area must lie in it (or in an area under it: a village site
        within its street office), else the request contradicts itself."""
        if area and site.area not in self.areas.within([area]):
            raise InvalidValue("site_id", f"housing site {site.id} lies in {site.area}, not in {area}",
                               rule="site_in_another_area", site_area=site.area)

    def place(self, area: str, field_name: str = "area") -> str:
        """The code of the area a request names, which must lie in the acting scope."""
        code = self.areas.resolve(area, field_name)
        scope = current_scope()
        if scope is not None and not scope.allows(code):
            raise AreaNotAllowed(field_name, code)
        return code

    def require_district(self, field_name: str) -> None:
        """District-wide changes (the area register; keys without areas) need a caller
        whose key is not bound to areas."""
        if current_scope() is not None:
            raise AreaNotAllowed(field_name, "district")

    def require_areas(self, codes: Sequence[str], field_name: str) -> None:
        """Every one of these areas must lie in the acting scope; no areas means the whole
        district, which an area-bound caller may not act for."""
        scope = current_scope()
        if scope is None:
            return
        if not codes:
            raise AreaNotAllowed(field_name, "district")
        for code in codes:
            if not scope.allows(code):
                raise AreaNotAllowed(field_name, code)

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
        side_effects: Callable[[], list[tuple[Any, Sequence[Any]]]] | None = None,
    ) -> CommandResult:
        """Run ``decide`` (load, check, act) and save what it changed atomically.
        A write that loses a race for an aggregate's next version is decided again
        on fresh state, so rules are always checked against what was committed."""
        if idempotency is None and (pending := PENDING_CLAIM.get()) is not None:
            PENDING_CLAIM.set(None)
            idempotency = pending
        for _ in range(self.command_retries):
            token = _CONSULTED.set(set())
            try:
                target, changed = decide()
                consulted = _CONSULTED.get() or set()
            finally:
                _CONSULTED.reset(token)
            consulted -= {a.id for a in changed if a is not None}
            extra = details() if details is not None else {}
            if idempotency is not None:
                idempotency.target = (target.id, target.version)
                idempotency.details = extra
            effects = side_effects() if side_effects is not None else []
            try:
                recordings = self.save(*changed, idempotency=idempotency, side_effects=effects,
                                       consulted=sorted(consulted))
            except IntegrityError as error:
                if _violates(error, "liudong_idempotency_pkey"):
                    raise IdempotencyKeyTaken() from error
                continue
            except RecordConflictError:
                continue
            except OperationalError as error:
                # A deadlock or serialization failure rolled the transaction back: decide again.
                if isinstance(error.__cause__, psycopg.errors.TransactionRollback):
                    continue
                raise
            position = max(r.notification.id for r in recordings) if recordings else 0
            return CommandResult(id=target.id, version=target.version, position=position, details=extra)
        raise TooMuchContention("too many concurrent changes to the same records; retry the request")


# A claim for the next command this context runs, set by a caller that cannot pass one (the
# web pages: a form's one-time token, so a double click stores the command once). The first
# command run takes it.
PENDING_CLAIM: contextvars.ContextVar[IdempotencyClaim | None] = contextvars.ContextVar("pending_claim", default=None)


# The residents a command's decision read (not erased then), so that what it stores waits for an
# erasure running meanwhile and, if one erased them, is decided again (and refused: nothing new is
# recorded of an erased person). Found by a review: an election decided while the erasure of a
# candidate ran stored after it.
_CONSULTED: contextvars.ContextVar[set[UUID] | None] = contextvars.ContextVar("consulted", default=None)


def _note_consulted(aggregate: Aggregate) -> None:
    consulted = _CONSULTED.get()
    if consulted is not None and isinstance(aggregate, Resident) and aggregate.erased_on is None:
        consulted.add(aggregate.id)


def _waits_for_erasures(key: NewKey) -> bool:
    """A new key an erasure must see or refuse: a free text's (scanned for the names it holds)
    or a record's that names residents other than itself (a case's parties)."""
    return key.origin is not None or any(subject != key.key_id for subject in key.subjects)


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


SETTLE_TIMEOUT = 2.0  # seconds a reader waits for writers in flight below a gap, then reads up to it


def read_stored(conn: Any, after: int, limit: int, *, upto: int | None = None,
                topics: Sequence[str] | None = None) -> list[StoredRow]:
    """Stored events after ``after`` in the global order, at most ``limit``, as far as a
    follower may read: never past a position that a transaction still in flight holds,
    so an event that commits late below a visible one is never skipped.

    Writers commit concurrently, so positions become visible out of order. Rows that
    follow ``after`` without a gap are safe to hand out as they are. Past a gap (a writer
    in flight, or one that rolled back and left the position unused forever) only
    positions up to ``settled_position`` are: every writer that took one of them has
    finished. (With ``topics`` gaps cannot be seen, so the settled position is always
    asked.)"""
    rows = _select_stored(conn, after, limit, upto, topics)
    if not rows:
        return rows
    if topics is None and rows[-1].position - after == len(rows):
        return rows  # contiguous: nothing can still commit among them
    settled = settled_position(conn)
    bound = settled if upto is None else min(upto, settled)
    if bound <= after:
        return _prefix(rows, after) if topics is None else []
    # Read again: a writer that was in flight at the first read may have committed since.
    return _select_stored(conn, after, limit, bound, topics)


def _prefix(rows: list[StoredRow], after: int) -> list[StoredRow]:
    """The rows that follow ``after`` without a gap."""
    out = []
    expected = after + 1
    for row in rows:
        if row.position != expected:
            break
        out.append(row)
        expected += 1
    return out


def settled_position(conn: Any, timeout: float = SETTLE_TIMEOUT) -> int:
    """A position at or below which every event is final: committed and visible, or
    never to be (its transaction rolled back). Read the last position handed out, then
    wait until every transaction then writing to the events table has finished (each
    holds its lock on the table from before it took a position until it ends). If one
    is still writing after ``timeout``, the highest position below which nothing can
    still commit is not known: 0 is returned and the caller reads only gap-free rows."""
    # The sequence's last value (a store copied without its sequence: the highest position).
    row = conn.execute(
        "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(%s, 'notification_id')::regclass),"
        f" (SELECT max(notification_id) FROM {EVENTS_TABLE}), 0)", (EVENTS_TABLE,)).fetchone()
    handed_out = int(_columns(row)[0]) if row is not None else 0
    writers = conn.execute(
        "SELECT array_agg(x.transactionid) FROM pg_locks r JOIN pg_locks x"
        " ON x.pid = r.pid AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock'"
        " WHERE r.locktype = 'relation' AND r.relation = %s::regclass AND r.mode = 'RowExclusiveLock'"
        " AND r.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND r.pid <> pg_backend_pid()", (EVENTS_TABLE,)).fetchone()
    xids = _columns(writers)[0] if writers is not None else None
    if not xids:
        return handed_out
    deadline = time.monotonic() + timeout
    pause = 0.0005
    while True:
        left = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND granted"
                            " AND mode = 'ExclusiveLock' AND transactionid::text = ANY(%s)",
                            ([str(x) for x in xids],)).fetchone()
        if not left or not _columns(left)[0]:
            return handed_out
        if time.monotonic() >= deadline:
            return 0
        time.sleep(pause)
        pause = min(pause * 2, 0.02)


def _select_stored(conn: Any, after: int, limit: int, upto: int | None,
                   topics: Sequence[str] | None) -> list[StoredRow]:
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
