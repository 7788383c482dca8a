"""``liudong serve``: the HTTP API (registered on the ``liudong`` command as an entry point)."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from application.settings import Settings


def register(cli: typer.Typer) -> None:
    cli.command()(serve)


def serve(
    demo_keys: Annotated[
        bool, typer.Option(help="create a fresh demo key per role and write them to DATA_DIR/demo-keys.env")
    ] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="HTTP worker processes (one interpreter each; "
                                                             "use about one per core)")] = 1,
) -> None:
    """Serve the HTTP API. Without Kafka a child process keeps the views; with
    LIUDONG_KAFKA_BOOTSTRAP_SERVERS set, `liudong relay` and `liudong worker` do. With
    --workers N, N processes answer requests on the same port; this one keeps the database,
    the views and the sweeps."""
    import uvicorn

    from api.app import create_app
    from application.database import DatabaseUnavailable
    from application.privacy import MasterKeyMissing
    from application.services import Services

    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # uvicorn turns SIGINT and SIGTERM into a graceful shutdown, then raises the signal
    # again with the handlers it found: these, so the `finally` below still runs and stops
    # the projector process and the embedded PostgreSQL (the default handler would end the
    # process on the spot and leave them running).
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    taken = _port_taken(settings.host, settings.port)
    if taken:  # before anything is touched: a second `make run` revoked the first one's demo keys (a review)
        typer.echo(f"cannot serve on {settings.host}:{settings.port}: {taken} (another `liudong serve`? "
                   "set LIUDONG_PORT to use another port)", err=True)
        raise typer.Exit(2)
    try:
        services = Services.open(settings)
    except (DatabaseUnavailable, MasterKeyMissing) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    try:
        kind = "embedded" if services.database.embedded else "external"
        typer.echo(f"data: {services.database.location} ({kind} PostgreSQL)")
        if settings.distributed:
            typer.echo(f"views: kept by `liudong worker` processes from Kafka at {settings.kafka_bootstrap_servers}")
        else:
            typer.echo("views: kept by a projector process started by this one")
        if demo_keys:
            _write_demo_keys(services, settings.data_dir)
        typer.echo(f"API: http://{settings.host}:{settings.port}  (OpenAPI page: /docs)"
                   + (f", {workers} worker processes" if workers > 1 else ""))
        if workers > 1:
            # The workers are started afresh (spawn) and read their settings from the
            # environment: this process's database, and no views or sweeps of their own.
            os.environ["LIUDONG_DATABASE_URL"] = services.database.dsn
            os.environ["LIUDONG_RUN_PROJECTIONS"] = "false"
            uvicorn.run("api.app:worker_app", factory=True, workers=workers, host=settings.host,
                        port=settings.port, log_level=settings.log_level.lower(), access_log=False)
        else:
            # uvicorn's own access line holds the query string (a name or an identity number
            # searched for): off; the API's own access line logs the path only (api/middleware).
            uvicorn.run(create_app(settings, services, freeze_heap=True), host=settings.host, port=settings.port,
                        log_level=settings.log_level.lower(), access_log=False)
    finally:
        services.close()
        typer.echo("stopped")


def _port_taken(host: str, port: int) -> str | None:
    """Why the API's address cannot be listened on (taken by another process), or None."""
    import socket

    try:  # the first address the host resolves to, as uvicorn binds it (IPv6 alone for an IPv6 one)
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_PASSIVE)[0]
    except OSError:
        return None  # a host it cannot resolve: uvicorn says so
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind(address)
    except OSError as error:
        return error.strerror or str(error)
    return None


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _write_demo_keys(services: Any, data_dir: Path) -> None:
    """A fresh district-wide key per role for a newcomer (the previous demo keys are revoked)."""
    from datetime import UTC, datetime

    from application import keys
    from domain.common import Actor, Role, Stamp

    stamp = Stamp(Actor("demo-setup", Role.ADMIN), datetime.now(UTC))
    lines = []
    for role in keys.HUMAN_ROLES:
        user_id = f"demo-{role.value.replace('_', '-')}"
        for row in keys.list_keys(services.pool, user_id):
            if row["revoked_at"] is None and row["key_id"] is not None:
                services.app.revoke_key(row["key_id"], reason="a new demo key was made", stamp=stamp)
        _, key = services.app.issue_key(user_id=user_id, role=role.value, areas=[], scopes=[], stamp=stamp)
        lines.append(f"{role.value.upper()}_KEY={key}")
        typer.echo(f"demo key  {role.value:<13} user {user_id:<18} {key}")
    path = data_dir / "demo-keys.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(f"export {line}" for line in lines) + "\n")
    path.chmod(0o600)
    typer.echo(f"demo keys written to {path} (source it to run the README's example)")
    _write_demo_accounts(services, data_dir)


def _write_demo_accounts(services: Any, data_dir: Path) -> None:
    """A web account per role with a fresh password, for signing in at /login (and a second
    supervisor, for the four-eyes rule)."""
    import secrets

    from application.users import WEB_ROLES

    lines = []
    existing = {u["user_id"] for u in services.users.list()}
    for role, user_id in [(r.value, f"demo-{r.value}") for r in WEB_ROLES] + [("supervisor", "demo-supervisor2")]:
        password = secrets.token_urlsafe(12)
        if user_id in existing:
            services.users.set_password(user_id, password)
        else:
            services.users.create(user_id=user_id, role=role, areas=[], password=password, created_by="demo-setup")
        lines.append(f"{user_id} {password}")
        typer.echo(f"demo sign-in {role:<11} user {user_id:<17} password {password}")
    path = data_dir / "demo-accounts.txt"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    typer.echo(f"demo accounts written to {path}; sign in at http://{services.settings.host}:"
               f"{services.settings.port}/login")
