"""The service as a newcomer runs it: `liudong serve` on the embedded PostgreSQL stops
everything it started when it is stopped, and `liudong up` runs the distributed mode
(database, broker, API, relay, two workers) with one command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.factories import resident_body
from workers.broker import free_port


def start(args: list[str], data_dir: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIUDONG_")}
    environment.update({"LIUDONG_DATA_DIR": str(data_dir), "LIUDONG_PORT": str(port), "PYTHONUNBUFFERED": "1",
                        "LIUDONG_SWEEP_INTERVAL_SECONDS": "0", **env})
    log = (data_dir.parent / f"{data_dir.name}.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "application.cli", *args], env=environment, stdout=log,
                            stderr=subprocess.STDOUT, cwd=data_dir.parent)


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def postgres_of(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and any(str(pgdata) in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def descendants(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_and_check_gone(process: subprocess.Popen[bytes], stop: Any, children: list[psutil.Process],
                        pgdata: Path, children_timeout: float = 10) -> None:
    """Stop the service with ``stop``: it exits 0, and its children and its embedded
    PostgreSQL are gone soon after."""
    process.send_signal(stop)
    assert process.wait(60) == 0
    _gone, alive = psutil.wait_procs(children, timeout=children_timeout)
    assert not alive, f"left running: {alive}"
    deadline = time.monotonic() + 15
    while postgres_of(pgdata) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not postgres_of(pgdata), "the embedded PostgreSQL kept running"


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_serve_stops_its_projector_and_its_embedded_postgresql(tmp_path: Path, stop: Any) -> None:
    data = tmp_path / "var"
    port = free_port()
    for run in range(2):  # a second start must find the database as the first left it
        process = start(["serve", "--demo-keys"], data, port)
        wait_http(f"http://127.0.0.1:{port}/readyz", process, tmp_path / "var.log")
        children = descendants(process)
        assert any("multiprocessing" in " ".join(c.cmdline()) for c in children), "no projector process"
        assert postgres_of(data / "pgdata")
        if run == 0:
            keys = dict(line.removeprefix("export ").split("=", 1)
                        for line in (data / "demo-keys.env").read_text().splitlines())
            created = httpx.post(f"http://127.0.0.1:{port}/residents", json=resident_body(),
                                 headers={"Authorization": f"Bearer {keys['CASEWORKER_KEY']}"})
            assert created.status_code == 201
        stop_and_check_gone(process, stop, children, data / "pgdata")
        assert json.loads((data / "pgdata" / ".handle_pids.json").read_text()) == []
    assert "stopped" in (tmp_path / "var.log").read_text()


def test_a_pid_left_behind_by_a_killed_service_no_longer_keeps_postgresql_running(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    process = start(["serve"], data, port)
    wait_http(f"http://127.0.0.1:{port}/readyz", process, tmp_path / "var.log")
    projector = [c for c in descendants(process) if "multiprocessing" in " ".join(c.cmdline())]
    assert projector, "no projector process"
    process.send_signal(signal.SIGKILL)  # no clean-up at all: its pid stays in the handle list
    process.wait(10)
    _gone, orphaned = psutil.wait_procs(projector, timeout=15)
    assert not orphaned, "the projector outlived the service that started it"
    assert postgres_of(data / "pgdata")
    process = start(["serve"], data, port)
    wait_http(f"http://127.0.0.1:{port}/healthz", process, tmp_path / "var.log")
    stop_and_check_gone(process, signal.SIGTERM, [], data / "pgdata")


def test_serve_with_several_workers_answers_from_each_and_stops_them_all(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    process = start(["serve", "--demo-keys", "--workers", "2"], data, port)
    wait_http(f"http://127.0.0.1:{port}/readyz", process, tmp_path / "var.log")
    children = descendants(process)
    spawned = [c for c in children if "multiprocessing" in " ".join(c.cmdline())]
    assert len(spawned) >= 3, "a projector and two HTTP workers"  # (and uvicorn's own helpers)
    keys = dict(line.removeprefix("export ").split("=", 1)
                for line in (data / "demo-keys.env").read_text().splitlines())
    auth = {"Authorization": f"Bearer {keys['CASEWORKER_KEY']}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=10) as client:
        created = [client.post("/residents", json=resident_body()) for _ in range(6)]
        assert [r.status_code for r in created] == [201] * 6
        after = max(r.json()["position"] for r in created)
        listed = client.get("/residents", params={"after": after, "limit": 10})
        assert listed.status_code == 200 and listed.json()["total"] >= 6  # the views, kept by the projector
    assert "2 worker processes" in (tmp_path / "var.log").read_text()
    stop_and_check_gone(process, signal.SIGTERM, children, data / "pgdata", children_timeout=15)


@pytest.mark.kafka
def test_up_runs_the_distributed_mode_with_one_command(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    process = start(["up", "--workers", "2"], data, port, LIUDONG_KAFKA_SESSION_TIMEOUT_MS="2000",
                    LIUDONG_KAFKA_HEARTBEAT_INTERVAL_MS="300", LIUDONG_KAFKA_PARTITIONS="2",
                    LIUDONG_READ_WAIT_TIMEOUT="20")
    log = tmp_path / "var.log"
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process, log)
        deadline = time.monotonic() + 120  # two workers joining a group on a loaded 2-core CI machine
        while "demo-keys.env" not in log.read_text() or "assigned" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        keys = dict(line.removeprefix("export ").split("=", 1)
                    for line in (data / "demo-keys.env").read_text().splitlines())
        auth = {"Authorization": f"Bearer {keys['CASEWORKER_KEY']}"}
        created = httpx.post(f"http://127.0.0.1:{port}/residents", json=resident_body(area="xiaogang"),
                             headers=auth, timeout=30)
        assert created.status_code == 201, created.text
        page = httpx.get(f"http://127.0.0.1:{port}/residents",
                         params={"area": "xiaogang", "after": created.json()["position"]}, headers=auth, timeout=30)
        assert page.headers["X-Read-Consistent"] == "true"
        assert page.json()["total"] == 1
        text = log.read_text()
        for name in ("api", "relay", "worker-1", "worker-2"):
            assert f"{name:<9}|" in text
    finally:
        children = descendants(process)
        process.send_signal(signal.SIGINT)
        code = process.wait(60)
        _gone, alive = psutil.wait_procs(children, timeout=15)
    assert code == 0, log.read_text()[-3000:]
    assert not alive, f"left running: {alive}"
    assert not postgres_of(data / "pgdata")
