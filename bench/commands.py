"""Command throughput, sequential, one client: how close the write path comes to the
database's own limit.

Three measurements in one run, on one scratch database:

* raw: one INSERT of a row shaped like a stored event, committed, per command, on
  an autocommit psycopg connection: the baseline the database itself allows;
* application: register a resident, then move them into a housing site, through
  the ``Liudong`` application (each register and each move counts as one command),
  with the projections off and, as a separate line, on;
* http: the same sequence over real HTTP to uvicorn on loopback, one keep-alive client.

The database is opened the way the service opens it: the server named by
``LIUDONG_DATABASE_URL`` (a scratch database ``liudong_bench_<pid>`` is created
there and dropped afterwards), else an embedded PostgreSQL in a temporary
directory (``./var`` is never touched).

    python -m bench.commands [--n 1000] [--http-n 500] [--warmup 50]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import httpx
import psycopg
import uvicorn
from psycopg import sql
from pydantic import SecretStr

from api.app import create_app
from application.database import Database, open_database
from application.services import Services
from application.settings import Settings
from bench.table import record
from domain.common import OFFICE_TZ, Actor, Role, Stamp
from domain.identity import IdentityNumber, check_character

log = logging.getLogger("bench.commands")

GOAL = 0.5  # the application layer should reach this fraction of the raw baseline (issue 9)
SITES = 5  # residents are moved into these in turn
SITE_CAPACITY = 100_000
AREA = "xinqi"
RAW_TABLE = "bench_raw_events"
RAW_TOPIC = "domain.residents:Resident.Registered"
RAW_STATE_BYTES = 300
CATCH_UP_TIMEOUT = 120.0

CASEWORKER = Actor("bench-caseworker", Role.CASEWORKER)
SUPERVISOR = Actor("bench-supervisor", Role.SUPERVISOR)


# -- the scratch database -----------------------------------------------------------------
@contextlib.contextmanager
def scratch_database() -> Iterator[tuple[Settings, Database]]:
    """Settings and a database nobody else uses, removed on exit."""
    settings = Settings()
    if settings.database_url is None:
        with tempfile.TemporaryDirectory(prefix="liudong-bench-") as tmp:
            settings = Settings(data_dir=Path(tmp))
            database = open_database(settings)
            try:
                yield settings, database
            finally:
                _stop_embedded(database)
        return

    server_dsn = settings.database_url.get_secret_value()
    name = f"liudong_bench_{os.getpid()}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        settings = settings.model_copy(update={"database_url": SecretStr(_with_dbname(server_dsn, name))})
        yield settings, open_database(settings)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _with_dbname(dsn: str, dbname: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{dbname}"))


def _stop_embedded(database: Database) -> None:
    if database._handle is not None:  # pgserver
        database._handle.cleanup()
        return
    pg_ctl = shutil.which("pg_ctl")  # the pg_ctl fallback of application.database
    if pg_ctl:
        subprocess.run([pg_ctl, "-D", database.location, "-m", "fast", "-w", "stop"], check=False, capture_output=True)


# -- measuring -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    label: str
    commands: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else float("inf")


def timed(label: str, step: Callable[[], int], commands: int, warmup: int) -> Measurement:
    """Run ``step`` (which returns how many commands it issued) until ``warmup``
    commands, uncounted, then until ``commands``, timed."""
    done = 0
    while done < warmup:
        done += step()
    done = 0
    start = time.perf_counter()
    while done < commands:
        done += step()
    measurement = Measurement(label, done, time.perf_counter() - start)
    log.info("%s: %d commands in %.2f s", label, measurement.commands, measurement.seconds)
    return measurement


# -- the workload --------------------------------------------------------------------------
class IdentityNumbers:
    """Valid, distinct identity numbers: area code, a birth date 1960-2005, sequence, check."""

    FIRST_BIRTH = date(1960, 1, 1)
    BIRTH_DAYS = (date(2005, 12, 31) - FIRST_BIRTH).days + 1

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.issued: set[str] = set()

    def __call__(self) -> str:
        while True:
            birth = self.FIRST_BIRTH + timedelta(days=self.rng.randrange(self.BIRTH_DAYS))
            first17 = f"{self.rng.randint(110000, 659999)}{birth:%Y%m%d}{self.rng.randint(0, 999):03d}"
            value = first17 + check_character(first17)
            if value not in self.issued:
                self.issued.add(value)
                return value


@dataclass
class Workload:
    ids: IdentityNumbers
    registered_on: date
    moved_on: date
    counter: itertools.count[int]

    @classmethod
    def create(cls, seed: int | None) -> Workload:
        today = datetime.now(OFFICE_TZ).date()
        return cls(
            ids=IdentityNumbers(random.Random(seed)),
            registered_on=today - timedelta(days=30),
            moved_on=today - timedelta(days=1),
            counter=itertools.count(1),
        )

    def resident_name(self) -> str:
        return f"Bench Resident {next(self.counter)}"

    def site_fields(self, index: int) -> dict[str, Any]:
        return {
            "name": f"Bench Site {index} {uuid4().hex[:6]}",
            "area": AREA,
            "address": f"{index} Ginkgo Road",
            "operator": {"type": "village_cooperative", "name": "Ginkgo Village Cooperative"},
            "capacity": SITE_CAPACITY,
            "facilities": ["kindergarten", "school", "canteen"],
        }

    def resident_body(self) -> dict[str, Any]:
        return {
            "id_number": self.ids(),
            "name": self.resident_name(),
            "phone": "13800138000",
            "hometown": "Anhui",
            "employer": "Hengli Textiles",
            "area": AREA,
            "registered_on": self.registered_on.isoformat(),
        }


def now() -> datetime:
    return datetime.now(UTC)


# -- a: raw INSERT and commit --------------------------------------------------------------
def measure_raw(dsn: str, commands: int, warmup: int) -> Measurement:
    """One committed single-row INSERT per command into a table shaped like eventsourcing's
    stored events table (bigserial position, uuid + version key, topic, bytea state)."""
    table = sql.Identifier(RAW_TABLE)
    state = os.urandom(RAW_STATE_BYTES)
    insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)").format(
        table
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} ("
                " notification_id bigserial NOT NULL UNIQUE,"
                " originator_id uuid NOT NULL,"
                " originator_version integer NOT NULL,"
                " topic text NOT NULL,"
                " state bytea NOT NULL,"
                " PRIMARY KEY (originator_id, originator_version))"
            ).format(table)
        )
        try:

            def step() -> int:
                conn.execute(insert, (uuid4(), 1, RAW_TOPIC, state), prepare=True)
                return 1

            return timed("raw INSERT + commit", step, commands, warmup)
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))


# -- b: the application layer --------------------------------------------------------------
def measure_application(label: str, services: Services, work: Workload, commands: int, warmup: int) -> Measurement:
    app = services.app
    sites: list[UUID] = []
    for index in range(SITES):
        fields = work.site_fields(index)
        operator = fields.pop("operator")
        result = app.register_site(
            **fields,
            operator_type=operator["type"],
            operator_name=operator["name"],
            stamp=Stamp(SUPERVISOR, now()),
        )
        sites.append(result.id)
    rotation = itertools.cycle(sites)

    def step() -> int:
        registered = app.register_resident(
            id_number=IdentityNumber.parse(work.ids()),
            name=work.resident_name(),
            phone="13800138000",
            hometown="Anhui",
            employer="Hengli Textiles",
            area=AREA,
            registered_on=work.registered_on,
            stamp=Stamp(CASEWORKER, now()),
        )
        app.move_resident_into_site(registered.id, next(rotation), work.moved_on, Stamp(CASEWORKER, now()))
        return 2

    return timed(label, step, commands, warmup)


def wait_for_projections(services: Services) -> None:
    """Let the projections catch up with what earlier measurements stored, so they
    only keep pace with new commands while the measurement runs."""
    head = services.head()
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    for name in services.projections:
        if not services.wait_for(name, head, max(0.0, deadline - time.monotonic())):
            log.warning("projection %s did not catch up with position %d; measuring anyway", name, head)


# -- c: HTTP -------------------------------------------------------------------------------
@contextlib.contextmanager
def serve(settings: Settings, services: Services) -> Iterator[str]:
    """The service's app under uvicorn on a free loopback port; yields the base URL."""
    with serve_app(None, settings, services) as url:
        yield url


