"""Keeping the views from the store itself (the embedded default, no Kafka), rebuilding
a view, and retrying dead letters.

``LocalProjector`` follows the event store in its global order and applies each batch of
events to every view in one transaction (a savepoint per view, so a view that fails
rolls back alone and is retried with backoff while the others go on). ``liudong serve``
runs it in a child process of its own (``ProjectorProcess``), so the API's threads and
the projector do not compete for one interpreter lock, and restarts it if it dies.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from queue import Full, Queue
from typing import Any

import psycopg
from eventsourcing.utils import get_topic, resolve_topic
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier, Literal

from application.events import EventCatalogue, UndecodableEvent, public_state
from application.heap import fewer_collections, freeze_startup_heap
from application.privacy import PgKeyStore, Vault
from application.store import EVENTS_CHANNEL, StoredRow, head_position, read_stored, settled_position
from projections.base import SqlProjection
from projections.engine import (
    EVERY_VIEW,
    INFRASTRUCTURE_ERRORS,
    LOW_WATER_MARK,
    VIEW_VERSION,
    Delivery,
    ViewApplier,
    ensure_engine_schema,
    hold_tracking,
    notify_mark,
    record_heartbeat,
    record_status,
    resolve_dead_letter,
)

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0
BUSY_PAUSE = 0.5  # how soon a view being rebuilt is tried again


# -- events from the store -----------------------------------------------------------------
def delivery_from_store(row: StoredRow, catalogue: EventCatalogue) -> Delivery:
    """A stored event as the engine takes it; an event this code cannot decode (an
    unknown class, a malformed state) is a delivery without an event: a dead letter."""
    event_type = catalogue.for_topic(row.topic)
    name = event_type.name if event_type is not None else row.topic
    try:
        event = catalogue.decode_stored(row.topic, row.originator_id, row.version, row.state)
    except UndecodableEvent as error:
        return Delivery(row.position, row.originator_id, row.version, name, None, str(error))
    return Delivery(row.position, row.originator_id, row.version, name, event)


def read_deliveries(conn: psycopg.Connection[Any], catalogue: EventCatalogue, after: int, upto: int,
                    batch_size: int, topics: Sequence[str] | None = None) -> Iterator[list[Delivery]]:
    """The store's events in (after, upto], in batches."""
    position = after
    while position < upto:
        rows = read_stored(conn, position, batch_size, upto=upto, topics=topics)
        if not rows:
            if settled_position(conn) >= upto:
                return
            continue  # a writer still in flight below upto: wait for it
        yield [delivery_from_store(r, catalogue) for r in rows]
        position = rows[-1].position


