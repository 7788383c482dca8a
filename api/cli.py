"""The ``liudong`` command."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from api.settings import Settings

cli = typer.Typer(help="liudong: event-sourced case management for migrant residents", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys", no_args_is_help=True)
projections_cli = typer.Typer(help="read models", no_args_is_help=True)
sla_cli = typer.Typer(help="dispute service levels", no_args_is_help=True)
permits_cli = typer.Typer(help="residence permits", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(projections_cli, name="projections")
cli.add_typer(sla_cli, name="sla")
cli.add_typer(permits_cli, name="permits")


def _services(run_projections: bool = False):  # type: ignore[no-untyped-def]
    from api.database import DatabaseUnavailable
    from api.services import Services

    try:
        return Services.open(Settings(), run_projections=run_projections)
    except DatabaseUnavailable as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


@cli.command()
def serve(
    demo_keys: Annotated[
        bool, typer.Option(help="create a fresh demo key per role and write them to DATA_DIR/demo-keys.env")
    ] = False,
) -> None:
    """Serve the HTTP API (projections run in this process)."""
    import uvicorn

    from api.app import create_app
    from api.database import DatabaseUnavailable
    from api.services import Services

    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        services = Services.open(settings)
    except DatabaseUnavailable as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    try:
        kind = "embedded" if services.database.embedded else "external"
        typer.echo(f"data: {services.database.location} ({kind} PostgreSQL)")
        if demo_keys:
            _write_demo_keys(services, settings.data_dir)
        typer.echo(f"API: http://{settings.host}:{settings.port}  (OpenAPI page: /docs)")
        uvicorn.run(create_app(settings, services), host=settings.host, port=settings.port,
                    log_level=settings.log_level.lower())
    finally:
        services.close()


def _write_demo_keys(services, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from api import auth

    lines = []
    for role in auth.HUMAN_ROLES:
        user_id = f"demo-{role.value.replace('_', '-')}"
        auth.revoke_user_keys(services.pool, user_id)
        key = auth.create_key(services.pool, user_id=user_id, role=role, areas=[])
        lines.append(f"{role.value.upper()}_KEY={key}")
        typer.echo(f"demo key  {role.value:<13} user {user_id:<18} {key}")
    path = data_dir / "demo-keys.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(f"export {line}" for line in lines) + "\n")
    path.chmod(0o600)
    typer.echo(f"demo keys written to {path} (source it to run the README's example)")


@cli.command()
def config() -> None:
    """Print the effective settings (secrets masked)."""
    typer.echo(json.dumps(Settings().masked(), indent=2, default=str))


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="the user id recorded as the actor of this key's commands")],
    role: Annotated[str, typer.Option(help="caseworker, supervisor, finance, auditor, api_consumer or admin")],
    area: Annotated[list[str] | None, typer.Option(help="an area this key is scoped to (repeatable)")] = None,
) -> None:
    """Create an API key and print it once, as the last word of the output."""
    from api import auth
    from domain.common import Role

    try:
        parsed = Role(role)
        if parsed is Role.SYSTEM:
            raise ValueError
    except ValueError:
        typer.echo(f"unknown role {role!r}; one of: {', '.join(r.value for r in auth.HUMAN_ROLES)}", err=True)
        raise typer.Exit(2) from None
    if not name.strip() or len(name) > 100:
        typer.echo("--name must be 1 to 100 characters", err=True)
        raise typer.Exit(2)
    services = _services()
    try:
        key = auth.create_key(services.pool, user_id=name.strip(), role=parsed, areas=list(area or []))
    finally:
        services.close()
    typer.echo(f"created a {parsed.value} key for {name.strip()}; it is shown only now: {key}")


@projections_cli.command("rebuild")
def projections_rebuild(name: Annotated[str, typer.Argument(help="residents or site_occupancy")]) -> None:
    """Drop one read model and rebuild it from the events alone."""
    from projections.registry import PROJECTIONS

    if name not in PROJECTIONS:
        typer.echo(f"unknown projection {name!r}; one of: {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(2)
    services = _services()
    try:
        position = services.rebuild(name)
    finally:
        services.close()
    typer.echo(f"rebuilt {name} up to position {position}")


@projections_cli.command("status")
def projections_status() -> None:
    """Each projection's position and lag behind the event log."""
    services = _services()
    try:
        head = services.head()
        for name, pos in services.positions().items():
            typer.echo(f"{name:<16} position {pos:>10}  lag {max(head - pos, 0)}")
    finally:
        services.close()


@sla_cli.command("sweep")
def sla_sweep() -> None:
    """Record each dispute's new service-level breach once (EscalatedForBreach, by the system actor)."""
    services = _services()
    try:
        count = services.sla_sweep()
    finally:
        services.close()
    typer.echo(f"recorded {count} service-level breaches")


@permits_cli.command("sweep")
def permits_sweep() -> None:
    """Suspend each residence permit whose yearly endorsement has lapsed (once, by the system actor)."""
    services = _services()
    try:
        count = services.permit_sweep()
    finally:
        services.close()
    typer.echo(f"suspended {count} lapsed permits")


def main() -> None:
    cli()