@contextlib.contextmanager
def serve_app(app: Any, settings: Settings | None = None, services: Services | None = None) -> Iterator[str]:
    """uvicorn on a free loopback port in a background thread, serving ``app`` (or, without
    one, the service's app); yields the base URL."""
    if app is None:
        assert settings is not None and services is not None
        app = create_app(settings, services, freeze_heap=True)  # as `liudong serve` does
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only when it does,
    # and without it every keep-alive response waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="bench-http", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: expected {status}, "
            f"got {response.status_code}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def measure_http(settings: Settings, services: Services, work: Workload, commands: int, warmup: int) -> Measurement:
    def bearer(actor: Actor) -> dict[str, str]:
        _, key = services.app.issue_key(user_id=actor.user_id, role=actor.role.value, areas=[AREA], scopes=[],
                                        stamp=Stamp(actor, now()))
        return {"Authorization": f"Bearer {key}"}

    as_supervisor, as_caseworker = bearer(SUPERVISOR), bearer(CASEWORKER)
    with serve(settings, services) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        sites = [
            _expect(client.post("/sites", json=work.site_fields(index), headers=as_supervisor), 201)["id"]
            for index in range(SITES)
        ]
        rotation = itertools.cycle(sites)
        moved_on = work.moved_on.isoformat()

        def step() -> int:
            resident = _expect(client.post("/residents", json=work.resident_body(), headers=as_caseworker), 201)
            move = {"site_id": next(rotation), "effective_date": moved_on}
            _expect(client.post(f"/residents/{resident['id']}/moves", json=move, headers=as_caseworker), 200)
            return 2

        return timed("http (projections off)", step, commands, warmup)


