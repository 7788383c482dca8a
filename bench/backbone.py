"""The event backbone: how long a command takes to show in every view, and how fast the
relay publishes compared with kafka-python itself.

Three measurements in one run, on one scratch database and one tansu broker:

* lag in-process: register residents at a steady rate (200 commands/s) through the
  application while the projector process keeps the views; lag is the time from the
  command's commit to the moment the last view reports (NOTIFY) that it has dealt with
  the command's position;
* lag via Kafka: the same, with `liudong relay` and two `liudong worker` processes;
* relay throughput: N stored events published from position 0 by the relay, against a
  bare kafka-python producer (same settings: idempotent, acks=all) sending the same
  keys and values to other topics of the same broker.

    python -m bench.backbone [--rate 200] [--seconds 10] [--relay-events 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from application.database import Database
from application.envelope import to_message
from application.events import EventCatalogue
from application.services import Services
from application.settings import Settings
from application.store import head_position, read_stored
from bench.commands import AREA, CASEWORKER, Workload, scratch_database
from bench.table import record
from domain.common import Stamp
from domain.identity import IdentityNumber
from domain.residents import IdentityNumberClaim, Resident
from projections.engine import NOTIFY_CHANNEL, parse_mark
from projections.registry import PROJECTIONS
from workers.broker import DevBroker
from workers.kafka import admin_client, create_producer, ensure_topics, event_topics
from workers.relay import Relay

log = logging.getLogger("bench.backbone")

LAG_GOAL_KAFKA_MS = 250.0
LAG_GOAL_LOCAL_MS = 100.0
RELAY_GOAL = 0.8
FAST_GROUP = {
    "LIUDONG_KAFKA_SESSION_TIMEOUT_MS": "6000",
    "LIUDONG_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "LIUDONG_KAFKA_MAX_POLL_INTERVAL_MS": "10000",
    "LIUDONG_KAFKA_METADATA_MAX_AGE_MS": "3000",
}


@dataclass(frozen=True)
class Lag:
    label: str
    commands: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class ViewWatcher:
    """Listens for the views' NOTIFY messages and remembers when each view first reached
    each position."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.reports: list[tuple[float, str, int]] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()

    def __enter__(self) -> ViewWatcher:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_: Any) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.ready.set()
            while not self.stopping.is_set():
                for notify in conn.notifies(timeout=0.2):
                    parsed = parse_mark(notify.payload)
                    if parsed is not None:
                        self.reports.append((time.perf_counter(), parsed[1], parsed[2]))

    def reached(self, views: list[str], position: int) -> float | None:
        """When the last of ``views`` reported a mark at or past ``position``."""
        times = []
        for view in views:
            first = next((t for t, v, m in self.reports if v == view and m >= position), None)
            if first is None:
                return None
            times.append(first)
        return max(times)


def drive(services: Services, work: Workload, rate: float, seconds: float) -> list[tuple[float, int]]:
    """Register residents at ``rate`` per second; returns (commit time, position) of each."""
    app = services.app
    done: list[tuple[float, int]] = []
    start = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        due = start + n / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        result = app.register_resident(
            id_number=IdentityNumber.parse(work.ids()), name=work.resident_name(), phone="13800138000",
            hometown="Anhui", employer=None, area=AREA, registered_on=work.registered_on,
            stamp=Stamp(CASEWORKER, datetime.now(UTC)))
        done.append((time.perf_counter(), result.position))
    return done


def measure_lag(label: str, services: Services, work: Workload, rate: float, seconds: float,
                settle: float = 30.0) -> Lag:
    views = list(PROJECTIONS)
    with ViewWatcher(services.database.dsn) as watcher:
        committed = drive(services, work, rate, seconds)
        deadline = time.monotonic() + settle
        last = committed[-1][1]
        while watcher.reached(views, last) is None and time.monotonic() < deadline:
            time.sleep(0.05)
    lags = []
    for commit_time, position in committed:
        reached = watcher.reached(views, position)
        lags.append(((reached if reached is not None else float("inf")) - commit_time) * 1000)
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    result = Lag(label, len(lags), statistics.median(lags), p99, lags[-1])
    log.info("%s: p50 %.1f ms p99 %.1f ms", label, result.p50_ms, result.p99_ms)
    return result


