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
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from eventsourcing.utils import get_topic, resolve_topic
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from application.events import EventCatalogue, UndecodableEvent, public_state
from application.privacy import PgKeyStore, Vault
from application.store import EVENTS_CHANNEL, StoredRow, head_position, read_stored
from projections.base import SqlProjection
from projections.engine import (
    EVERY_VIEW,
    INFRASTRUCTURE_ERRORS,
    Delivery,
    ViewApplier,
    ensure_engine_schema,
    record_status,
    resolve_dead_letter,
)

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0


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
            return
        yield [delivery_from_store(r, catalogue) for r in rows]
        position = rows[-1].position


def projection_classes(topics: Sequence[str]) -> dict[str, type[SqlProjection]]:
    classes = [resolve_topic(t) for t in topics]
    return {cls.name: cls for cls in classes}


def projection_topics(projections: dict[str, type[SqlProjection]]) -> list[str]:
    return [get_topic(cls) for cls in projections.values()]


# -- the in-process projector -------------------------------------------------------------
@dataclass
class _Backoff:
    pause: float
    retry_at: float


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
        self.failing: dict[str, _Backoff] = {}
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
                if result.busy:
                    continue
                self.marks[name] = result.low_water_mark
                if name in self.failing:
                    del self.failing[name]
                    record_status(conn, name, self.worker, None)
                    log.info("view %s recovered", name)
        self.processed += len(rows)
        return True

    def _failed(self, conn: psycopg.Connection[Any], name: str, error: Exception) -> None:
        previous = self.failing.get(name)
        pause = min(previous.pause * 2, MAX_BACKOFF_SECONDS) if previous else max(self.backoff, 0.1)
        self.failing[name] = _Backoff(pause, time.monotonic() + pause)
        log.error("view %s failed (%s); retrying in %.1f s", name, type(error).__name__, pause)
        with contextlib.suppress(Exception):
            record_status(conn, name, self.worker, type(error).__name__)

    def _heartbeat(self, conn: psycopg.Connection[Any]) -> None:
        for name in self.appliers:
            failing = self.failing.get(name)
            record_status(conn, name, self.worker, "retrying" if failing else None)

    def _wait(self, listener: psycopg.Connection[Any], timeout: float) -> None:
        for _ in listener.notifies(timeout=timeout, stop_after=1):
            pass


def _child_main(dsn: str, topics: list[str], options: dict[str, Any], stopping: Any, log_level: str) -> None:
    """Entry point of the projector's child process."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s projector: %(message)s")
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    parent = os.getppid()

    def watch_parent() -> None:
        while not stopping.wait(1.0):
            if os.getppid() != parent:
                stopping.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    LocalProjector(dsn, projection_classes(topics), stopping=stopping, **options).run()


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
def rebuild(dsn: str, projection: type[SqlProjection], catalogue: EventCatalogue | None = None,
            batch_size: int = 1000, progress: Callable[[int, int], None] | None = None,
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
                for batch in read_deliveries(reader, catalogue, 0, head, batch_size,
                                             topics=projection.handled_topics):
                    if progress is not None:
                        progress(batch[-1].position or 0, head)
                    yield batch

            applier.rebuild(conn, batches(), head)
    return head


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
