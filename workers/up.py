"""``liudong up``: every process of the distributed mode on one machine, for a newcomer
to see it work: the database (embedded unless LIUDONG_DATABASE_URL is set), a broker
(``tansu`` unless LIUDONG_KAFKA_BOOTSTRAP_SERVERS is set), the API, the relay and the
projection workers. Output is prefixed with each process's name; a process that dies
is started again; Ctrl-C stops them all, then the broker and the database."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from application.database import open_database
from application.settings import Settings
from workers.broker import DevBroker

log = logging.getLogger(__name__)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    pause: float = 1.0
    restart_at: float = 0.0
    restarts: int = 0
    pumps: list[threading.Thread] = field(default_factory=list)

    def start(self, out: IO[str], lock: threading.Lock) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        pump = threading.Thread(target=_pump, args=(self.name, self.process, out, lock), daemon=True)
        pump.start()
        self.pumps.append(pump)


def _pump(name: str, process: subprocess.Popen[bytes], out: IO[str], lock: threading.Lock) -> None:
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode("utf-8", "replace").rstrip()
        with lock:
            out.write(f"{name:<9}| {line}\n")
            out.flush()


def run_all(settings: Settings, *, workers: int, demo_keys: bool, log_dir: Path, out: IO[str] = sys.stdout,
            stopping: threading.Event | None = None) -> int:
    stopping = stopping or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
    log_dir.mkdir(parents=True, exist_ok=True)
    database = open_database(settings)
    broker = None
    try:
        bootstrap = settings.kafka_bootstrap_servers
        if not bootstrap:
            broker = DevBroker.start(log_path=log_dir / "broker.log")
            bootstrap = broker.bootstrap
        out.write(f"database: {database.location}\nbroker:   {bootstrap}\n")
        env = {**os.environ, "LIUDONG_DATABASE_URL": database.dsn, "LIUDONG_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "application.cli"]
        children = [Child("api", [*command, "serve", *(["--demo-keys"] if demo_keys else [])], env),
                    Child("relay", [*command, "relay"], env)]
        for n in range(1, workers + 1):
            worker_env = dict(env)
            if settings.metrics_port is not None:
                worker_env["LIUDONG_METRICS_PORT"] = str(settings.metrics_port + n)
            children.append(Child(f"worker-{n}", [*command, "worker"], worker_env))
        lock = threading.Lock()
        for child in children:
            child.start(out, lock)
        _supervise(children, stopping, out, lock)
        _stop(children)
        return 0
    finally:
        if broker is not None:
            broker.stop()
        database.close()


def _supervise(children: list[Child], stopping: threading.Event, out: IO[str], lock: threading.Lock) -> None:
    while not stopping.wait(0.5):
        now = time.monotonic()
        for child in children:
            process = child.process
            if process is None or process.poll() is None:
                continue
            if child.restart_at == 0.0:
                child.restart_at = now + child.pause
                with lock:
                    out.write(f"{child.name:<9}| exited with {process.returncode}; "
                              f"starting it again in {child.pause:.0f} s\n")
            elif now >= child.restart_at:
                child.restart_at = 0.0
                child.restarts += 1
                child.pause = min(child.pause * 2, 30.0)
                child.start(out, lock)


def _stop(children: list[Child], timeout: float = 20.0) -> None:
    for child in children:
        if child.process is not None and child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        if child.process is None:
            continue
        try:
            child.process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(5)
        for pump in child.pumps:
            pump.join(timeout=2)