def read_ahead(batches: Iterator[list[Delivery]], depth: int = 2) -> Iterator[list[Delivery]]:
    """The same batches, the next ones read and decoded in a thread while the caller
    applies the current one: the reader's waits on the server overlap the writer's."""
    queue: Queue[tuple[list[Delivery] | None, BaseException | None]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        queue.put((batch, None), timeout=0.2)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((None, None))
        except BaseException as error:  # handed to the consumer, raised there
            queue.put((None, error))

    thread = threading.Thread(target=produce, name="liudong-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            batch, error = queue.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        thread.join(5)


def projection_classes(topics: Sequence[str]) -> dict[str, type[SqlProjection]]:
    classes = [resolve_topic(t) for t in topics]
    return {cls.name: cls for cls in classes}


def projection_topics(projections: dict[str, type[SqlProjection]]) -> list[str]:
    return [get_topic(cls) for cls in projections.values()]


# -- the in-process projector -------------------------------------------------------------
@dataclass
class Backoff:
    """A view that a follower leaves alone until ``retry_at`` (the local projector and the
    Kafka workers alike)."""

    pause: float
    retry_at: float
    busy: bool = False  # not a failure: the view is being rebuilt

    @classmethod
    def rebuilding(cls) -> Backoff:
        return cls(BUSY_PAUSE, time.monotonic() + BUSY_PAUSE, busy=True)


@dataclass
class LocalProjector:
    """Follows the store and keeps the given views; ``run`` blocks until ``stopping``."""

    dsn: str
    projections: dict[str, type[SqlProjection]]
    master_key: bytes = b""
    batch_size: int = 500
    attempts: int = 3
    backoff: float = 0.2
    worker: str = field(default_factory=lambda: f"projector-{os.getpid()}")
    stopping: Any = field(default_factory=threading.Event)
    catalogue: EventCatalogue = field(default_factory=EventCatalogue.of_domain)

    def __post_init__(self) -> None:
        self._conn: psycopg.Connection[Any] | None = None
        self.vault = Vault(self.master_key, PgKeyStore(self._key_connection))
        self.appliers = {
            name: ViewApplier(cls, privacy=self.vault, attempts=self.attempts, backoff=self.backoff)
            for name, cls in self.projections.items()
        }
        self.marks: dict[str, int] = {}
        self.failing: dict[str, Backoff] = {}
        self.processed = 0
        self.started = threading.Event()  # set once the views' tables exist

    def run(self) -> None:
        pause = 0.5
        while not self.stopping.is_set():
            try:
                self._follow()
                return
            except INFRASTRUCTURE_ERRORS as error:  # the database went away: reconnect after a pause
                log.warning("projector lost the database (%s); reconnecting in %.1f s", type(error).__name__, pause)
            self.stopping.wait(pause)
            pause = min(pause * 2, MAX_BACKOFF_SECONDS)

    def _follow(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as conn, \
                psycopg.connect(self.dsn, autocommit=True) as listener:
            self._conn = conn
            self.vault.check_master_key(conn)
            ensure_engine_schema(conn)
            for applier in self.appliers.values():
                applier.ensure_schema(conn)
            listener.execute(f"LISTEN {EVENTS_CHANNEL}")
            self.marks = {name: a.low_water_mark(conn) for name, a in self.appliers.items()}
            self.started.set()
            self._heartbeat(conn)
            last_beat = time.monotonic()
            while not self.stopping.is_set():
                worked = self.step(conn)
                if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                    self._heartbeat(conn)
                    last_beat = time.monotonic()
                if not worked:
                    self._wait(listener, 1.0)

    def _key_connection(self) -> Any:
        """Keys are read on the projector's own connection, inside its transaction."""
        assert self._conn is not None, "the projector reads keys only while it runs"
        return contextlib.nullcontext(self._conn)

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        """Read one batch after the lowest mark of the views that are due and apply it.
        Returns whether there was anything to read."""
        now = time.monotonic()
        due = [n for n in self.appliers if n not in self.failing or self.failing[n].retry_at <= now]
        if not due:
            return False
        start = min(self.marks[n] for n in due)
        rows = read_stored(conn, start, self.batch_size)
        if not rows:
            return False
        deliveries = [delivery_from_store(r, self.catalogue) for r in rows]
        upto = rows[-1].position
        with conn.transaction():
            # the views' marks, held until this commits: two projectors on one database take turns
            hold_tracking(conn, [self.appliers[n] for n in due if self.marks[n] < upto], [LOW_WATER_MARK])
            for name in due:
                if self.marks[name] >= upto:
                    continue
                try:
                    result = self.appliers[name].apply_ordered(conn, deliveries, upto)
                except Exception as error:  # the view failed as a whole: it alone waits and retries
                    if conn.broken:
                        raise
                    self._failed(conn, name, error)
                    continue
                if result.busy:  # being rebuilt: the others go on; it is read again from its mark
                    self.failing[name] = Backoff.rebuilding()
                    continue
                self.marks[name] = result.low_water_mark
                if name in self.failing:
                    if not self.failing.pop(name).busy:
                        record_status(conn, name, self.worker, None)
                        log.info("view %s recovered", name)
        self.processed += len(rows)
        return True

    def _failed(self, conn: psycopg.Connection[Any], name: str, error: Exception) -> None:
        previous = self.failing.get(name)
        pause = min(previous.pause * 2, MAX_BACKOFF_SECONDS) if previous else max(self.backoff, 0.1)
        self.failing[name] = Backoff(pause, time.monotonic() + pause)
        log.error("view %s failed (%s); retrying in %.1f s", name, type(error).__name__, pause)
        with contextlib.suppress(Exception):
            record_status(conn, name, self.worker, type(error).__name__)

    def _heartbeat(self, conn: psycopg.Connection[Any]) -> None:
        for name in self.appliers:
            failing = self.failing.get(name)
            record_heartbeat(conn, name, self.worker, bool(failing and not failing.busy))

    def _wait(self, listener: psycopg.Connection[Any], timeout: float) -> None:
        for _ in listener.notifies(timeout=timeout, stop_after=1):
            pass


def _child_main(dsn: str, topics: list[str], options: dict[str, Any], stopping: Any, log_level: str) -> None:
    """Entry point of the projector's child process."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s projector: %(message)s")
    die_with_parent()
    # SIGTERM (sent too when the parent dies) and a vanished parent end the process at once:
    # whatever batch was open is rolled back by PostgreSQL and applied again by the next
    # projector. Not through ``stopping``: a parent killed while it held that shared event's
    # lock would leave it held, and this process waiting on it for ever, orphaned.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    parent = os.getppid()

    def watch_parent() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    projector = LocalProjector(dsn, projection_classes(topics), stopping=stopping, **options)
    freeze_startup_heap()  # a long-lived process: its start-up objects leave the collector's walks
    projector.run()


def die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies (no orphaned projector)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ProjectorProcess:
    """A ``LocalProjector`` in a child process, restarted (with backoff) if it dies."""

    def __init__(self, dsn: str, projections: dict[str, type[SqlProjection]], *, options: dict[str, Any],
                 log_level: str = "INFO") -> None:
        self.dsn = dsn
        self.topics = projection_topics(projections)
        self.options = options
        self.log_level = log_level
        self._context = multiprocessing.get_context("spawn")
        self._stopping = self._context.Event()
        self._closing = threading.Event()
        self._process: Any = None
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="projector-supervisor", daemon=True)
        self._supervisor.start()

    def _spawn(self) -> None:
        self._process = self._context.Process(
            target=_child_main, name="liudong-projector",
            args=(self.dsn, self.topics, self.options, self._stopping, self.log_level), daemon=True,
        )
        self._process.start()

    def _supervise(self) -> None:
        pause = 1.0
        while not self._closing.wait(0.5):
            if self._process is not None and not self._process.is_alive() and not self._closing.is_set():
                log.error("projector process exited with %s; restarting in %.0f s", self._process.exitcode, pause)
                if self._closing.wait(pause):
                    return
                self.restarts += 1
                self._spawn()
                pause = min(pause * 2, MAX_BACKOFF_SECONDS)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        self._closing.set()
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=2)
        if self._process is not None:
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)


# -- rebuild and dead letters --------------------------------------------------------------
@fewer_collections()
def rebuild(dsn: str, projection: type[SqlProjection], catalogue: EventCatalogue | None = None,
            batch_size: int = 2000, progress: Callable[[int, int], None] | None = None,
            schema: str | None = None, *, master_key: bytes) -> int:
    """Rebuild one view from the store; returns the position it reached. With ``schema``
    the view is built in that PostgreSQL schema (which must exist), beside the live one."""
    catalogue = catalogue or EventCatalogue.of_domain()
    holder: dict[str, Any] = {}
    vault = Vault(master_key, PgKeyStore(lambda: contextlib.nullcontext(holder["conn"])))
    applier = ViewApplier(projection, privacy=vault)
    target = make_conninfo(dsn, options=f"-c search_path={schema},public") if schema else dsn
    with psycopg.connect(target, autocommit=True, row_factory=dict_row) as conn, \
            psycopg.connect(dsn, autocommit=True) as reader:
        holder["conn"] = conn
        vault.check_master_key(conn)
        ensure_engine_schema(conn)
        applier.ensure_schema(conn)
        with conn.transaction():
            # Every writer of this view waits from here; the head is read after the lock,
            # so each event a writer applied before it is at or below the head.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (projection.lock_key(),))
            head = head_position(conn)

            def batches() -> Iterator[list[Delivery]]:
                for batch in read_ahead(read_deliveries(reader, catalogue, 0, head, batch_size,
                                                        topics=projection.handled_topics)):
                    if progress is not None:
                        progress(batch[-1].position or 0, head)
                    yield batch

            applier.rebuild(conn, batches(), head)
    return head


# -- views beside the live ones: replay as known at a moment, online rebuild -----------------
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass
class BuildReport:
    """What a replay or rebuild read and how fast; ``raw_rate`` is a plain scan of the
    same events in the same run (the baseline)."""

    events: int = 0  # read from the store
    applied: int = 0  # recorded by the moment asked about (a replay), or all of them
    position: int = 0
    seconds: float = 0.0
    swap_seconds: float = 0.0
    raw_rate: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _schema_connection(dsn: str, schema: str) -> str:
    return make_conninfo(dsn, options=f"-c search_path={schema},{_live_schema(dsn)}")


def _live_schema(dsn: str) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row else "public"


def check_schema_name(schema: str, dsn: str) -> None:
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"schema {schema!r}: lower-case letters, digits and _ only, at most 63")
    if schema in (_live_schema(dsn), "public", "pg_catalog", "information_schema"):
        raise ValueError(f"schema {schema!r} holds the live views or the system's; name another")


def _apply_everywhere(conn: psycopg.Connection[Any], appliers: Sequence[ViewApplier], batch: list[Delivery],
                      upto: int) -> None:
    """Apply one batch to each view; a view whose live copy is being rebuilt is waited for."""
    pending = list(appliers)
    while True:
        with conn.transaction():
            pending = [a for a in pending if a.apply_ordered(conn, batch, upto).busy]
        if not pending:
            return
        time.sleep(BUSY_PAUSE)


def replay(dsn: str, projections: dict[str, type[SqlProjection]], schema: str, *, master_key: bytes,
           known_at: datetime | None = None, batch_size: int = 2000, replace: bool = False,
           progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Build the given views into ``schema`` (made here) from the events recorded up to
    ``known_at`` (all of them without it): the district as the office knew it then,
    beside the live views. The live views and their followers are not touched."""
    check_schema_name(schema, dsn)
    with psycopg.connect(dsn, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists and not replace:
            raise ValueError(f"schema {schema} exists; drop it or replace it")
        admin.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
        admin.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    catalogue = EventCatalogue.of_domain()
    report = BuildReport()
    started = time.monotonic()
    with psycopg.connect(_schema_connection(dsn, schema), autocommit=True, row_factory=dict_row) as conn, \
            psycopg.connect(dsn, autocommit=True) as reader:
        vault = Vault(master_key, PgKeyStore(lambda: contextlib.nullcontext(conn)))
        vault.check_master_key(conn)
        ensure_engine_schema(conn)
        appliers = [ViewApplier(cls, privacy=vault) for cls in projections.values()]
        for applier in appliers:
            applier.ensure_schema(conn)
        head = head_position(reader)
        for batch in read_ahead(read_deliveries(reader, catalogue, 0, head, batch_size)):
            kept = [d for d in batch if known_at is None or d.event is None or _recorded_by(d.event, known_at)]
            _apply_everywhere(conn, appliers, kept, batch[-1].position or 0)
            report.events += len(batch)
            report.applied += len(kept)
            if progress is not None:
                progress(batch[-1].position or 0, head)
        report.position = head
        what = f"liudong views as known at {known_at.isoformat()}" if known_at else "liudong views, replayed"
        conn.execute(SQL("COMMENT ON SCHEMA {} IS {}").format(Identifier(schema), Literal(what)))
    report.seconds = time.monotonic() - started
    report.raw_rate = raw_scan_rate(dsn, report.events)
    return report


def _recorded_by(event: Any, moment: datetime) -> bool:
    when = getattr(event, "recorded_at", None) or getattr(event, "timestamp", None)
    return not isinstance(when, datetime) or when <= moment


def raw_scan_rate(dsn: str, events: int, batch_size: int = 5000) -> float:
    """Events per second of a plain read of the store (no decoding, no views): the
    baseline a replay or a rebuild is compared with."""
    if events <= 0:
        return 0.0
    started = time.monotonic()
    read = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        position = 0
        while read < events:
            rows = read_stored(conn, position, batch_size)
            if not rows:
                break
            read += len(rows)
            position = rows[-1].position
    seconds = time.monotonic() - started
    return read / seconds if seconds else 0.0


def rebuild_online(dsn: str, projection: type[SqlProjection], *, master_key: bytes, batch_size: int = 2000,
                   catch_up_within: int = 500, progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Rebuild one view while the service runs and takes writes: build a new copy in a
    schema of its own from the events (no lock on the live copy: its follower goes on),
    catch up, then, in one short transaction holding the view's lock, apply the last
    events and swap the new tables in. Readers see the old copy or the new one, never a
    half-built one; other views never wait. The old copy is dropped after."""
    name = projection.name
    shadow, retired = f"liudong_rebuild_{name}", f"liudong_retired_{name}"
    live = _live_schema(dsn)
    with psycopg.connect(dsn, autocommit=True) as admin:
        for schema in (shadow, retired):  # left by a rebuild that died
            admin.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
        admin.execute(SQL("CREATE SCHEMA {}").format(Identifier(shadow)))
    catalogue = EventCatalogue.of_domain()
    report = BuildReport()
    started = time.monotonic()
    try:
        with psycopg.connect(_schema_connection(dsn, shadow), autocommit=True, row_factory=dict_row) as conn, \
                psycopg.connect(dsn, autocommit=True) as reader:
            vault = Vault(master_key, PgKeyStore(lambda: contextlib.nullcontext(conn)))
            vault.check_master_key(conn)
            ensure_engine_schema(conn)
            applier = ViewApplier(projection, privacy=vault)
            applier.ensure_schema(conn)
            position = 0
            while True:  # build, then catch up while writes go on
                head = head_position(reader)
                for batch in read_ahead(read_deliveries(reader, catalogue, position, head, batch_size,
                                                        topics=projection.handled_topics)):
                    _apply_everywhere(conn, [applier], batch, batch[-1].position or 0)
                    report.events += len(batch)
                    if progress is not None:
                        progress(batch[-1].position or 0, head)
                position = head
                if head_position(reader) - position <= catch_up_within:
                    break
            swap_started = time.monotonic()
            with conn.transaction():
                # From here the view's followers skip it (they try its lock) and the other
                # views go on; the events stored since the catch-up are applied to the new copy.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (projection.lock_key(),))
                head = head_position(conn)
                for batch in read_deliveries(reader, catalogue, position, head, batch_size,
                                             topics=projection.handled_topics):
                    result = applier.apply_ordered(conn, batch, batch[-1].position or 0)
                    assert not result.busy  # this transaction holds the lock
                    report.events += len(batch)
                if head:  # the head itself, though the view handles none of the last events (found by a
                    applier.apply_ordered(conn, [], head)  # review: the rebuilt view read one event behind)
                _swap(conn, projection, live=live, shadow=shadow, retired=retired, head=head)
            report.swap_seconds = time.monotonic() - swap_started
            report.position = head
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            for schema in (retired, shadow):
                admin.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
    report.applied = report.events
    report.seconds = time.monotonic() - started
    report.raw_rate = raw_scan_rate(dsn, report.events)
    return report


def _swap(conn: psycopg.Connection[Any], projection: type[SqlProjection], *, live: str, shadow: str, retired: str,
          head: int) -> None:
    """Inside the caller's transaction: the new copy's tables take the live ones' place,
    with the view's bookkeeping (applied versions, dead letters, Kafka offsets)."""
    name = projection.name
    tables = [*projection.view_class.tables, projection.tracking_table()]
    conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(retired)))
    for table in tables:
        conn.execute(SQL("ALTER TABLE IF EXISTS {}.{} SET SCHEMA {}").format(
            Identifier(live), Identifier(table), Identifier(retired)))
        conn.execute(SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(
            Identifier(shadow), Identifier(table), Identifier(live)))
    tracking = Identifier(projection.tracking_table())
    # A Kafka worker's offsets: every message it took is at or below the head, which the new copy has.
    conn.execute(SQL("INSERT INTO {live}.{t} SELECT * FROM {old}.{t} WHERE application_name <> ALL(%s)"
                     " ON CONFLICT (application_name) DO NOTHING").format(
        live=Identifier(live), old=Identifier(retired), t=tracking), ([LOW_WATER_MARK, VIEW_VERSION],))
    params = {"view": name, "head": head}
    conn.execute(SQL("DELETE FROM {}.projection_versions WHERE view = %(view)s").format(Identifier(live)), params)
    conn.execute(SQL("INSERT INTO {}.projection_versions SELECT * FROM {}.projection_versions"
                     " WHERE view = %(view)s").format(Identifier(live), Identifier(shadow)), params)
    conn.execute(SQL("DELETE FROM {}.projection_chain WHERE view = %(view)s AND position <= %(head)s").format(
        Identifier(live)), params)
    conn.execute(SQL("UPDATE {}.projection_dead_letters SET resolved_at = now(), resolution = 'rebuilt'"
                     " WHERE view = %(view)s AND resolved_at IS NULL").format(Identifier(live)), params)
    conn.execute(SQL(
        "INSERT INTO {}.projection_dead_letters (view, dedupe_key, position, originator_id, version, event_type,"
        " source, payload, error, attempts, failed_at)"
        " SELECT view, dedupe_key, position, originator_id, version, event_type, source, payload, error, attempts,"
        " failed_at FROM {}.projection_dead_letters WHERE view = %(view)s AND resolved_at IS NULL"
        " ON CONFLICT (view, dedupe_key) DO UPDATE SET resolved_at = NULL, resolution = NULL,"
        " error = EXCLUDED.error").format(Identifier(live), Identifier(shadow)), params)
    notify_mark(conn, name, head, schema=live)


@dataclass
class RetryOutcome:
    letter_id: int
    outcome: str
    resolved: list[int] = field(default_factory=list)


def load_dead_event(conn: psycopg.Connection[Any], letter: dict[str, Any], catalogue: EventCatalogue,
                    decode_payload: Callable[[bytes], Any] | None) -> Any:
    """The event a dead letter holds: decoded again from the message it came in, or read
    from the store at its position."""
    if letter["payload"] is not None and decode_payload is not None:
        return decode_payload(bytes(letter["payload"]))
    if letter["position"] is None:
        raise UndecodableEvent("the dead letter has neither a message nor a position in the store")
    rows = read_stored(conn, int(letter["position"]) - 1, 1)
    if not rows or rows[0].position != letter["position"]:
        raise UndecodableEvent(f"no stored event at position {letter['position']}")
    row = rows[0]
    public_state(row.state)
    return catalogue.decode_stored(row.topic, row.originator_id, row.version, row.state)


def retry_dead_letter(dsn: str, letter_id: int, projections: dict[str, type[SqlProjection]],
                      catalogue: EventCatalogue | None = None,
                      decode_payload: Callable[[bytes], Any] | None = None, *, master_key: bytes) -> RetryOutcome:
    """Apply a dead letter's event to its view (or every view, for one that could not be
    decoded), then the later dead letters of the same aggregate that waited behind it."""
    catalogue = catalogue or EventCatalogue.of_domain()
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        vault = Vault(master_key, PgKeyStore(lambda: contextlib.nullcontext(conn)))
        letter = conn.execute("SELECT * FROM projection_dead_letters WHERE id = %s", (letter_id,)).fetchone()
        if letter is None:
            raise LookupError(f"no dead letter {letter_id}")
        if letter["resolved_at"] is not None:
            return RetryOutcome(letter_id, f"already resolved ({letter['resolution']})")
        try:
            event = load_dead_event(conn, letter, catalogue, decode_payload)
        except UndecodableEvent as error:
            conn.execute("UPDATE projection_dead_letters SET attempts = attempts + 1, failed_at = now(),"
                         " error = %s WHERE id = %s", (str(error), letter_id))
            return RetryOutcome(letter_id, f"still cannot be decoded: {error}")
        names = list(projections) if letter["view"] == EVERY_VIEW else [letter["view"]]
        unknown = [n for n in names if n not in projections]
        if unknown:
            raise LookupError(f"dead letter {letter_id} belongs to unknown view {unknown[0]!r}")
        for name in names:
            outcome = ViewApplier(projections[name], privacy=vault).retry(conn, letter, event)
            if outcome not in ("applied", "already applied"):
                return RetryOutcome(letter_id, f"{name}: {outcome}")
        resolve_dead_letter(conn, letter_id, "retried")
        result = RetryOutcome(letter_id, "applied", [letter_id])
        for name in names:
            applier = ViewApplier(projections[name], privacy=vault)
            waiting = conn.execute(
                "SELECT * FROM projection_dead_letters WHERE resolved_at IS NULL AND view = %s"
                " AND originator_id = %s AND version > %s ORDER BY version",
                (name, event.originator_id, event.originator_version),
            ).fetchall()
            for later in waiting:
                try:
                    later_event = load_dead_event(conn, later, catalogue, decode_payload)
                except UndecodableEvent:
                    break
                if applier.retry(conn, later, later_event) not in ("applied", "already applied"):
                    break
                resolve_dead_letter(conn, later["id"], "retried")
                result.resolved.append(later["id"])
        return result