# -- the report ----------------------------------------------------------------------------
def report(database: Database, results: list[Measurement], raw: Measurement, application: Measurement) -> None:
    where = "embedded PostgreSQL" if database.embedded else "PostgreSQL"
    print(f"\nsequential commands, one client, on {where} at {database.location}")
    width = max(len(m.label) for m in results)
    for m in results:
        print(
            f"  {m.label:<{width}}  {m.rate:8.0f} cmd/s  {m.rate / raw.rate:5.2f}x raw"
            f"   ({m.commands} commands in {m.seconds:.2f} s, {1000 * m.seconds / m.commands:.2f} ms each)"
        )
    ratio = application.rate / raw.rate
    verdict = "met" if ratio >= GOAL else "not met"
    print(f"goal: application >= {GOAL}x raw  (now {ratio:.2f}x: {verdict})")
    record("sequential commands, application layer", f"raw INSERT + COMMIT, 1 connection {raw.rate:,.0f}/s",
           f"{application.rate:,.0f} commands/s", f"{ratio:.2f}x", f">= {GOAL}x", verdict)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.commands", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="commands per raw and application measurement")
    parser.add_argument("--http-n", type=int, default=None, help="commands for the HTTP measurement (default n/2)")
    parser.add_argument("--warmup", type=int, default=50, help="uncounted commands before each measurement")
    parser.add_argument("--seed", type=int, default=None, help="seed for the random identity numbers")
    parser.add_argument("--skip-projections", action="store_true", help="leave out the projections-on line")
    args = parser.parse_args(argv)
    if args.n < 2 or args.warmup < 0:
        parser.error("--n must be at least 2 and --warmup not negative")
    http_n = args.http_n if args.http_n is not None else max(2, args.n // 2)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver's platformdirs, as in pytest
    work = Workload.create(args.seed)
    results: list[Measurement] = []
    with scratch_database() as (settings, database):
        raw = measure_raw(database.dsn, args.n, args.warmup)
        results.append(raw)

        services = Services.open(settings, run_projections=False, database=database)
        try:
            application = measure_application("application (projections off)", services, work, args.n, args.warmup)
            results.append(application)
            results.append(measure_http(settings, services, work, http_n, args.warmup))
        finally:
            services.close()

        if not args.skip_projections:
            services = Services.open(settings, run_projections=True, database=database)
            try:
                wait_for_projections(services)
                results.append(measure_application("application (projections on)", services, work, args.n, args.warmup))
            finally:
                services.close()

    report(database, results, raw, application)


if __name__ == "__main__":
    main()
