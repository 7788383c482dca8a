"""``liudong worker``: keeps the views from Kafka, as one member of a consumer group.

* The same projection classes and engine as the in-process projector
  (``projections.engine``): each batch of messages is applied to every view of this
  worker in one PostgreSQL transaction (a savepoint per view), with the offset of each
  partition recorded per view in that transaction. Kafka's own committed offsets are
  informational: on every assignment the worker seeks to what PostgreSQL says.
* Partitions interleave in any order and messages come again after a crash, a
  rebalance or a republish: the engine skips what a view already applied (by aggregate
  version) and advances each view's low-water mark along the chain of positions.
* A message that cannot be decoded, or that a view keeps failing on, becomes a dead
  letter (table and ``PREFIX.dead-letters`` topic); the partition moves on.
* A view that fails as a whole (the database refuses its batch) waits with backoff
  while the others go on; when it is due the worker rewinds to where it stopped.
* SIGTERM: the batch in flight is finished (or rolled back), the worker leaves the group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError
from prometheus_client import Counter, Gauge, Histogram
from psycopg.rows import dict_row

from application.envelope import delivery_from_message
from application.events import EventCatalogue
from application.privacy import PgKeyStore, Vault
from application.projecting import Backoff
from application.settings import Settings
from application.store import head_position
from projections.base import SqlProjection
from projections.engine import (
    EVERY_VIEW,
    INFRASTRUCTURE_ERRORS,
    ViewApplier,
    ensure_engine_schema,
    hold_tracking,
    record_heartbeat,
    record_status,
)
from workers.kafka import (
    admin_client,
    bootstrap,
    client_timeouts,
    create_producer,
    dead_letter_topic,
    ensure_topics,
    event_topics,
    topic_ids,
)

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
TOPIC_CHECK_SECONDS = 15.0
MAX_BACKOFF = 30.0

PROCESSED = Counter("liudong_worker_events_total", "events a view dealt with", ["view", "outcome"])
BATCH_SECONDS = Histogram("liudong_worker_batch_seconds", "time to apply one batch to every view of the worker")
VIEW_LAG = Gauge("liudong_view_lag_events", "events stored that the view has not dealt with", ["view"])
DEAD_LETTERS = Counter("liudong_dead_letters_total", "events recorded as dead letters", ["view"])


def group_for(settings: Settings, names: list[str], all_names: list[str]) -> str:
    """Workers that keep the same views share a group and split the partitions."""
    if sorted(names) == sorted(all_names):
        return settings.kafka_consumer_group
    return f"{settings.kafka_consumer_group}.{'+'.join(sorted(names))}"


@dataclass
class Worker:
    settings: Settings
    dsn: str
    projections: dict[str, type[SqlProjection]]
    group_id: str
    stopping: threading.Event = field(default_factory=threading.Event)
    name: str = field(default_factory=lambda: f"worker-{socket.gethostname()}-{os.getpid()}")

    def __post_init__(self) -> None:
        self.catalogue = EventCatalogue.of_domain()
        self._conn: psycopg.Connection[Any] | None = None
        self.vault = Vault(self.settings.master_key(), PgKeyStore(lambda: contextlib.nullcontext(self._conn)))
        self.appliers = {
            name: ViewApplier(cls, privacy=self.vault, attempts=self.settings.projection_attempts,
                              backoff=self.settings.projection_retry_backoff)
            for name, cls in self.projections.items()
        }
        self.topics = event_topics(self.settings)
        self.streams: dict[TopicPartition, str] = {}
        self.failing: dict[str, Backoff] = {}
        self.processed = 0
        self.assigned = threading.Event()
        self.needs_rewind = False
        self._pauses: dict[str, float] = {}
        self._producer: Any = None
        self._consumer: KafkaConsumer | None = None

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        pause = 0.5
        while not self.stopping.is_set():
            try:
                self._consume()
                return
            except INFRASTRUCTURE_ERRORS as error:
                log.warning("worker lost the database (%s); retrying in %.1f s", type(error).__name__, pause)
            except KafkaError as error:
                log.warning("worker lost the broker (%s: %s); retrying in %.1f s", type(error).__name__, error, pause)
            self.stopping.wait(pause)
            pause = min(pause * 2, MAX_BACKOFF)

    def _consume(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row) as conn:
            self._conn = conn
            self.vault.check_master_key(conn)
            ensure_engine_schema(conn)
            for applier in self.appliers.values():
                applier.ensure_schema(conn)
            # The topics made here with the configured partitions if the relay has not yet: a
            # broker that makes topics on a consumer's first request (tansu does, whatever the
            # client asks) would otherwise give them its own count (found by a review).
            admin = admin_client(self.settings)
            try:
                # and the dead letters' (found by a review: left to the broker's own defaults, or never
                # made where a cluster does not make topics on a first write)
                ensure_topics(admin, self.settings, [*self.topics, dead_letter_topic(self.settings)])
            except KafkaError as error:  # not allowed to (the cluster's ACLs): the relay makes them
                log.info("worker did not make the topics (%s); the relay does", type(error).__name__)
            finally:
                admin.close()
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap(self.settings),
                group_id=self.group_id,
                client_id=self.name,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.settings.worker_batch_size,
                session_timeout_ms=self.settings.kafka_session_timeout_ms,
                heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
                max_poll_interval_ms=self.settings.kafka_max_poll_interval_ms,
                metadata_max_age_ms=self.settings.kafka_metadata_max_age_ms,
                fetch_max_wait_ms=self.settings.kafka_fetch_max_wait_ms,
                allow_auto_create_topics=False,
                **client_timeouts(self.settings),
            )
            self._consumer = consumer
            try:
                consumer.subscribe(topics=self.topics, listener=_Rebalance(self))
                self._loop(conn, consumer)
            finally:
                self._consumer = None
                with contextlib.suppress(Exception):
                    consumer.close(autocommit=False)  # leaves the group at once
                if self._producer is not None:
                    with contextlib.suppress(Exception):
                        self._producer.close(timeout=2)
                    self._producer = None
                self._conn = None

    def _loop(self, conn: psycopg.Connection[Any], consumer: KafkaConsumer) -> None:
        beat = topics_checked = time.monotonic()
        self._heartbeat(conn)
        while not self.stopping.is_set():
            if self.needs_rewind:
                self.needs_rewind = False
                self.assign(conn, consumer, list(consumer.assignment()))
            elif self._retry_due():
                self.rewind(conn, consumer)
            records = consumer.poll(timeout_ms=500, max_records=self.settings.worker_batch_size)
            if records:
                self._process(conn, consumer, records)
            now = time.monotonic()
            if now - beat > HEARTBEAT_SECONDS:
                self._heartbeat(conn)
                self._publish_dead_letters(conn)
                beat = now
            if now - topics_checked > TOPIC_CHECK_SECONDS:
                self._check_topics(conn, consumer)
                topics_checked = now

    def _process(self, conn: psycopg.Connection[Any], consumer: KafkaConsumer,
                 records: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        deliveries = []
        last: dict[TopicPartition, int] = {}
        for tp, messages in records.items():
            stream = self.streams.get(tp) or self._stream(tp, "")
            for message in messages:
                deliveries.append(delivery_from_message(message.value, self.catalogue, stream=stream,
                                                        offset=message.offset, key=message.key))
                last[tp] = message.offset
        dead = False
        with conn.transaction():
            # each view's partitions of this batch, held until it commits: a dropped member still
            # finishing a batch and the partition's new owner take turns (projections.engine)
            hold_tracking(conn, [a for n, a in self.appliers.items() if n not in self.failing],
                          {d.stream for d in deliveries if d.stream is not None})
            for name, applier in self.appliers.items():
                if name in self.failing:
                    continue  # it is rewound when its retry is due
                try:
                    result = applier.apply_streamed(conn, deliveries)
                except Exception as error:  # the view failed as a whole: it alone waits and retries
                    if conn.broken:
                        raise
                    self._failed(conn, name, error)
                    continue
                if result.busy:  # being rebuilt: read its partitions again from its offsets once it is free
                    self.failing[name] = Backoff.rebuilding()
                    continue
                if name in self._pauses:
                    del self._pauses[name]
                    record_status(conn, name, self.name, None)
                    log.info("view %s recovered", name)
                PROCESSED.labels(name, "applied").inc(result.applied)
                PROCESSED.labels(name, "duplicate").inc(result.duplicates)
                if result.dead_letters:
                    DEAD_LETTERS.labels(name).inc(len(result.dead_letters))
                    dead = True
        self._advance(conn)
        self.processed += len(deliveries)
        BATCH_SECONDS.observe(time.perf_counter() - started)
        with contextlib.suppress(KafkaError):  # informational: assignment seeks from PostgreSQL
            consumer.commit_async({tp: OffsetAndMetadata(offset + 1, "", -1) for tp, offset in last.items()})
        if dead:
            self._publish_dead_letters(conn)

    # -- partitions ------------------------------------------------------------------------
    def _stream(self, tp: TopicPartition, topic_id: str) -> str:
        """How a partition is named in the views' tracking: a topic made again under the
        same name is another stream, whose offsets start again at 0."""
        stream = f"kafka/{tp.topic}/{topic_id}/{tp.partition}"
        self.streams[tp] = stream
        return stream

    def assign(self, conn: psycopg.Connection[Any], consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        admin = admin_client(self.settings)
        try:
            ids = topic_ids(admin, {tp.topic for tp in partitions})
        finally:
            admin.close()
        self.streams = {tp: s for tp, s in self.streams.items() if tp in partitions}
        for tp in partitions:
            self._stream(tp, ids.get(tp.topic, ""))
        self.rewind(conn, consumer, partitions)
        self.assigned.set()
        log.info("%s assigned %s", self.name, ", ".join(f"{tp.topic}/{tp.partition}" for tp in sorted(partitions)))

    def rewind(self, conn: psycopg.Connection[Any], consumer: KafkaConsumer,
               partitions: list[TopicPartition] | None = None) -> None:
        """Seek each partition to the first message some view of this worker still needs."""
        partitions = list(consumer.assignment()) if partitions is None else partitions
        streams = [self.streams[tp] for tp in partitions if tp in self.streams]
        offsets = {name: a.stream_offsets(conn, streams) for name, a in self.appliers.items()}
        for tp in partitions:
            stream = self.streams.get(tp)
            done = [offsets[name].get(stream, -1) if stream else -1 for name in self.appliers]
            consumer.seek(tp, min(done) + 1)

    def _check_topics(self, conn: psycopg.Connection[Any], consumer: KafkaConsumer) -> None:
        assigned = list(consumer.assignment())
        if not assigned:
            return
        try:
            admin = admin_client(self.settings)
            try:
                ids = topic_ids(admin, {tp.topic for tp in assigned})
            finally:
                admin.close()
        except KafkaError:
            return
        changed = [tp for tp in assigned if self.streams.get(tp) != f"kafka/{tp.topic}/{ids.get(tp.topic, '')}/"
                   f"{tp.partition}"]
        if changed:
            log.warning("topics %s were made again; reading them from their start",
                        ", ".join(sorted({tp.topic for tp in changed})))
            for tp in changed:
                self._stream(tp, ids.get(tp.topic, ""))
            self.rewind(conn, consumer, changed)

    # -- failures --------------------------------------------------------------------------
    def _failed(self, conn: psycopg.Connection[Any], name: str, error: Exception) -> None:
        previous = self._pauses.get(name)
        pause = min(previous * 2, MAX_BACKOFF) if previous else max(self.settings.projection_retry_backoff, 0.1)
        self.failing[name] = Backoff(pause, time.monotonic() + pause)
        log.error("view %s failed (%s); retrying in %.1f s", name, type(error).__name__, pause)
        with contextlib.suppress(Exception):
            record_status(conn, name, self.name, type(error).__name__)

    def _retry_due(self) -> bool:
        now = time.monotonic()
        due = [n for n, b in self.failing.items() if b.retry_at <= now]
        for name in due:
            backoff = self.failing.pop(name)
            if not backoff.busy:
                self._pauses[name] = backoff.pause  # a second failure waits longer
        return bool(due)

    def _advance(self, conn: psycopg.Connection[Any]) -> None:
        """Move the views' low-water marks, in one short transaction after the batch's.
        Pipelined: a view's savepoint, lock and reading go in one round trip, its move with
        the next view's."""
        with conn.pipeline(), conn.transaction():
            for name, applier in self.appliers.items():
                if name not in self.failing:
                    applier.advance(conn)

    def _heartbeat(self, conn: psycopg.Connection[Any]) -> None:
        self._advance(conn)  # links a worker left before dying are followed here too
        head = head_position(conn)
        for name, applier in self.appliers.items():
            record_heartbeat(conn, name, self.name, name in self.failing)
            VIEW_LAG.labels(name).set(max(head - applier.low_water_mark(conn), 0))

    # -- dead letters ----------------------------------------------------------------------
    def _publish_dead_letters(self, conn: psycopg.Connection[Any]) -> None:
        """Publish the dead letters not yet on the dead-letter topic (an outbox: the table
        is the record, the topic tells the people who watch it)."""
        rows = conn.execute(
            "SELECT id, view, position, originator_id, version, event_type, source, payload, error"
            " FROM projection_dead_letters WHERE published_at IS NULL AND view = ANY(%s) ORDER BY id LIMIT 200",
            ([*self.appliers, EVERY_VIEW],),
        ).fetchall()
        if not rows:
            return
        try:
            if self._producer is None:
                self._producer = create_producer(self.settings, client_id=self.name)
            topic = dead_letter_topic(self.settings)
            futures = []
            for row in rows:
                letter_id, view, position, originator, version, event_type, source, payload, error = row.values()
                headers = [("liudong-error", error.encode()), ("liudong-view", view.encode()),
                           ("liudong-source", source.encode()), ("liudong-dead-letter", str(letter_id).encode())]
                value = bytes(payload) if payload is not None else json.dumps({
                    "dead_letter": letter_id, "view": view, "position": position, "originator_id": str(originator),
                    "version": version, "event_type": event_type, "error": error}).encode()
                futures.append(self._producer.send(topic, key=str(originator or "").encode() or None, value=value,
                                                   headers=headers))
            self._producer.flush(timeout=10)
            for future in futures:
                future.get(timeout=0)
        except Exception as error:  # the table keeps them; published at the next try
            log.warning("dead letters not published yet (%s)", type(error).__name__)
            return
        conn.execute("UPDATE projection_dead_letters SET published_at = now() WHERE id = ANY(%s)",
                     ([r["id"] for r in rows],))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Nothing is in flight: batches commit to PostgreSQL before the next poll.
        log.info("%s gives up %d partitions", self.worker.name, len(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        conn, consumer = self.worker._conn, self.worker._consumer
        if conn is None or consumer is None:
            return
        try:
            self.worker.assign(conn, consumer, list(assigned))
        except Exception:  # kafka-python only logs a listener's error: seek again from the loop
            log.error("%s could not seek its new partitions; trying again", self.worker.name)
            self.worker.needs_rewind = True
