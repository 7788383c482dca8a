"""Writers commit concurrently, without a table lock, so positions become visible out of
order; followers must still read every committed event exactly once, in position order,
never skipping one that commits late below a visible one (docs/adr/0005).

32 writers insert through the store's insert function with random delays before commit
and random rollbacks, while followers read with ``read_stored`` in random batch sizes (as
the projection runner, the relay, the chainer and a replay do), and the chainer chains."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from application.chain import Chainer, verify
from application.database import Database
from application.office import Liudong
from application.store import read_stored, settled_position
from tests.kafka_support import own_database

MASTER_KEY = bytes(range(32))
WRITERS = 32
TRANSACTIONS = 25  # per writer


@pytest.fixture()
def gap_db(database: Database) -> Iterator[Database]:
    with own_database(database) as db:
        yield db


class Rollback(Exception):
    pass


def test_no_follower_skips_or_repeats_an_event_with_32_concurrent_writers(gap_db: Database,
                                                                           figures: list[str]) -> None:
    app = Liudong(env=gap_db.eventsourcing_env(WRITERS + 4, master_key=MASTER_KEY))
    recorder: Any = app.recorder
    done = threading.Event()
    rolled_back = 0
    out_of_order = 0
    lock = threading.Lock()
    topic = "domain.areas:Area.Renamed"  # any stored topic: followers here read bytes, not events

    def writer(seed: int) -> None:
        nonlocal rolled_back
        rng = random.Random(seed)
        for _ in range(TRANSACTIONS):
            aggregate = UUID(int=rng.getrandbits(128))
            rows = [recorder.construct_pg_stored_event(aggregate, v, topic, b"{}") for v in (1, 2)]
            try:
                with recorder.datastore.transaction(commit=True) as curs:
                    time.sleep(rng.uniform(0, 0.005))
                    curs.execute(recorder.sql_invoke_pg_function_insert_events, (rows,))
                    time.sleep(rng.uniform(0, 0.03))  # commit late: others commit higher positions first
                    if rng.random() < 0.1:
                        raise Rollback
            except Rollback:
                with lock:
                    rolled_back += 1

    seen: list[list[int]] = [[] for _ in range(4)]

    def follower(index: int) -> None:
        rng = random.Random(100 + index)
        after = 0
        with psycopg.connect(gap_db.dsn, autocommit=True) as conn:
            while True:
                finished = done.is_set()  # read before the last pass, so that pass sees every commit
                rows = read_stored(conn, after, rng.randint(1, 50))
                for row in rows:
                    seen[index].append(row.position)
                if rows:
                    after = rows[-1].position
                elif finished:
                    return
                else:
                    time.sleep(0.001)

    chainer = Chainer(gap_db.dsn)
    chain_stop = threading.Event()

    def chain() -> None:
        while not chain_stop.is_set():
            chainer.catch_up()
            time.sleep(0.01)

    readers = [threading.Thread(target=follower, args=(n,)) for n in range(4)]
    readers.append(threading.Thread(target=chain))
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    started = time.monotonic()
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(120)
    seconds = time.monotonic() - started
    done.set()
    for t in readers[:4]:
        t.join(60)
    chain_stop.set()
    readers[4].join(60)
    app.close()

    with psycopg.connect(gap_db.dsn, autocommit=True) as conn:
        committed = [r[0] for r in conn.execute("SELECT notification_id FROM liudong_events ORDER BY 1")]
        # Positions became visible out of order: a later one committed before an earlier one.
        last = int(conn.execute("SELECT last_value FROM liudong_events_notification_id_seq").fetchone()[0])
        out_of_order = last - len(committed)
        assert settled_position(conn) == last
    assert rolled_back > 0 and len(committed) == 2 * (WRITERS * TRANSACTIONS - rolled_back)
    for index, positions in enumerate(seen):
        assert positions == committed, f"follower {index} skipped or repeated events"
    chainer.catch_up()
    with psycopg.connect(gap_db.dsn, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        checked = verify(conn)
    assert checked.broken is None and checked.events == len(committed) and checked.unchained == 0
    figures.append(f"positions: {WRITERS} writers, {len(committed)} events committed in {seconds:.1f} s, "
                   f"{rolled_back} transactions rolled back ({out_of_order} positions unused); 4 followers and "
                   "the chainer read every committed event once, in order")


def test_a_writer_in_flight_holds_followers_below_its_position_until_it_ends(gap_db: Database) -> None:
    app = Liudong(env=gap_db.eventsourcing_env(4, master_key=MASTER_KEY))
    recorder: Any = app.recorder
    topic = "domain.areas:Area.Renamed"

    def rows(n: int) -> list[Any]:
        return [recorder.construct_pg_stored_event(UUID(int=n), 1, topic, b"{}")]

    try:
        with psycopg.connect(gap_db.dsn) as slow, psycopg.connect(gap_db.dsn, autocommit=True) as reader:
            slow.execute(recorder.sql_invoke_pg_function_insert_events, (rows(1),))  # position 1, not committed
            with recorder.datastore.transaction(commit=True) as curs:
                curs.execute(recorder.sql_invoke_pg_function_insert_events, (rows(2),))  # position 2, committed
            assert read_stored(reader, 0, 10) == []  # position 2 is visible, but 1 may still come
            assert settled_position(reader, timeout=0.2) == 0
            slow.commit()
            assert [r.position for r in read_stored(reader, 0, 10)] == [1, 2]
            with psycopg.connect(gap_db.dsn) as doomed:
                doomed.execute(recorder.sql_invoke_pg_function_insert_events, (rows(3),))  # position 3
                with recorder.datastore.transaction(commit=True) as curs:
                    curs.execute(recorder.sql_invoke_pg_function_insert_events, (rows(4),))
                assert read_stored(reader, 2, 10) == []
                doomed.rollback()  # position 3 never comes: followers go past it
            assert [r.position for r in read_stored(reader, 2, 10)] == [4]
    finally:
        app.close()




def test_a_command_that_changes_nothing_stores_nothing_and_notifies_nobody(gap_db: Database) -> None:
    from datetime import UTC, datetime

    from application.store import EVENTS_CHANNEL, head_position
    from domain.common import Actor, Role, Stamp

    app = Liudong(env=gap_db.eventsourcing_env(2, master_key=MASTER_KEY))
    stamp = Stamp(Actor("test-supervisor", Role.SUPERVISOR), datetime(2026, 11, 25, tzinfo=UTC))
    try:
        app.define_area(code="xinqi", name_zh="新碶街道", name_en="Xinqi", level="street_office", parent=None,
                        stamp=stamp)
        site = app.register_site(name="Same", area="xinqi", address="1 Road", operator_type="employer",
                                 operator_name="Hengli", capacity=5, facilities=["canteen"], stamp=stamp)
        with psycopg.connect(gap_db.dsn, autocommit=True) as listener:
            head = head_position(listener)
            listener.execute(f"LISTEN {EVENTS_CHANNEL}")
            same = app.change_site_facilities(site.id, ["canteen"], stamp)
            assert (same.version, same.position) == (1, 0)
            app.save(app.repository.get(site.id))  # nothing pending
            assert list(listener.notifies(timeout=0.3, stop_after=1)) == []
            assert head_position(listener) == head
    finally:
        app.close()
