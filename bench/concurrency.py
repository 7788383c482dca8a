"""Concurrent writers: what the store's insert path allows with many clients, before and
after the table lock went (docs/adr/0005), in one run on one scratch database.

* raw: a single-row INSERT + COMMIT per transaction into a bare table shaped like the events
  table, from T threads with a connection each (the baseline);
* insert function, locked: two events per transaction through a copy of the insert function
  with eventsourcing's ``LOCK TABLE ... IN EXCLUSIVE MODE`` (how the store wrote until now);
* composite insert function, no lock: the same through eventsourcing's function without the lock;
* column-array insert function (now): the store's own call, one binary array per column;
* the composite one without its NOTIFY (a diagnostic: what the notification costs);
* application: residents registered through ``Liudong`` (two events each: the resident and
  the claim on the identity number) from T threads; commands that reach the store together
  share a transaction (group commit, docs/adr/0006), whose average size is printed.

Each line is run with 1 and with 32 clients.

    python -m bench.concurrency [--n 4000] [--clients 1,32]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import threading
import time
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from uuid import uuid4

import psycopg
from psycopg import sql

from application.services import Services
from bench.commands import IdentityNumbers, scratch_database
from bench.table import record
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber

RAW = "bench_raw_concurrent"
GOAL_32 = 0.6  # 32 clients through the application, against raw INSERT + COMMIT from 32 threads
STATE = os.urandom(300)
LOCKED_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_insert_events_locked(events {type}[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE liudong_events IN EXCLUSIVE MODE;
    NOTIFY liudong_events;
    RETURN QUERY INSERT INTO liudong_events (originator_id, originator_version, topic, state)
        SELECT originator_id, originator_version, topic, state FROM unnest(events) RETURNING notification_id;
END $$"""
# The same without NOTIFY: PostgreSQL serialises the commits of notifying transactions on one
# queue lock, so this line shows what the notification costs.
SILENT_FUNCTION = """
CREATE OR REPLACE FUNCTION bench_insert_events_silent(events {type}[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN QUERY INSERT INTO liudong_events (originator_id, originator_version, topic, state)
        SELECT originator_id, originator_version, topic, state FROM unnest(events) RETURNING notification_id;
END $$"""


def run_threads(clients: int, total: int, make_step: Callable[[], Callable[[], int]]) -> float:
    """Rate (units per second) of ``total`` units shared out over ``clients`` threads."""
    per = max(1, total // clients)
    barrier = threading.Barrier(clients + 1)
    done: list[int] = []

    def worker() -> None:
        step = make_step()
        barrier.wait()
        count = 0
        while count < per:
            count += step()
        done.append(count)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="transactions (or commands) per line")
    parser.add_argument("--clients", default="1,32")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    clients = [int(c) for c in args.clients.split(",")]
    lines: list[str] = []
    with scratch_database() as (settings, database):
        services = Services.open(settings, run_projections=False, database=database)
        dsn = database.dsn
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL(
                    "CREATE TABLE {} (notification_id bigserial UNIQUE, originator_id uuid, originator_version int,"
                    " topic text, state bytea, PRIMARY KEY (originator_id, originator_version))").format(
                    sql.Identifier(RAW)))
                for ddl in (LOCKED_FUNCTION, SILENT_FUNCTION):
                    conn.execute(ddl.replace("{type}", services.app.recorder.stored_event_type_name))
            recorder = services.app.recorder
            function = sql.SQL("SELECT * FROM {}(%s)").format(sql.Identifier(recorder.pg_function_name_insert_events))
            locked = sql.SQL("SELECT * FROM bench_insert_events_locked(%s)")
            silent = sql.SQL("SELECT * FROM bench_insert_events_silent(%s)")

            def raw() -> Callable[[], int]:
                conn = psycopg.connect(dsn, autocommit=True)
                insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state)"
                                 " VALUES (%s, 1, 'bench', %s)").format(sql.Identifier(RAW))
                return lambda: (conn.execute(insert, (uuid4(), STATE), prepare=True), 1)[1]

            def through(statement: sql.Composable) -> Callable[[], Callable[[], int]]:
                def make() -> Callable[[], int]:
                    conn = psycopg.connect(dsn, autocommit=True)

                    def step() -> int:
                        aggregate = uuid4()
                        rows = [recorder.construct_pg_stored_event(aggregate, v, "bench:Event", STATE)
                                for v in (1, 2)]
                        with conn.transaction():
                            conn.execute(statement, (rows,), prepare=True)
                        return 1
                    return step
                return make

            def columns() -> Callable[[], int]:
                """The store's own call today: one array per column, sent in binary."""
                conn = psycopg.connect(dsn, autocommit=True)

                def step() -> int:
                    aggregate = uuid4()
                    with conn.transaction():
                        conn.execute(recorder._insert_columns, ([aggregate, aggregate], [1, 2],
                                                                 ["bench:Event", "bench:Event"], [STATE, STATE]),
                                     prepare=True)
                    return 1
                return step

            def application() -> Callable[[], int]:
                numbers = IdentityNumbers(random.Random(uuid4().int))  # not the thread id: ids are reused
                stamp = Stamp(Actor("bench", Role.CASEWORKER), datetime(2026, 11, 1, 2, tzinfo=UTC))

                def step() -> int:
                    services.app.register_resident(
                        id_number=IdentityNumber.parse(numbers()), name="Bench", phone="13800138000",
                        hometown="Henan", employer=None, area="xinqi", registered_on=date(2026, 1, 1), stamp=stamp)
                    return 1
                return step

            for count in clients:
                base = run_threads(count, args.n, raw)
                rates = {
                    "raw INSERT + COMMIT": base,
                    "insert function with LOCK TABLE (before)": run_threads(count, args.n, through(locked)),
                    "composite insert function, no lock": run_threads(count, args.n, through(function)),
                    "column-array insert function (now)": run_threads(count, args.n, columns),
                    "composite, without NOTIFY (diagnostic)": run_threads(count, args.n, through(silent)),
                    "application: register a resident": run_threads(count, args.n // 2, application),
                }
                group = services.app.recorder.group_commit
                grouped = f" ({group.commands / max(group.transactions, 1):.1f} commands per transaction so far)" if (
                    group is not None) else " (group commit off)"
                for label, rate in rates.items():
                    lines.append(f"{count:>3} clients  {label:<42} {rate:8,.0f} tx/s  {rate / base:5.2f}x raw"
                                 + (grouped if label.startswith("application") else ""))
                if count == 32:
                    app_rate = rates["application: register a resident"]
                    verdict = "met" if app_rate / base >= GOAL_32 else "not met"
                    record("32 concurrent clients, application layer", f"raw INSERT + COMMIT, 32 threads {base:,.0f}/s",
                           f"{app_rate:,.0f} commands/s", f"{app_rate / base:.2f}x", f">= {GOAL_32}x", verdict)
        finally:
            services.close()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
