"""``liudong relay``: publishes every stored event to Kafka, in the store's global order.

* The store is the source of truth; the relay's position (the last event the broker
  acknowledged) is kept in PostgreSQL (``relay_state``) and saved after each batch is
  acknowledged. A relay killed between the acknowledgement and the save publishes that
  batch again: delivery is at least once, and consumers drop duplicates by the
  CloudEvents ``id`` (the workers by aggregate version).
* It reads the store the way every follower does (``application.store.read_stored``):
  an event that commits late can never have a lower position than one already read.
* One relay publishes at a time: it holds a PostgreSQL advisory lock for as long as its
  connection lives. A second relay waits on standby and takes over when the first dies.
* If a topic's identity changes (the broker lost its data, or someone deleted and made
  the topic again) the relay publishes everything again from the start.
* One long-lived idempotent producer with ``acks=all``; after a broker failure it backs
  off, makes a new producer and carries on from the saved position.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import signal
import threading
import time
import zlib
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psycopg
from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram

from application.envelope import OutgoingMessage, to_message
from application.events import EventCatalogue
from application.projecting import die_with_parent
from application.settings import Settings
from application.store import EVENTS_CHANNEL, StoredRow, head_position, previous_position, read_stored
from workers.kafka import admin_client, check_producer_settings, create_producer, ensure_topics, event_topics

log = logging.getLogger(__name__)

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS relay_state ("
    " name text PRIMARY KEY, position bigint NOT NULL DEFAULT 0, topic_ids jsonb NOT NULL DEFAULT '{}',"
    " holder text, updated_at timestamptz NOT NULL DEFAULT now())",
]
TOPIC_CHECK_SECONDS = 10.0
MAX_BACKOFF = 10.0
MAX_BATCHES_IN_FLIGHT = 8
FLUSH_TIMEOUT = 30.0

PUBLISHED = Counter("liudong_relay_published_total", "stored events the broker acknowledged (republished ones too)")
RELAY_POSITION = Gauge("liudong_relay_position", "global position of the last event the broker acknowledged")
RELAY_LAG = Gauge("liudong_relay_lag_events", "events stored but not yet published")
FLUSH_SECONDS = Histogram("liudong_relay_batch_seconds", "time to publish one batch and save the position")
REPUBLISHES = Counter("liudong_relay_republish_total", "times the relay started again from an earlier position")


def encode_batch(rows: list[StoredRow], previous: int, source: str, prefix: str) -> list[OutgoingMessage]:
    """The messages of consecutive stored events (``previous``: the one before the first)."""
    catalogue = _catalogue()
    messages = []
    for row in rows:
        messages.append(to_message(row, previous, catalogue, source=source, topic_prefix=prefix))
        previous = row.position
    return messages


@lru_cache(maxsize=1)
def _catalogue() -> EventCatalogue:
    return EventCatalogue.of_domain()


def _encoder_started() -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the relay stops its encoder itself
    _catalogue()


class Encoder:
    """Encodes batches in ``processes`` child processes (0: in the caller's thread)."""

    def __init__(self, processes: int) -> None:
        self.pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_encoder_started) if processes else None
        if self.pool is not None:  # started (and the domain imported) before the first batch waits on it
            for started in [self.pool.submit(_catalogue) for _ in range(processes)]:
                started.result()

    def submit(self, rows: list[StoredRow], previous: int, source: str, prefix: str) -> Future[list[OutgoingMessage]]:
        if self.pool is not None:
            return self.pool.submit(encode_batch, rows, previous, source, prefix)
        done: Future[list[OutgoingMessage]] = Future()
        done.set_result(encode_batch(rows, previous, source, prefix))
        return done

    def __enter__(self) -> Encoder:
        return self

    def __exit__(self, *_: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)


class TopicsReset(Exception):
    """A topic is not the one the relay published to: its messages are gone."""


