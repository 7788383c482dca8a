"""What the Kafka tests share: a database of their own, the relay and workers as real
processes, a load of realistic events, and the checks (every view equals a rebuild from
the store; what is on the topics)."""

from __future__ import annotations

import base64
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql
from psycopg.rows import dict_row

from application.database import Database
from application.office import Liudong
from application.projecting import rebuild
from application.services import ensure_event_store
from application.store import head_position
from domain.common import Actor, Role, Stamp
from domain.disputes import DisputeCase, SlaPolicy
from domain.identity import IdentityNumber
from domain.residents import IdentityNumberClaim, Resident
from domain.sites import HousingSite
from projections.base import SqlProjection
from projections.engine import LOW_WATER_MARK
from projections.registry import PROJECTIONS
from tests.conftest import NOW, TEST_MASTER_KEY
from tests.factories import id_number, view_rows_sql

MASTER_KEY = base64.b64decode(TEST_MASTER_KEY)
# Fast group membership for tests: a killed member is noticed in about two seconds.
FAST_GROUP = {
    "LIUDONG_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "LIUDONG_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
    "LIUDONG_KAFKA_MAX_POLL_INTERVAL_MS": "20000",
    "LIUDONG_KAFKA_METADATA_MAX_AGE_MS": "2000",
}


# -- a database of the test's own -------------------------------------------------------
def _with_dbname(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@contextlib.contextmanager
def own_database(base: Database) -> Iterator[Database]:
    name = f"kafka_{uuid.uuid4().hex[:10]}"
    admin = _with_dbname(base.dsn, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    database = Database(dsn=_with_dbname(base.dsn, name), embedded=False, location=name)
    ensure_event_store(database, MASTER_KEY)
    try:
        yield database
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# -- processes ---------------------------------------------------------------------------
@dataclass
class Cluster:
    """The relay and workers of one test, as `liudong` processes."""

    dsn: str
    bootstrap: str
    logs: Path
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:8]}")
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ, **FAST_GROUP,
            "LIUDONG_DATABASE_URL": self.dsn,
            "LIUDONG_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "LIUDONG_KAFKA_TOPIC_PREFIX": self.prefix,
            "LIUDONG_KAFKA_CONSUMER_GROUP": f"{self.prefix}-views",
            "LIUDONG_KAFKA_PARTITIONS": str(self.partitions),
            "LIUDONG_PROJECTION_RETRY_BACKOFF": "0.05",
            "LIUDONG_PII_MASTER_KEY": TEST_MASTER_KEY,
            "LIUDONG_LOG_LEVEL": "INFO",
            **self.extra_env,
        }

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start ``liudong ARGS`` as process ``name`` (replacing a dead one of that name)."""
        self.started[name] = self.started.get(name, 0) + 1
        log = (self.logs / f"{name}.log").open("ab")
        log.write(f"--- start {self.started[name]} ---\n".encode())
        log.flush()
        process = subprocess.Popen([sys.executable, "-m", "application.cli", *args], env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.processes[name] = process
        return process

    def relay(self, name: str = "relay", *args: str) -> subprocess.Popen[bytes]:
        return self.start(name, "relay", *args)

    def worker(self, name: str = "worker", *args: str) -> subprocess.Popen[bytes]:
        return self.start(name, "worker", *args)

    def kill(self, name: str) -> None:
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def terminate(self, name: str, timeout: float = 30) -> int:
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, text: str, timeout: float = 60, after: int = 0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(name)[after:]:
            process = self.processes[name]
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}"
            assert time.monotonic() < deadline, f"{name} did not log {text!r}:\n{self.log(name)[-3000:]}"
            time.sleep(0.1)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# -- a load of realistic events ------------------------------------------------------------
class EventLoad:
    """Registrations, moves between sites, moves out, departures and disputes, written
    through the domain and the application's save, many aggregates per transaction."""

    def __init__(self, database: Database, seed: int = 1, sites: int = 8) -> None:
        self.app = Liudong(env=database.eventsourcing_env(2, master_key=MASTER_KEY))
        self.rng = random.Random(seed)
        self.stamp = Stamp(Actor("load-caseworker", Role.CASEWORKER), NOW)
        self.residents: list[Resident] = []
        self.sites: list[HousingSite] = []
        self.numbers: set[str] = set()
        self.written = 0
        pending: list[Any] = []
        for n in range(sites):
            site = HousingSite.register(name=f"Site {n}", area=("xinqi", "daqi", "xiaogang")[n % 3],
                                        address=f"{n} Road",
                                        operator_type="village_cooperative", operator_name="Coop",
                                        capacity=1_000_000, facilities=[], stamp=self.stamp)
            self.sites.append(site)
            pending.append(site)
        self._save(pending)

    def _save(self, aggregates: list[Any]) -> int:
        unique = list({id(a): a for a in aggregates}.values())
        recordings = self.app.save(*unique)
        self.written += len(recordings)
        return len(recordings)

    def _resident(self) -> tuple[Resident, IdentityNumberClaim]:
        number = id_number(self.rng)
        while number in self.numbers:
            number = id_number(self.rng)
        self.numbers.add(number)
        resident = Resident.register(
            id_number=IdentityNumber.parse(number), name=f"Resident {len(self.residents)}", phone="13800138000",
            hometown="Anhui", employer=None, area=("xinqi", "daqi", "xiaogang")[self.rng.randint(0, 2)],
            registered_on=date(2025, 1, 1) + timedelta(days=self.rng.randint(0, 30)), stamp=self.stamp)
        claim = IdentityNumberClaim.claim(self.app.vault.claim_id(number), resident_id=resident.id,
                                          stamp=self.stamp)
        self.residents.append(resident)
        return resident, claim

    def write(self, events: int, batch: int = 60) -> int:
        """Write at least ``events`` events; returns how many were written."""
        target = self.written + events
        while self.written < target:
            pending: list[Any] = []
            while len(pending) < batch:
                roll = self.rng.random()
                if roll < 0.45 or len(self.residents) < 10:
                    pending.extend(self._resident())
                    continue
                resident = self.rng.choice(self.residents)
                if resident.status == "departed" or any(r is resident for r in pending):
                    continue
                on = resident.since + timedelta(days=self.rng.randint(0, 3))
                previous = next((s for s in self.sites if s.id == resident.site_id), None)
                if roll < 0.8:
                    site = self.rng.choice(self.sites)
                    if site.id == resident.site_id or any(p is site for p in pending) or (
                            previous is not None and any(p is previous for p in pending)):
                        continue
                    resident.move_into_site(site, on, self.stamp, previous_site=previous)
                    pending.extend([resident, site, *([previous] if previous else [])])
                elif roll < 0.9:
                    if previous is not None and any(p is previous for p in pending):
                        continue
                    resident.move_to_private_housing(area="daqi", effective_date=on, stamp=self.stamp,
                                                     previous_site=previous)
                    pending.extend([resident, *([previous] if previous else [])])
                else:
                    case = DisputeCase.log(category="wages_and_labour", parties=[{"resident_id": resident.id}],
                                           site_id=None, area=resident.area, description="unpaid wages",
                                           priority="normal", occurred_on=on - timedelta(days=1), sla=SlaPolicy(),
                                           stamp=self.stamp)
                    case.add_note(text="called the employer", stamp=self.stamp)
                    pending.append(case)
            self._save(pending)
        return self.written

    def close(self) -> None:
        self.app.close()


