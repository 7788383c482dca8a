"""The service as a newcomer runs it: `liudong serve` on the embedded PostgreSQL stops
everything it started when it is stopped, and `liudong up` runs the distributed mode
(database, broker, API, relay, two workers) with one command."""

from __future__ import annotations

import contextlib
import json
import os
import re
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


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:  # not left running after the test (and its database with it)
            children = psutil.Process(process.pid).children(recursive=True)
            process.terminate()  # as Ctrl-C: it stops its embedded PostgreSQL too
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
            for child in children:
                with contextlib.suppress(psutil.Error):
                    child.kill()
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


def readme_blocks() -> str:
    """The README's shell blocks that talk to the API (the worked example and the auditors'
    reads), in order, as one script."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    return "\n".join(b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "$API" in b)


def _code(line: str) -> str:
    return "" if line.lstrip().startswith("#") else line.split(" #")[0]


def expected_statuses(script: str) -> list[tuple[int, int | None]]:
    """Each curl the script runs, in order: (its line, the status its comment names, or None for
    "200 or 201"). A command ends on the first line after which no quote is open and no
    backslash continues it; its comment is on that line."""
    lines = script.split("\n")
    found = []
    for i, line in enumerate(lines):
        for _ in re.finditer(r"(?:^|[\s(])curl\s", _code(line)):
            j = i
            while lines[j].rstrip().endswith("\\") or _quote_open("\n".join(_code(x) for x in lines[i:j + 1])):
                j += 1
            named = re.search(r"\s#\s*(\d{3})\b", lines[j])
            found.append((i + 1, int(named.group(1)) if named else None))
    return found


def _quote_open(text: str) -> bool:
    single = double = False
    for c in re.sub(r"\\.", "", text):
        if c == "'" and not double:
            single = not single
        elif c == '"' and not single:
            double = not double
    return single or double


def test_the_readmes_worked_example_answers_as_it_says(tmp_path: Path) -> None:
    """A newcomer's path, checked (found by going through it by hand): `liudong serve --demo-keys`
    on the embedded PostgreSQL, then the README's curl blocks as written, each answering the status
    its comment names and every other one 200 or 201, with no jq or shell error."""
    data = tmp_path / "var"
    port = free_port()
    process = start(["serve", "--demo-keys"], data, port)
    try:
        wait_http(f"http://127.0.0.1:{port}/readyz", process, tmp_path / "var.log")
        script = readme_blocks()
        assert "API=http://127.0.0.1:8000" in script
        script = script.replace("API=http://127.0.0.1:8000", f"API=http://127.0.0.1:{port}")
        statuses = tmp_path / "statuses"
        # Every curl writes its status to a file of its own, in the order they ran.
        wrapper = f'curl() {{ command curl --write-out "%{{stderr}}%{{http_code}}\\n" "$@" 2>>{statuses}; }}\n'
        ran = subprocess.run(["bash", "-c", wrapper + script], cwd=tmp_path, capture_output=True, timeout=300,
                             env={**os.environ, "LC_ALL": "C.UTF-8"})
        assert ran.returncode == 0 and not ran.stderr, ran.stderr.decode()
        expected = expected_statuses(script)
        got = [int(s) for s in statuses.read_text().split()]
        assert len(got) == len(expected), (got, expected)
        wrong = [(line, want, status) for (line, want), status in zip(expected, got, strict=True)
                 if (status != want if want else status not in (200, 201))]
        assert not wrong, f"(line in the blocks, status named, status answered): {wrong}\n{ran.stdout.decode()[-3000:]}"
        assert len(expected) > 60
    finally:
        stop_and_check_gone(process, signal.SIGTERM, [], data / "pgdata")


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


def test_a_second_serve_on_a_taken_port_stops_before_touching_anything(tmp_path: Path, monkeypatch: Any) -> None:
    """Found by a review: a second `make run` issued new demo keys (revoking those the running one
    had printed) and only then failed to listen on its port."""
    import socket

    from typer.testing import CliRunner

    from application.cli import cli

    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        monkeypatch.setenv("LIUDONG_PORT", str(port))
        monkeypatch.setenv("LIUDONG_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("LIUDONG_DATABASE_URL", raising=False)
        result = CliRunner().invoke(cli, ["serve", "--demo-keys"])
    assert result.exit_code == 2 and "cannot serve on 127.0.0.1" in result.output, result.output
    assert not (tmp_path / "demo-keys.env").exists() and not (tmp_path / "pgdata").exists()