@dataclass
class Relay:
    settings: Settings
    dsn: str
    from_position: int | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    name: str = ""
    holder: str = field(default_factory=lambda: f"relay-{__import__('os').getpid()}")

    def __post_init__(self) -> None:
        self.name = self.name or f"relay:{self.settings.kafka_topic_prefix}"
        self.lock_key = zlib.crc32(f"liudong-{self.name}".encode())
        self.catalogue = EventCatalogue.of_domain()
        self.topics = event_topics(self.settings)
        self.published = 0
        self.holding = threading.Event()

    def run(self) -> None:
        """Publish until ``stopping`` is set; survives database and broker outages."""
        check_producer_settings(self.settings)  # a standby relay refuses bad settings too, at once
        pause = 0.5
        # The encoder's processes start (and import the domain) once, before this relay
        # takes the lead, and serve it across reconnections.
        with Encoder(self.settings.relay_encoder_processes) as encoder:
            while not self.stopping.is_set():
                try:
                    with psycopg.connect(self.dsn, autocommit=True) as conn:
                        for statement in SCHEMA:
                            conn.execute(statement)
                        if not self._acquire(conn):
                            return
                        pause = 0.5
                        self._lead(conn, encoder)
                except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                    log.warning("relay lost the database (%s); retrying in %.1f s", type(error).__name__, pause)
                finally:
                    self.holding.clear()
                self.stopping.wait(pause)
                pause = min(pause * 2, MAX_BACKOFF)

    def _acquire(self, conn: psycopg.Connection[Any]) -> bool:
        announced = False
        while not self.stopping.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,)).fetchone()
            if row and row[0]:
                log.info("relay %s is the active relay for %s", self.holder, self.name)
                self.holding.set()
                return True
            if not announced:
                log.info("relay %s on standby: another relay publishes %s", self.holder, self.name)
                announced = True
            self.stopping.wait(1.0)
        return False

    def _lead(self, conn: psycopg.Connection[Any], encoder: Encoder) -> None:
        """Publish while holding the lock; Kafka failures are retried here with backoff."""
        pause = 0.5
        start_from = self.from_position
        while not self.stopping.is_set():
            producer = None
            try:
                admin = admin_client(self.settings)
                try:
                    ids = ensure_topics(admin, self.settings, self.topics)
                finally:
                    admin.close()
                position = self._start(conn, ids, start_from)
                start_from = None
                producer = create_producer(self.settings)
                pause = 0.5
                self._publish(conn, producer, encoder, position, ids)
                return
            except (KafkaError, TopicsReset, OSError) as error:
                if isinstance(error, TopicsReset):
                    log.warning("%s", error)
                else:
                    log.warning("relay cannot publish (%s: %s); retrying in %.1f s", type(error).__name__, error,
                                pause)
                    self.stopping.wait(pause)
                    pause = min(pause * 2, MAX_BACKOFF)
            finally:
                if producer is not None:
                    producer.close(timeout=2)

    def _start(self, conn: psycopg.Connection[Any], ids: dict[str, str], start_from: int | None) -> int:
        """The position to publish after: the saved one, or 0 when a topic was made
        again (its messages are gone), or the one asked for with --from."""
        row = conn.execute("SELECT position, topic_ids FROM relay_state WHERE name = %s", (self.name,)).fetchone()
        position, known = (int(row[0]), dict(row[1])) if row else (0, {})
        reset = [t for t, i in ids.items() if i and known.get(t) and known[t] != i]
        if reset and position:
            log.warning("topics %s were made again (their messages are gone): publishing every event again",
                        ", ".join(sorted(reset)))
            position = 0
            REPUBLISHES.inc()
        if start_from is not None:
            # Back only: --from past what was published would skip the events between (never).
            wanted = min(max(start_from, 0), position)
            log.info("publishing again from position %d (asked %d, was %d)", wanted, start_from, position)
            position = wanted
            REPUBLISHES.inc()
        conn.execute(
            "INSERT INTO relay_state (name, position, topic_ids, holder, updated_at) VALUES (%s, %s, %s, %s, now())"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, topic_ids = EXCLUDED.topic_ids,"
            " holder = EXCLUDED.holder, updated_at = now()",
            (self.name, position, json.dumps(ids), self.holder),
        )
        RELAY_POSITION.set(position)
        return position

    def _publish(self, conn: psycopg.Connection[Any], producer: Any, encoder: Encoder, position: int,
                 ids: dict[str, str]) -> None:
        """Read, encode, send, and save the position as batches are acknowledged.

        A pipeline: while one batch is sent, the next is encoded (in a process of its own,
        so building CloudEvents does not compete with the producer for one interpreter
        lock) and the one after is read. The saved position only ever covers batches
        whose every message the broker acknowledged."""
        encoding: deque[tuple[Future[list[OutgoingMessage]], int, float]] = deque()
        in_flight: deque[tuple[int, list[Any], float]] = deque()
        with psycopg.connect(self.dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {EVENTS_CHANNEL}")
            previous: int | None = None
            read_upto = position
            checked = time.monotonic()
            while not self.stopping.is_set():
                room = len(encoding) < 2 and len(in_flight) < MAX_BATCHES_IN_FLIGHT
                rows = read_stored(conn, read_upto, self.settings.relay_batch_size) if room else []
                if rows:
                    if previous is None:
                        previous = previous_position(conn, rows[0].position)
                    encoding.append((encoder.submit(rows, previous, self.settings.event_source,
                                                    self.settings.kafka_topic_prefix),
                                     rows[-1].position, time.perf_counter()))
                    previous = read_upto = rows[-1].position
                    continue
                if encoding:
                    future, last, started = encoding.popleft()
                    futures = [producer.send(m.topic, key=m.key, value=m.value, headers=m.headers)
                               for m in future.result(timeout=FLUSH_TIMEOUT)]
                    in_flight.append((last, futures, started))
                    position = self._acknowledged(conn, producer, in_flight, position, wait=False)
                    continue
                if in_flight:
                    # Nothing more to read now (or enough in flight): wait for the broker.
                    position = self._acknowledged(conn, producer, in_flight, position, wait=True)
                    continue
                RELAY_LAG.set(0)
                if time.monotonic() - checked > TOPIC_CHECK_SECONDS:
                    self._check_topics(ids)
                    conn.execute("UPDATE relay_state SET updated_at = now() WHERE name = %s", (self.name,))
                    checked = time.monotonic()
                for _ in listener.notifies(timeout=1.0, stop_after=1):
                    pass
            if in_flight:  # stopping: finish what was sent, so it is not sent again
                self._acknowledged(conn, producer, in_flight, position, wait=True)

    def _acknowledged(self, conn: psycopg.Connection[Any], producer: Any,
                      in_flight: deque[tuple[int, list[Any], float]], position: int, *, wait: bool) -> int:
        """Save the position after the oldest batches whose messages were all acknowledged;
        raise the broker's error for any message that was not."""
        if wait and in_flight:
            # The oldest batch only: later ones stay in flight (a flush would drain them all).
            deadline = time.monotonic() + FLUSH_TIMEOUT
            for future in in_flight[0][1]:
                if not future.is_done:
                    future.get(timeout=max(deadline - time.monotonic(), 0.001))
        advanced = position
        while in_flight and all(f.is_done for f in in_flight[0][1]):
            last, futures, started = in_flight.popleft()
            for future in futures:
                future.get(timeout=0)  # raises the broker's error for a message not acknowledged
            advanced = last
            self.published += len(futures)
            PUBLISHED.inc(len(futures))
            FLUSH_SECONDS.observe(time.perf_counter() - started)
        if advanced != position:
            conn.execute("UPDATE relay_state SET position = %s, updated_at = now() WHERE name = %s",
                         (advanced, self.name))
            RELAY_POSITION.set(advanced)
            RELAY_LAG.set(max(head_position(conn) - advanced, 0))
        return advanced

    def _check_topics(self, ids: dict[str, str]) -> None:
        admin = admin_client(self.settings)
        try:
            from workers.kafka import topic_ids

            now = topic_ids(admin, self.topics)
        finally:
            admin.close()
        changed = [t for t in self.topics if now.get(t, "") != ids.get(t, "")]
        if changed:
            raise TopicsReset(f"topics {', '.join(changed)} changed or vanished: publishing every event again")
