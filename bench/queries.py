"""List queries at district size: 260,000 residents in the ``residents`` view, 16 concurrent
readers over real HTTP, p50/p99 per route; the goal is p99 <= 20 ms.

The rows are written straight into the view (COPY) in the shape its handlers write, with
masked names, areas, sites and statuses spread as in the seed (a third in housing sites),
because registering 260,000 residents through the API takes most of an hour (see
``bench.commands`` for that path). Requests carry an auditor's key; each route is asked with
random filters and pages, its first page and a following one.

    python -m bench.queries [--residents 260000] [--readers 16] [--processes 1,2]

Each server shape is measured in turn: the service in this process (one interpreter), then
``liudong serve --workers N`` (N interpreters sharing the port) on the same database.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import httpx
import psycopg

from application.areas import seed_areas
from application.generate import SURNAMES
from application.services import Services
from application.settings import Settings
from bench.commands import scratch_database, serve
from bench.table import record
from domain.common import Actor, Role, Stamp
from projections.residents import recount
from projections.sorting import person_key
from workers.broker import free_port

GOAL_P99_MS = 20.0


def load(conn: psycopg.Connection[Any], residents: int, areas: list[str], sites: list[UUID],
         rng: random.Random) -> None:
    buffer = io.StringIO()
    for n in range(residents):
        in_site = rng.random() < 0.31
        status = "in_site" if in_site else rng.choice(["private_housing"] * 9 + ["departed"])
        surname = rng.choice(SURNAMES)
        permit = rng.choice(["\\N", "\\N", "applied", "issued", "issued", "suspended"])
        fields = [
            str(UUID(int=rng.getrandbits(128))), "sealed", surname + "*", "{}", "3302**********" + f"{n % 10000:04d}",
            rng.choice(["M", "F"]), date(1960 + n % 45, 1 + n % 12, 1 + n % 28).isoformat(), "Henan", "\\N", status,
            str(rng.choice(sites)) if in_site else "\\N", rng.choice(areas), "2026-01-01", "2025-06-01",
            permit, "\\N", "2026-12-01" if permit != "\\N" else "\\N", "1", person_key(surname + "*"),
        ]
        buffer.write("\t".join(fields) + "\n")
    buffer.seek(0)
    columns = ("id, name, name_masked, name_tokens, id_number_masked, sex, birth_date, hometown, employer, status,"
               " site_id, area, since, registered_on, permit_status, permit_number, endorsement_due, version,"
               " name_sort")
    with conn.cursor() as cur, cur.copy(f"COPY residents ({columns}) FROM STDIN") as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)
    recount(conn)  # the rows came around the view's handlers, which keep the counts
    conn.execute("ANALYZE residents")
    conn.execute("ANALYZE residents_counts")


def _wrk_figures(out: str) -> tuple[float, float, int]:
    """p50 and p99 (ms) and the request count from wrk's --latency output."""
    def ms(text: str) -> float:
        value = float(text.rstrip("smu"))
        return value * 1000 if text.endswith("s") and not text.endswith(("ms", "us")) else (
            value / 1000 if text.endswith("us") else value)

    found = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            found[parts[0]] = ms(parts[1])
        if "requests in" in line:
            found["n"] = float(parts[0])
    return found["50%"], found["99%"], int(found["n"])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=260_000)
    parser.add_argument("--readers", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="per route and reader (without wrk)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=10, help="per route, with wrk")
    parser.add_argument("--processes", default="1,2",
                        help="HTTP processes to measure, comma-separated (more than one: `liudong serve --workers N`)")
    parser.add_argument("--python-client", action="store_true", help="load from threads in this process, not wrk")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    rng = random.Random(args.seed)
    use_wrk = bool(shutil.which("wrk")) and not args.python_client
    counts = [int(n) for n in args.processes.split(",") if n.strip()]
    lines = [f"{args.residents:,} residents, {args.readers} readers, p50/p99 over HTTP (goal p99 <= "
             f"{GOAL_P99_MS:.0f} ms)"]
    worst: dict[str, float] = {}  # each server shape's worst route p99
    with scratch_database() as (settings, database):
        settings = settings.model_copy(update={"rate_limit_per_minute": 0, "chain_events": False})
        services = Services.open(settings, run_projections=True, database=database)
        try:
            areas = [a["code"] for a in seed_areas()][:20]
            stamp = Stamp(Actor("bench-admin", Role.ADMIN), datetime.now(UTC))
            _, key = services.app.issue_key(user_id="bench-auditor", role=Role.AUDITOR.value, areas=[], scopes=[],
                                            stamp=stamp)
            sites = [UUID(int=rng.getrandbits(128)) for _ in range(70)]
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                load(conn, args.residents, areas, sites, rng)
            routes: dict[str, Any] = {
                "/residents?area=": lambda r: {"area": r.choice(areas)},
                "/residents?area=&status=": lambda r: {"area": r.choice(areas), "status": "in_site"},
                "/residents?site_id=": lambda r: {"site_id": str(r.choice(sites))},
                "/residents (all)": lambda r: {},
                "/permits?status=": lambda r: {"status": r.choice(["issued", "applied"])},
            }
            for processes in counts:
                server = serve(settings, services) if processes == 1 else serve_processes(
                    settings, database.dsn, processes)
                shape = f"{processes} HTTP process{'es' if processes > 1 else ''}"
                with server as url:
                    figures = measure_wrk(url, key, routes, rng, args) if use_wrk else measure_threads(
                        url, key, routes, args)
                lines.append(f" {shape}" + (f" (`liudong serve --workers {processes}`)" if processes > 1 else ""))
                for label, p50, p99, note in figures:
                    lines.append(f"  {label:<28} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
                                 f"{'met' if p99 <= GOAL_P99_MS else 'not met'}  ({note})")
                worst[shape] = max(p99 for _, _, p99, _ in figures)
        finally:
            services.close()
    for shape, p99 in worst.items():
        record(f"list queries p99, {args.residents:,} residents, {args.readers} readers, {shape}", "none",
               f"worst route p99 {p99:.1f} ms", "", f"<= {GOAL_P99_MS:.0f} ms",
               "met" if p99 <= GOAL_P99_MS else "not met")
    print("\n".join(lines))


Figures = list[tuple[str, float, float, str]]  # per route: label, p50 ms, p99 ms, what was sent


def measure_wrk(url: str, key: str, routes: dict[str, Any], rng: random.Random, args: Any) -> Figures:
    """Each route from wrk, in a process of its own: the load generator does not take the
    server's interpreter lock. A few seconds of the first route warm the server up first (its
    pool's connections, first-call caches), unmeasured."""
    figures = []
    for n, (label, params_of) in enumerate(routes.items()):
        path = label.split("?")[0].split(" ")[0]
        query = "&".join(f"{k}={v}" for k, v in (params_of(rng) | {"limit": 50}).items())

        def wrk(seconds: int, target: str = f"{url}{path}?{query}") -> str:
            return subprocess.run(["wrk", "-t2", f"-c{args.readers}", f"-d{seconds}s", "--latency", "-H",
                                   f"Authorization: Bearer {key}", target],
                                  capture_output=True, text=True, check=True).stdout

        if n == 0:
            wrk(3)
        p50, p99, total = _wrk_figures(wrk(args.seconds))
        figures.append((label, p50, p99, f"{total} requests, wrk"))
    return figures


def measure_threads(url: str, key: str, routes: dict[str, Any], args: Any) -> Figures:
    """Each route from reader threads in this process (when wrk is missing)."""
    figures = []
    for label, params_of in routes.items():
        path = label.split("?")[0].split(" ")[0]
        times: list[float] = []
        lock = threading.Lock()
        errors: list[str] = []

        def reader(seed: int, path: str = path, params_of: Any = params_of, times: list[float] = times,
                   lock: threading.Lock = lock, errors: list[str] = errors) -> None:
            r = random.Random(seed)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
                cursor = None
                for _ in range(args.requests):
                    params = params_of(r) | {"limit": 50}
                    if cursor and r.random() < 0.5:
                        params["cursor"] = cursor
                    started = time.perf_counter()
                    response = client.get(path, params=params)
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 200:
                        errors.append(response.text[:200])
                        return
                    cursor = response.json().get("next")
                    with lock:
                        times.append(elapsed)

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(args.readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise SystemExit(f"{label}: {errors[0]}")
        figures.append((label, statistics.median(times), percentile(times, 99), f"{len(times)} requests"))
    return figures


@contextlib.contextmanager
def serve_processes(settings: Settings, dsn: str, processes: int) -> Iterator[str]:
    """``liudong serve --workers N`` on the bench's database, as an installation runs it on a
    machine with cores to spare (the views are kept by the bench's own projector)."""
    port = free_port()
    key_file = settings.pii_master_key_file or settings.data_dir / "pii-master.key"
    env = {**os.environ, "LIUDONG_DATABASE_URL": dsn, "LIUDONG_PII_MASTER_KEY_FILE": str(key_file),
           "LIUDONG_DATA_DIR": str(settings.data_dir), "LIUDONG_PORT": str(port), "LIUDONG_HOST": "127.0.0.1",
           "LIUDONG_RUN_PROJECTIONS": "false", "LIUDONG_RATE_LIMIT_PER_MINUTE": "0",
           "LIUDONG_CHAIN_EVENTS": "false", "LIUDONG_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "application.cli", "serve", "--workers", str(processes)],
                               env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"`liudong serve --workers {processes}` did not start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
