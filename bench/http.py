"""Registrations over HTTP with 32 concurrent clients: ``POST /residents`` (each request a new
resident with a valid, distinct identity number, made by the load script), against a bare
FastAPI endpoint that answers ``{}``, under the same server (uvicorn in one process, on
loopback) and the same load tool (wrk, in a process of its own). The projections run as they
do in the service (a process beside it). Goal: >= 0.5x the bare endpoint.

    python -m bench.http [--clients 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from application.services import Services
from bench.commands import scratch_database, serve_app
from bench.table import record
from domain.common import Actor, Role, Stamp

GOAL = 0.5
BEHIND_GOAL_SECONDS = 1.0
SAMPLE_SECONDS = 0.1

# Each wrk thread makes its own numbers: region digits from the run and the thread, a fixed
# birth date, a sequence; the check character by GB 11643.
SCRIPT = r"""
local thread_no = 0
function setup(thread)
  thread:set("no", thread_no)
  thread_no = thread_no + 1
end
local weights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
local checks = "10X98765432"
local counter = 0
local run = 0
function init(args)
  run = tonumber(args[1]) or 0
  wrk.headers["Content-Type"] = "application/json"  -- with the command line's Authorization
end
function request()
  counter = counter + 1
  local region = 100000 + run * 200000 + no * 100000 + math.floor(counter / 1000)
  local first17 = string.format("%06d19800101%03d", region, counter % 1000)
  local total = 0
  for i = 1, 17 do
    total = total + tonumber(string.sub(first17, i, i)) * weights[i]
  end
  local number = first17 .. string.sub(checks, total % 11 + 1, total % 11 + 1)
  local body = '{"id_number":"' .. number .. '","name":"Bench","phone":"13800138000","hometown":"Henan",' ..
    '"employer":null,"area":"xinqi","registered_on":"2026-03-01"}'
  return wrk.format("POST", nil, nil, body)
end
"""


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.post("/residents")
    async def bare() -> dict[str, Any]:
        return {}

    return app


def wrk(url: str, script: Path, *, clients: int, seconds: int, key: str | None, run: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{clients}", f"-d{seconds}s", "--latency", "-s", str(script)]
    if key:
        command += ["-H", f"Authorization: Bearer {key}"]
    out = subprocess.run([*command, f"{url}/residents", "--", str(run)], capture_output=True, text=True,
                         check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rate": rate, "failed": float(failed.group(1)) if failed else 0.0}


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    if not shutil.which("wrk"):
        raise SystemExit("bench.http needs wrk (apt-get install wrk)")
    lines: list[str] = []
    with scratch_database() as (settings, database), tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "register.lua"
        script.write_text(SCRIPT, encoding="utf-8")
        settings = settings.model_copy(update={"rate_limit_per_minute": 0})
        with serve_app(bare_app()) as url:
            wrk(url, script, clients=args.clients, seconds=2, key=None, run=0)  # warm-up
            bare = wrk(url, script, clients=args.clients, seconds=args.seconds, key=None, run=0)
        services = Services.open(settings, run_projections=True, database=database)
        try:
            stamp = Stamp(Actor("bench-admin", Role.ADMIN), datetime.now(UTC))
            _, key = services.app.issue_key(user_id="bench-caseworker", role=Role.CASEWORKER.value, areas=[],
                                            scopes=[], stamp=stamp)
            with serve_app(None, settings, services) as url:
                wrk(url, script, clients=args.clients, seconds=2, key=key, run=1)  # warm-up
                with Behind(services) as behind:
                    app = wrk(url, script, clients=args.clients, seconds=args.seconds, key=key, run=2)
        finally:
            services.close()
    if app["failed"] or bare["failed"]:
        raise SystemExit(f"requests failed: {app['failed']:.0f} registrations, {bare['failed']:.0f} bare")
    ratio = app["rate"] / bare["rate"]
    verdict = "met" if ratio >= GOAL else "not met"
    lines.append(f"{args.clients} clients over HTTP (wrk, {args.seconds} s): POST /residents {app['rate']:,.0f}/s,"
                 f" bare FastAPI endpoint {bare['rate']:,.0f}/s: {ratio:.2f}x (goal >= {GOAL}x: {verdict})")
    record("32 concurrent clients over HTTP, registering residents", f"bare FastAPI endpoint {bare['rate']:,.0f}/s",
           f"{app['rate']:,.0f}/s", f"{ratio:.2f}x", f">= {GOAL}x", verdict)
    worst = max(behind.worst_seconds, SAMPLE_SECONDS)  # within one sampling interval reads as the interval
    verdict = "met" if worst <= BEHIND_GOAL_SECONDS else "not met"
    lines.append(f"views behind the writes meanwhile (every view, sampled every {SAMPLE_SECONDS * 1000:.0f} ms):"
                 f" at most {worst:.2f} s of writes (goal <= {BEHIND_GOAL_SECONDS:.0f} s: {verdict})")
    record("views behind the writes at the highest sustained write rate", "none",
           f"{worst:.2f} s behind at {app['rate']:,.0f} registrations/s", "", f"<= {BEHIND_GOAL_SECONDS:.0f} s",
           verdict)
    print("\n".join(lines))
    return lines


class Behind:
    """Samples, while the load runs, how far the slowest view is behind the writes, in time:
    the age of the oldest write it has not applied (when the head first passed its mark)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.worst_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="bench-behind", daemon=True)

    def __enter__(self) -> Behind:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _sample(self) -> None:
        heads: list[tuple[float, int]] = []  # (when seen, head position), increasing
        while not self._stop.wait(SAMPLE_SECONDS):
            now = time.monotonic()
            heads.append((now, self.services.head()))
            slowest = min(self.services.positions().values())
            # The first moment the head was seen past the slowest view's mark: the oldest
            # write it has not applied was committed no later than then.
            passed = next((seen for seen, head in heads if head > slowest), None)
            if passed is not None:
                self.worst_seconds = max(self.worst_seconds, now - passed)


if __name__ == "__main__":
    main()
