"""Where the database is: the server named by LIUDONG_DATABASE_URL, or an embedded
PostgreSQL kept in LIUDONG_DATA_DIR. Also the one place that maps a DSN onto
eventsourcing's own POSTGRES_* settings."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import sql

from application.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DBNAME = "liudong"


class DatabaseUnavailable(RuntimeError):
    """No database could be found or started; the message says what to install."""


@dataclass
class Database:
    dsn: str
    embedded: bool
    location: str
    _handle: Any = field(default=None, repr=False)

    def eventsourcing_env(self, pool_size: int = 10, *, master_key: bytes) -> dict[str, str]:
        return eventsourcing_env(self.dsn, pool_size=pool_size, master_key=master_key)

    def close(self) -> None:
        """Let go of the embedded server: the last process that used it stops it."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle._cleanup()


def eventsourcing_env(dsn: str, pool_size: int = 10, *, master_key: bytes) -> dict[str, str]:
    """eventsourcing's settings for a PostgreSQL DSN (the only place this mapping lives),
    and the master key for personal data the application's mapper seals fields with."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(parts.port or query.get("port", ["5432"])[0]),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_LOCK_TIMEOUT": "10",
        # Cached aggregates are fast-forwarded from the store on every load, so a
        # cache hit costs one small SELECT and stays correct across processes.
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "APPLICATION_RECORDER_TOPIC": "application.store:LiudongRecorder",
        "LIUDONG_PII_MASTER_KEY": base64.b64encode(master_key).decode(),
    }


def open_database(settings: Settings) -> Database:
    if settings.database_url is not None:
        dsn = settings.database_url.get_secret_value()
        return Database(dsn=dsn, embedded=False, location=_describe(dsn))
    return start_embedded(settings.data_dir)


def _describe(dsn: str) -> str:
    from application.settings import mask_dsn

    return mask_dsn(dsn)


def start_embedded(data_dir: Path) -> Database:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir/pgdata``; data survives restarts."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    try:
        import pgserver
    except ImportError:
        return _start_with_pg_ctl(pgdata)
    _forget_dead_handles(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    admin_dsn = server.get_uri()
    _ensure_database(admin_dsn, EMBEDDED_DBNAME)
    dsn = server.get_uri(EMBEDDED_DBNAME)
    return Database(dsn=dsn, embedded=True, location=str(pgdata), _handle=server)


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops its server when the last process holding it exits, counting the
    processes in ``.handle_pids.json``; a process killed without cleaning up leaves its
    pid there for ever and the server is never stopped again. Forget those first."""
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _running(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ensure_database(admin_dsn: str, dbname: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def _start_with_pg_ctl(pgdata: Path) -> Database:
    """Fallback where pgserver has no wheel (Python other than 3.11/3.12)."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        raise DatabaseUnavailable(
            "no embedded PostgreSQL available: install the 'pgserver' package (Python 3.11 or 3.12), "
            "or put PostgreSQL's initdb and pg_ctl on PATH (e.g. apt-get install postgresql), "
            "or set LIUDONG_DATABASE_URL=postgresql://user:password@host:port/dbname"
        )
    if not (pgdata / "PG_VERSION").exists():
        subprocess.run([initdb, "-D", str(pgdata), "-U", "postgres", "--auth=trust"], check=True)
    socket_dir = pgdata
    status = subprocess.run([pg_ctl, "-D", str(pgdata), "status"], capture_output=True)
    if status.returncode != 0:
        subprocess.run(
            [pg_ctl, "-D", str(pgdata), "-w", "-l", str(pgdata / "log"), "-o", f"-h '' -k {socket_dir}", "start"],
            check=True,
        )
    admin_dsn = f"postgresql://postgres@/postgres?host={socket_dir}"
    _ensure_database(admin_dsn, EMBEDDED_DBNAME)
    dsn = f"postgresql://postgres@/{EMBEDDED_DBNAME}?host={socket_dir}"
    return Database(dsn=dsn, embedded=True, location=str(pgdata))