# -- checks ------------------------------------------------------------------------------
def marks(dsn: str, projections: dict[str, type[SqlProjection]] | None = None) -> dict[str, int]:
    projections = projections or PROJECTIONS
    result = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, cls in projections.items():
            try:
                row = conn.execute(sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
                    sql.Identifier(cls.tracking_table())), (LOW_WATER_MARK,)).fetchone()
            except psycopg.errors.UndefinedTable:
                row = None
            result[name] = int(row[0]) if row else 0
    return result


def wait_caught_up(dsn: str, timeout: float = 120, projections: dict[str, type[SqlProjection]] | None = None,
                   cluster: Cluster | None = None) -> int:
    """Until every view's low-water mark reaches the store's head; returns the head."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        head = head_position(conn)
    while True:
        behind = {n: m for n, m in marks(dsn, projections).items() if m < head}
        if not behind:
            return head
        if time.monotonic() > deadline:
            logs = "" if cluster is None else "\n".join(
                f"== {n}\n{cluster.log(n)[-2500:]}" for n in cluster.processes)
            raise AssertionError(f"views behind head {head}: {behind}\n{logs}")
        time.sleep(0.2)


def _snapshot(conn: psycopg.Connection[Any], schema: str, projections: dict[str, type[SqlProjection]]) -> dict[
        str, list[str]]:
    result = {}
    for cls in projections.values():
        for table in cls.view_class.tables:
            rows = conn.execute(view_rows_sql(table, schema)).fetchall()
            # stat_movements' serial id depends on the order rows were written, not on the events.
            result[table] = sorted(repr(sorted((k, v) for k, v in r.items() if (table, k) != ("stat_movements", "id")))
                                   for r in rows)
    return result


def _engine_state(conn: psycopg.Connection[Any]) -> dict[str, int]:
    return {table: int(conn.execute(sql.SQL("SELECT count(*) AS n FROM public.{}").format(
        sql.Identifier(table))).fetchone()["n"]) for table in ("projection_versions", "projection_dead_letters")}


def assert_views_equal_rebuild(dsn: str, projections: dict[str, type[SqlProjection]] | None = None) -> int:
    """Rebuild every view from the store into a schema of its own and compare it, row
    for row, with the live view. Returns how many rows were compared."""
    projections = projections or PROJECTIONS
    schema = f"rebuild_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        before = _engine_state(conn)
        try:
            for cls in projections.values():
                rebuild(dsn, cls, schema=schema, master_key=MASTER_KEY)
            live, rebuilt = _snapshot(conn, "public", projections), _snapshot(conn, schema, projections)
            assert _engine_state(conn) == before, "a rebuild beside the live views touched the live views' state"
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    for table in live:
        assert live[table] == rebuilt[table], f"{table}: the live view differs from a rebuild from the store"
    return sum(len(rows) for rows in live.values())


def dead_letters(dsn: str) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute("SELECT * FROM projection_dead_letters ORDER BY id").fetchall()


def read_topics(bootstrap: str, topics: list[str], timeout: float = 30) -> list[Any]:
    """Every message on the topics, read as an outside consumer would (no group)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                             consumer_timeout_ms=1500)
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or [])]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline and idle < 3:
            batch = consumer.poll(timeout_ms=500, max_records=5000)
            if not batch:
                idle += 1
                continue
            idle = 0
            for records in batch.values():
                messages.extend(records)
        return messages
    finally:
        consumer.close()
