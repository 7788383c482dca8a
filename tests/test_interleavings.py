"""Property: however Kafka interleaves partitions, and whatever it delivers again, every
view equals a rebuild from the store.

The store's events go through the real CloudEvents codec, are split over P partitions by
key (as the relay and Kafka do), and reach the engine in random interleavings and batch
sizes, with redeliveries after simulated crashes (a batch rolled back, then read again
from the offsets PostgreSQL kept) and republished duplicates at new offsets."""

from __future__ import annotations

import contextlib
import random
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.rows import dict_row

from application.database import Database
from application.envelope import delivery_from_message, to_message
from application.events import EventCatalogue
from application.privacy import PgKeyStore, Vault
from application.store import read_stored
from projections.engine import Delivery, ViewApplier, ensure_engine_schema, hold_tracking
from projections.registry import PROJECTIONS
from tests.kafka_support import MASTER_KEY, EventLoad, _snapshot, own_database


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def store(database: Database) -> Iterator[tuple[Database, list[Any]]]:
    """One store of realistic events, shared by the examples (each builds its views in a
    schema of its own)."""
    with own_database(database) as db:
        load = EventLoad(db, seed=21)
        load.write(1200)
        load.close()
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            rows = read_stored(conn, 0, 100_000)
        yield db, rows


def partitioned(rows: list[Any], partitions: int, prefix: str) -> list[list[Any]]:
    """The relay's messages, each on the partition its key hashes to."""
    catalogue = EventCatalogue.of_domain()
    result: list[list[Any]] = [[] for _ in range(partitions)]
    previous = 0
    for row in rows:
        message = to_message(row, previous, catalogue, source="urn:liudong:test", topic_prefix=prefix)
        result[zlib.crc32(message.key) % partitions].append(message)
        previous = row.position
    return result


def create_schemas(db: Database, *prefixes: str) -> list[str]:
    """A schema of its own for each prefix (an example's live views, their rebuild)."""
    names = [f"{prefix}_{uuid.uuid4().hex[:8]}" for prefix in prefixes]
    with psycopg.connect(db.dsn, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return names


def drop_schemas(db: Database, *names: str) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def assert_equals_a_rebuild(db: Database, live: str, rebuilt: str) -> None:
    """Every view in ``live`` equals a rebuild from the store into ``rebuilt``, with no dead letter."""
    from application.projecting import rebuild

    for cls in PROJECTIONS.values():
        rebuild(db.dsn, cls, schema=rebuilt, master_key=MASTER_KEY)
    with psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row) as conn:
        assert _snapshot(conn, live, PROJECTIONS) == _snapshot(conn, rebuilt, PROJECTIONS)
        letters = conn.execute(sql.SQL("SELECT count(*) AS n FROM {}.projection_dead_letters").format(
            sql.Identifier(live))).fetchone()
    assert letters is not None and letters["n"] == 0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(partitions=st.integers(1, 6), seed=st.integers(0, 2**32),
       crash_rate=st.sampled_from([0.0, 0.1, 0.3]), republish_rate=st.sampled_from([0.0, 0.05, 0.2]))
def test_any_interleaving_with_redeliveries_gives_the_views_a_rebuild_gives(
        store: tuple[Database, list[Any]], partitions: int, seed: int, crash_rate: float,
        republish_rate: float) -> None:
    db, rows = store
    schedule = random.Random(seed)
    catalogue = EventCatalogue.of_domain()
    streams = partitioned(rows, partitions, "liudong")
    # A republish appends copies of earlier messages at new offsets (a relay killed after
    # the broker's acknowledgement, or `relay --from`).
    for stream in streams:
        copies = [m for m in stream if schedule.random() < republish_rate]
        stream.extend(copies)
    live, rebuilt = create_schemas(db, "live", "rebuilt")
    try:
        with psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row,
                             options=f"-c search_path={live},public") as conn:
            ensure_engine_schema(conn)
            vault = Vault(MASTER_KEY, PgKeyStore(lambda: contextlib.nullcontext(conn)))
            appliers = [ViewApplier(cls, privacy=vault) for cls in PROJECTIONS.values()]
            for applier in appliers:
                applier.ensure_schema(conn)
            consumed = [0] * partitions  # the consumer's position on each partition
            crashes = 0
            while any(consumed[p] < len(streams[p]) for p in range(partitions)):
                batch: list[Delivery] = []
                for _ in range(schedule.randint(1, 40)):
                    open_ = [p for p in range(partitions) if consumed[p] < len(streams[p])]
                    if not open_:
                        break
                    p = schedule.choice(open_)
                    for _ in range(schedule.randint(1, 5)):
                        if consumed[p] >= len(streams[p]):
                            break
                        message = streams[p][consumed[p]]
                        batch.append(delivery_from_message(message.value, catalogue, stream=f"kafka/t/id/{p}",
                                                           offset=consumed[p], key=message.key))
                        consumed[p] += 1
                crashed = schedule.random() < crash_rate
                try:
                    with conn.transaction():
                        for applier in appliers:
                            applier.apply_streamed(conn, batch)
                        if crashed:
                            raise Crash
                    if schedule.random() < 0.7:  # a worker may die before it advances the marks
                        for applier in appliers:
                            applier.advance(conn)
                except Crash:
                    # The worker died before committing; after restarting it seeks to
                    # what PostgreSQL says each view dealt with.
                    crashes += 1
                    for p in range(partitions):
                        done = min(a.stream_offsets(conn, [f"kafka/t/id/{p}"]).get(f"kafka/t/id/{p}", -1)
                                   for a in appliers)
                        consumed[p] = done + 1
            head = rows[-1].position
            assert all(a.advance(conn) == head for a in appliers)
        assert_equals_a_rebuild(db, live, rebuilt)
    finally:
        drop_schemas(db, live, rebuilt)