def warm_up(services: Services, work: Workload, timeout: float = 120) -> None:
    """A few commands, until every view answers; then everything is running."""
    deadline = time.monotonic() + timeout
    for _ in range(10):
        drive(services, work, 50, 0.1)
    head = services.head()
    for name in services.projections:
        if not services.wait_for(name, head, max(deadline - time.monotonic(), 0.1)):
            raise RuntimeError(f"view {name} did not catch up during the warm-up")


# -- the processes of the distributed mode ------------------------------------------------
@contextlib.contextmanager
def distributed(database: Database, bootstrap: str, prefix: str, workers: int,
                settings: Settings) -> Iterator[list[Any]]:
    # The relay and the workers open the personal data with the installation's master key.
    key_file = settings.pii_master_key_file or settings.data_dir / "pii-master.key"
    env = {**os.environ, **FAST_GROUP, "LIUDONG_DATABASE_URL": database.dsn,
           "LIUDONG_PII_MASTER_KEY_FILE": str(key_file),
           "LIUDONG_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LIUDONG_KAFKA_TOPIC_PREFIX": prefix,
           "LIUDONG_KAFKA_CONSUMER_GROUP": f"{prefix}-views", "LIUDONG_KAFKA_PARTITIONS": "6",
           "LIUDONG_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "application.cli"]
    processes = [subprocess.Popen([*command, "relay"], env=env)]
    processes += [subprocess.Popen([*command, "worker"], env=env) for _ in range(workers)]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


# -- relay throughput ---------------------------------------------------------------------
def store_events(database: Database, work: Workload, events: int, master_key: bytes) -> None:
    """Registrations (a resident and a claim each), saved many per transaction."""
    from application.office import Liudong

    app = Liudong(env=database.eventsourcing_env(2, master_key=master_key))
    try:
        written = 0
        while written < events:
            batch: list[Any] = []
            for _ in range(250):
                number = work.ids()
                stamp = Stamp(CASEWORKER, datetime.now(UTC))
                resident = Resident.register(id_number=IdentityNumber.parse(number), name=work.resident_name(),
                                             phone="13800138000", hometown="Anhui", employer=None, area=AREA,
                                             registered_on=work.registered_on, stamp=stamp)
                batch += [resident, IdentityNumberClaim.claim(app.vault.claim_id(number), resident_id=resident.id,
                                                              stamp=stamp)]
            written += len(app.save(*batch))
    finally:
        app.close()


def measure_relay(database: Database, bootstrap: str, events: int) -> tuple[float, float]:
    """Events per second of the relay and of a bare producer, same payloads, same broker."""
    catalogue = EventCatalogue.of_domain()
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        head = head_position(conn)
        rows = read_stored(conn, head - events, events)
    # The bare producer: the very messages the relay sends, prepared beforehand.
    bare_settings = Settings(kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=f"bare{uuid.uuid4().hex[:6]}")
    previous = 0
    messages = []
    for row in rows:
        message = to_message(row, previous, catalogue, source=bare_settings.event_source,
                             topic_prefix=bare_settings.kafka_topic_prefix)
        messages.append(message)
        previous = row.position
    admin = admin_client(bare_settings)
    ensure_topics(admin, bare_settings, event_topics(bare_settings))
    admin.close()
    start = time.perf_counter()  # both timings include making the producer
    producer = create_producer(bare_settings)
    futures = [producer.send(m.topic, key=m.key, value=m.value, headers=m.headers) for m in messages]
    producer.flush()
    for future in futures:
        future.get(timeout=0)
    bare = len(messages) / (time.perf_counter() - start)
    producer.close()

    relay_settings = Settings(kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=f"relay{uuid.uuid4().hex[:6]}")
    admin = admin_client(relay_settings)
    ensure_topics(admin, relay_settings, event_topics(relay_settings))
    admin.close()
    relay = Relay(relay_settings, database.dsn, from_position=head - events)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    relay.holding.wait(30)
    start = time.perf_counter()
    # The relay counts what the broker acknowledged. Watching that costs it nothing; asking
    # the database every few milliseconds from this interpreter took the relay's lock away
    # from it hundreds of times a second (a fifth of its samples went to the asking).
    deadline = time.monotonic() + 300
    while relay.published < len(rows) and time.monotonic() < deadline:
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    with psycopg.connect(database.dsn, autocommit=True) as conn:  # saved just after the count
        for _ in range(500):
            row = conn.execute("SELECT position FROM relay_state WHERE name = %s", (relay.name,)).fetchone()
            if row is not None and int(row[0]) >= head:
                break
            time.sleep(0.01)
        else:
            raise RuntimeError(f"the relay did not publish up to position {head} (saved: {row})")
    relay.stopping.set()
    thread.join(10)
    return relay.published / seconds, bare


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.backbone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="commands per second while measuring lag")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each lag measurement runs")
    parser.add_argument("--relay-events", type=int, default=20_000, help="events the relay publishes")
    parser.add_argument("--workers", type=int, default=2, help="projection workers in the Kafka measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    work = Workload.create(None)
    broker = DevBroker.start()
    try:
        with scratch_database() as (settings, database):
            services = Services.open(settings.model_copy(update={"sweep_interval_seconds": 0}), database=database,
                                     run_projections=True)
            try:
                warm_up(services, work)
                local = measure_lag("in-process projector", services, work, args.rate, args.seconds)
            finally:
                services.close()
            prefix = f"bench{uuid.uuid4().hex[:6]}"
            kafka_settings = settings.model_copy(update={
                "kafka_bootstrap_servers": broker.bootstrap, "kafka_topic_prefix": prefix,
                "sweep_interval_seconds": 0})
            services = Services.open(kafka_settings, database=database, run_projections=True)
            try:
                with distributed(database, broker.bootstrap, prefix, args.workers, kafka_settings):
                    warm_up(services, work)
                    kafka = measure_lag(f"Kafka, relay + {args.workers} workers", services, work, args.rate,
                                        args.seconds)
            finally:
                services.close()
            store_events(database, work, args.relay_events, settings.master_key())
            relay_rate, bare_rate = measure_relay(database, broker.bootstrap, args.relay_events)
    finally:
        broker.stop()

    print(f"\ncommit-to-view lag at {args.rate:.0f} commands/s for {args.seconds:.0f} s (every view, via NOTIFY)")
    for lag, goal in ((local, LAG_GOAL_LOCAL_MS), (kafka, LAG_GOAL_KAFKA_MS)):
        verdict = "met" if lag.p99_ms <= goal else "not met"
        if lag is local:
            record(f"in-process lag p99 at {args.rate:.0f} cmd/s", "none", f"p99 {lag.p99_ms:.1f} ms", "",
                   f"<= {goal:.0f} ms", verdict)
        print(f"  {lag.label:<28} p50 {lag.p50_ms:7.1f} ms  p99 {lag.p99_ms:7.1f} ms  max {lag.max_ms:7.1f} ms"
              f"  ({lag.commands} commands; goal p99 <= {goal:.0f} ms: {verdict})")
    ratio = relay_rate / bare_rate
    print(f"relay throughput, {args.relay_events} events: relay {relay_rate:8.0f} events/s, bare kafka-python "
          f"producer {bare_rate:8.0f} messages/s: {ratio:.2f}x (goal >= {RELAY_GOAL}x: "
          f"{'met' if ratio >= RELAY_GOAL else 'not met'})")


if __name__ == "__main__":
    main()