def test_two_appliers_of_the_same_partition_take_turns_and_the_second_skips_what_the_first_applied(
        store: tuple[Database, list[Any]]) -> None:
    """A worker dropped from its group mid-batch (it missed its session timeout) and the
    partition's new owner, which seeks to the offsets in PostgreSQL, apply the same messages at
    once. Found by a review: both read the same offsets and versions; the second's inserts
    failed as dead letters that parked those aggregates for good, and the live view differed
    from a rebuild. Now the second waits for the first's commit, then skips every message as
    seen, and the views equal a rebuild."""
    import threading

    db, rows = store
    catalogue = EventCatalogue.of_domain()
    (stream,) = partitioned(rows, 1, "liudong")
    deliveries = [delivery_from_message(m.value, catalogue, stream="kafka/t/id/0", offset=n, key=m.key)
                  for n, m in enumerate(stream)]
    third = len(deliveries) // 3
    live, rebuilt = create_schemas(db, "live", "rebuilt")
    options = f"-c search_path={live},public"
    try:
        with psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row, options=options) as first, \
                psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row, options=options) as second:
            ensure_engine_schema(first)

            def appliers(conn: Any) -> list[ViewApplier]:
                vault = Vault(MASTER_KEY, PgKeyStore(lambda: contextlib.nullcontext(conn)))
                return [ViewApplier(cls, privacy=vault) for cls in PROJECTIONS.values()]

            old_owner, new_owner = appliers(first), appliers(second)
            for applier in old_owner:
                applier.ensure_schema(first)
            with first.transaction():
                for applier in old_owner:
                    applier.apply_streamed(first, deliveries[:third])
            overlap = deliveries[third:2 * third]
            second_results: list[Any] = []
            streams = ["kafka/t/id/0"]
            with first.transaction():  # as a worker's batch does (workers/projector.py)
                hold_tracking(first, old_owner, streams)
                applied = [a.apply_streamed(first, overlap) for a in old_owner]

                def new_owner_applies() -> None:
                    with second.transaction():
                        hold_tracking(second, list(reversed(new_owner)), streams)  # views in another order
                        second_results.extend(a.apply_streamed(second, overlap) for a in new_owner)

                thread = threading.Thread(target=new_owner_applies)
                thread.start()
                thread.join(1.5)
                assert thread.is_alive(), "the new owner did not wait for the old owner's batch"
            thread.join(60)
            assert not thread.is_alive()
            assert sum(r.applied for r in applied) > 0
            assert sum(r.applied for r in second_results) == 0
            assert not any(r.dead_letters for r in second_results)
            with first.transaction():
                for applier in old_owner:
                    applier.apply_streamed(first, deliveries[2 * third:])
            head = rows[-1].position
            assert all(a.advance(first) == head for a in old_owner)
        assert_equals_a_rebuild(db, live, rebuilt)
    finally:
        drop_schemas(db, live, rebuilt)


def test_workers_on_other_partitions_never_wait_for_each_other(store: tuple[Database, list[Any]]) -> None:
    """Found by a review of the fix above: a lock on each view's mark made every worker's batch
    wait for every other's. Only the partitions a batch came from are held."""
    import threading

    db, rows = store
    catalogue = EventCatalogue.of_domain()
    batches = [[delivery_from_message(m.value, catalogue, stream=f"kafka/t/id/{p}", offset=n, key=m.key)
                for n, m in enumerate(stream[:200])] for p, stream in enumerate(partitioned(rows, 2, "liudong"))]
    (schema,) = create_schemas(db, "live")
    options = f"-c search_path={schema},public"
    try:
        with psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row, options=options) as first, \
                psycopg.connect(db.dsn, autocommit=True, row_factory=dict_row, options=options) as second:
            ensure_engine_schema(first)
            vault = Vault(MASTER_KEY, PgKeyStore(lambda: contextlib.nullcontext(first)))
            # (views that count per area and month share rows: their writers wait for each other's
            # row locks whatever the tracking does)
            appliers = [ViewApplier(PROJECTIONS["residents"], privacy=vault)]
            for applier in appliers:
                applier.ensure_schema(first)
            # the other partition's batch holds no event this view counts: what it writes is its
            # own tracking row and links, which no lock of this one's may hold up
            batches[1] = [d for d in batches[1] if not appliers[0].projection.handles_event(d.event)]
            with first.transaction():
                hold_tracking(first, appliers, ["kafka/t/id/0"])
                for applier in appliers:
                    applier.apply_streamed(first, batches[0])
                done = threading.Event()

                def other_partition() -> None:
                    with second.transaction():
                        hold_tracking(second, list(reversed(appliers)), ["kafka/t/id/1"])
                        for applier in appliers:
                            applier.apply_streamed(second, batches[1])
                    done.set()

                thread = threading.Thread(target=other_partition)
                thread.start()
                assert done.wait(10), "a worker on another partition waited for this one"
            thread.join()
    finally:
        drop_schemas(db, schema)
