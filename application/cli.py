"""The ``liudong`` command. The commands that need only the application layer live
here; ``api`` adds ``serve`` and ``workers`` adds ``relay``, ``worker``, ``dev-broker``
and ``up``, each registered as a ``liudong.cli`` entry point, so this layer never imports
the layers that build on it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

import typer

from application.cli_audit import register as register_audit
from application.cli_import import register as register_import
from application.eventdocs import register as register_events
from application.settings import Settings
from domain.common import Stamp

cli = typer.Typer(help="liudong: event-sourced case management for migrant residents", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys", no_args_is_help=True)
projections_cli = typer.Typer(help="read models", no_args_is_help=True)
sla_cli = typer.Typer(help="dispute service levels", no_args_is_help=True)
permits_cli = typer.Typer(help="residence permits", no_args_is_help=True)
subsidies_cli = typer.Typer(help="subsidies", no_args_is_help=True)
committees_cli = typer.Typer(help="management committees", no_args_is_help=True)
users_cli = typer.Typer(help="staff accounts for the web application", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(projections_cli, name="projections")
cli.add_typer(sla_cli, name="sla")
cli.add_typer(permits_cli, name="permits")
cli.add_typer(subsidies_cli, name="subsidies")
cli.add_typer(committees_cli, name="committees")
cli.add_typer(users_cli, name="users")
dead_letters_cli = typer.Typer(help="events a view could not apply", no_args_is_help=True)
retention_cli = typer.Typer(help="personal data retention", no_args_is_help=True)
cli.add_typer(retention_cli, name="retention")
cli.add_typer(dead_letters_cli, name="dead-letters")
register_audit(cli)  # liudong audit ..., liudong replay
register_events(cli)  # liudong events doc
register_import(cli)  # liudong import residents, liudong generate district


def open_services(run_projections: bool = False):  # type: ignore[no-untyped-def]
    from application.database import DatabaseUnavailable
    from application.privacy import MasterKeyMissing
    from application.services import Services

    try:
        return Services.open(Settings(), run_projections=run_projections)
    except (DatabaseUnavailable, MasterKeyMissing) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


@cli.command()
def config() -> None:
    """Print the effective settings (secrets masked)."""
    typer.echo(json.dumps(Settings().masked(), indent=2, default=str))


def _cli_stamp() -> Stamp:
    """Who acts when the command line changes something: the operating-system user, as admin."""
    import getpass
    from datetime import UTC, datetime

    from domain.common import Actor, Role

    return Stamp(Actor(f"cli:{getpass.getuser()}", Role.ADMIN), datetime.now(UTC))


@users_cli.command("create")
def users_create(
    name: Annotated[str, typer.Option(help="the user name to sign in with, also the actor of their commands")],
    role: Annotated[str, typer.Option(help="caseworker, supervisor, finance, auditor or admin")],
    area: Annotated[list[str] | None, typer.Option(help="an area the account is bound to (repeatable; code or name)")]
    = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")]
    = False,
) -> None:
    """Create a staff account for the web application (the password from standard input, at least 10 characters)."""
    import sys

    from domain.common import DomainError

    if not password_stdin:
        typer.echo("give --password-stdin and the password on standard input", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    services = open_services()
    try:
        areas = [services.app.place(a) for a in (area or [])]
        user = services.users.create(user_id=name.strip(), role=role, areas=areas, password=password,
                                     created_by=_cli_stamp().actor.user_id)
    except DomainError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(f"created {user.role.value} account {user.user_id}" + (f" for {', '.join(user.areas)}" if user.areas
                                                                      else ""))


@users_cli.command("list")
def users_list() -> None:
    """Staff accounts: name, role, areas, and whether disabled or locked."""
    services = open_services()
    try:
        rows = services.users.list()
    finally:
        services.close()
    for row in rows:
        state = ("disabled " + row["disabled_at"].isoformat(timespec="seconds")) if row["disabled_at"] else (
            "locked until " + row["locked_until"].isoformat(timespec="seconds") if row["locked_until"] else "active")
        typer.echo(f"{row['user_id']}\t{row['role']}\t{','.join(row['areas']) or 'district'}\t{state}")


@users_cli.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="the account's user name")]) -> None:
    """Disable an account: it signs in no more and its open sessions end at once (a leaver)."""
    _user_change(name, "disable")


@users_cli.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="the account's user name")]) -> None:
    """Enable a disabled account again: it signs in with its password."""
    _user_change(name, "enable")


@users_cli.command("unlock")
def users_unlock(name: Annotated[str, typer.Argument(help="the account's user name")]) -> None:
    """Unlock an account locked by five wrong passwords: it signs in again at once."""
    _user_change(name, "unlock")


def _user_change(name: str, change: str) -> None:
    from domain.common import DomainError

    services = open_services()
    try:
        if change == "unlock":
            changed = services.users.unlock(name, services.clock())
        else:
            changed = services.users.disable(name) if change == "disable" else services.users.enable(name)
    except DomainError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    word = f"{change}ed" if change == "unlock" else f"{change}d"
    if changed:
        typer.echo(f"{word} {name}")
    else:
        typer.echo(f"{name} was not locked" if change == "unlock" else f"{name} was {word} already")


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="the user id recorded as the actor of this key's commands")],
    role: Annotated[str, typer.Option(help="caseworker, supervisor, finance, auditor, api_consumer or admin")],
    area: Annotated[list[str] | None, typer.Option(help="an area this key is scoped to (repeatable; code or name)")]
    = None,
    scope: Annotated[list[str] | None, typer.Option(help="a scope: pii (an api_consumer sees personal fields)")]
    = None,
) -> None:
    """Create an API key (recorded as an event) and print it once, as the last word of the output."""
    from application.keys import HUMAN_ROLES
    from domain.common import DomainError

    if role not in {r.value for r in HUMAN_ROLES}:
        typer.echo(f"unknown role {role!r}; one of: {', '.join(r.value for r in HUMAN_ROLES)}", err=True)
        raise typer.Exit(2)
    if not name.strip() or len(name) > 100:
        typer.echo("--name must be 1 to 100 characters", err=True)
        raise typer.Exit(2)
    services = open_services()
    try:
        result, key = services.app.issue_key(user_id=name.strip(), role=role, areas=list(area or []),
                                             scopes=list(scope or []), stamp=_cli_stamp())
    except DomainError as error:
        typer.echo(error.message, err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(f"created a {role} key {result.id} for {name.strip()}; it is shown only now: {key}")


@keys_cli.command("list")
def keys_list(user: Annotated[str | None, typer.Option(help="only this user's keys")] = None) -> None:
    """Every key: id, user, role, areas, scopes, created and revoked (never the key itself)."""
    from application.keys import list_keys

    services = open_services()
    try:
        rows = list_keys(services.pool, user)
    finally:
        services.close()
    for row in rows:
        state = f"revoked {row['revoked_at']:%Y-%m-%d %H:%M}" if row["revoked_at"] else "active"
        typer.echo(f"{row['key_id'] or '(before key events)'}  {row['user_id']:<20} {row['role']:<13} "
                   f"areas {','.join(row['areas']) or 'district-wide'}  scopes {','.join(row['scopes'] or []) or '-'}"
                   f"  created {row['created_at']:%Y-%m-%d %H:%M}  {state}")


@keys_cli.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (from keys list)")],
    reason: Annotated[str, typer.Option(help="why")] = "revoked by an administrator",
) -> None:
    """Revoke a key; every process refuses it within a second."""
    from uuid import UUID

    from application.store import NotFound
    from domain.common import DomainError

    services = open_services()
    try:
        services.app.revoke_key(UUID(key_id), reason=reason, stamp=_cli_stamp())
    except (ValueError, NotFound, DomainError) as error:
        typer.echo(f"cannot revoke {key_id}: {getattr(error, 'message', error)}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(f"revoked {key_id}")


@keys_cli.command("rotate")
def keys_rotate(key_id: Annotated[str, typer.Argument(help="the key's id (from keys list)")]) -> None:
    """Replace a key by a new one with the same user, role, areas and scopes; print the new key once, last."""
    from uuid import UUID

    from application.store import NotFound
    from domain.common import DomainError

    services = open_services()
    try:
        result, key = services.app.rotate_key(UUID(key_id), stamp=_cli_stamp())
    except (ValueError, NotFound, DomainError) as error:
        typer.echo(f"cannot rotate {key_id}: {getattr(error, 'message', error)}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(f"rotated {key_id} into {result.id}; the new key is shown only now: {key}")


@projections_cli.command("rebuild")
def projections_rebuild(
    name: Annotated[str, typer.Argument(help="a view: residents, site_occupancy, ...")],
    online: Annotated[bool, typer.Option(
        help="build the new copy beside the live one while the service runs and takes writes, then swap it in "
             "(readers never see a half-built view; the other views never wait)")] = False,
) -> None:
    """Rebuild one read model from the events alone."""
    from projections.registry import PROJECTIONS

    if name not in PROJECTIONS:
        typer.echo(f"unknown projection {name!r}; one of: {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(2)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    services = open_services()
    columns = (TextColumn(f"rebuilding {name}"), BarColumn(), TextColumn("{task.fields[where]}"),
               TimeRemainingColumn())
    try:
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("events", total=None, where="")

            def progress(position: int, head: int) -> None:
                bar.update(task, completed=position, total=head, where=f"position {position:,} of {head:,}")

            if online:
                from application.projecting import rebuild_online

                report = rebuild_online(services.database.dsn, PROJECTIONS[name],
                                        master_key=services.settings.master_key(), progress=progress)
            else:
                position = services.rebuild(name, progress=progress)
        if online:
            typer.echo(f"rebuilt {name} online up to position {report.position}: {report.events} events in"
                       f" {report.seconds:.1f} s ({report.rate:,.0f} events/s; a plain scan of the store:"
                       f" {report.raw_rate:,.0f} events/s); reads switched in {report.swap_seconds * 1000:.0f} ms")
            return
    finally:
        services.close()
    typer.echo(f"rebuilt {name} up to position {position}")


@projections_cli.command("status")
def projections_status() -> None:
    """Each view's position, lag behind the event log, state and open dead letters."""
    services = open_services()
    try:
        head = services.head()
        status = services.view_status()
        for name, pos in services.positions().items():
            view = status.get(name, {})
            typer.echo(f"{name:<18} position {pos:>10}  lag {max(head - pos, 0):>8}  {view.get('state', 'unknown'):<8}"
                       f"  dead letters {view.get('dead_letters', 0)}")
    finally:
        services.close()


def _sweep(run: Callable[[Any], int], done: str) -> None:
    """Run one sweep on the configured services and say how many records it changed."""
    services = open_services()
    try:
        count = run(services)
    finally:
        services.close()
    typer.echo(done.format(count))


@sla_cli.command("sweep")
def sla_sweep() -> None:
    """Record each dispute's new service-level breach once (EscalatedForBreach, by the system actor)."""
    _sweep(lambda services: services.sla_sweep(), "recorded {} service-level breaches")


@permits_cli.command("sweep")
def permits_sweep() -> None:
    """Suspend each residence permit whose yearly endorsement has lapsed (once, by the system actor)."""
    _sweep(lambda services: services.permit_sweep(), "suspended {} lapsed permits")


@subsidies_cli.command("sweep")
def subsidies_sweep() -> None:
    """Lapse each reward in lieu whose outcome was not verified by its deadline, releasing its budget (once, by
    the system actor)."""
    _sweep(lambda services: services.reward_sweep(), "{} rewards lapsed")


@committees_cli.command("sweep")
def committees_sweep() -> None:
    """Vacate the seat of each committee member who left the district, and give it back to each who returned,
    where the departure or return was recorded without reaching the committee (before seats were events, or by
    an import); record each past month a committee held no meeting (once, at most a year back); and lose the
    active members whose residents departed unseen."""
    _sweep(lambda services: services.seat_sweep(), "{} committees reconciled")
    _sweep(lambda services: services.meeting_sweep(), "{} months without a meeting recorded")
    _sweep(lambda services: services.active_member_sweep(), "{} active members of departed residents lost")


@retention_cli.command("sweep")
def retention_sweep() -> None:
    """Erase the personal data of every resident past its retention (and not held by an open dispute), and
    the operators' former contact persons past theirs."""
    services = open_services()
    try:
        due = services.retention_due()
        count = services.retention_sweep()
        operators = services.contact_retention_sweep()
    finally:
        services.close()
    typer.echo(f"erased the personal data of {count} residents ({len(due)} were due)")
    typer.echo(f"erased the former contact persons of {operators} operators")


@dead_letters_cli.command("list")
def dead_letters_list(
    view: Annotated[str | None, typer.Option(help="only this view's ('*': could not be decoded at all)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Open dead letters: the events a view could not apply, oldest first."""
    from psycopg.rows import dict_row

    from projections.engine import open_dead_letters
    from projections.registry import PROJECTIONS

    if view not in (None, "*", *PROJECTIONS):  # found by a review: a typo listed "no open dead letters"
        typer.echo(f"unknown view {view!r}; known: *, {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(2)
    services = open_services()
    try:
        with services.pool.connection() as conn:
            conn.row_factory = dict_row
            letters = open_dead_letters(conn, view=view, limit=limit)
    finally:
        services.close()
    if not letters:
        typer.echo("no open dead letters")
        return
    for letter in letters:
        typer.echo(
            f"#{letter['id']:<6} view {letter['view']:<18} {letter['event_type']:<40} "
            f"aggregate {letter['originator_id']} v{letter['version']} position {letter['position']} "
            f"from {letter['source']}  attempts {letter['attempts']}  {letter['error']}"
        )


@dead_letters_cli.command("retry")
def dead_letters_retry(letter_id: Annotated[int, typer.Argument(help="the dead letter's number")]) -> None:
    """Apply a dead letter again (with the code now running); on success, the later events
    of the same aggregate that waited behind it follow."""
    from application.envelope import from_message
    from application.events import EventCatalogue
    from application.projecting import retry_dead_letter

    catalogue = EventCatalogue.of_domain()
    services = open_services()
    try:
        try:
            outcome = retry_dead_letter(services.database.dsn, letter_id, services.projections, catalogue,
                                        decode_payload=lambda raw: from_message(raw, catalogue)[1],
                                        master_key=services.settings.master_key())
        except LookupError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(f"dead letter #{letter_id}: {outcome.outcome}; resolved: {outcome.resolved or 'none'}")
    if outcome.outcome != "applied" and not outcome.outcome.startswith("already"):
        raise typer.Exit(1)


def _load_plugins() -> None:
    """Commands of the outer layers (``serve``, ``relay``, ``worker``, ...)."""
    from importlib.metadata import entry_points

    for entry_point in entry_points(group="liudong.cli"):
        entry_point.load()(cli)


_load_plugins()


def quiet_dependencies() -> None:
    """What the command's user needs to read stays visible (found by a review: ``liudong serve``
    on a fresh data directory printed some sixty lines of initdb output and a warning about
    XDG_RUNTIME_DIR around the demo keys). platformdirs warns when XDG_RUNTIME_DIR is unset, as
    in a container or over ssh, and falls back to a directory that serves pgserver as well;
    pgserver logs every command it runs at INFO. Its warnings and errors (a server that does not
    start, with its log) still show."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=r"XDG_RUNTIME_DIR ", category=UserWarning)
    logging.getLogger("pgserver").setLevel(logging.WARNING)


def main() -> None:
    """``liudong``: a setting that names something unusable, or a database that cannot be reached,
    is said in one line with exit status 2, not a traceback (found by a review: every command,
    ``serve`` too, ended in one)."""
    quiet_dependencies()
    try:
        cli()
    except Exception as error:
        problem = startup_problem(error)
        if problem is None:
            raise
        typer.echo(problem, err=True)
        raise SystemExit(2) from None


def startup_problem(error: BaseException) -> str | None:
    """The one line that says what is wrong with the configuration, or None for another error."""
    import psycopg
    from pydantic import ValidationError

    from application.settings import SettingsError

    if isinstance(error, SettingsError):
        return str(error)
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        name = "LIUDONG_" + str(first["loc"][0]).upper() if first.get("loc") else "a setting"
        return f"{name}: {first['msg']}"
    if isinstance(error, psycopg.OperationalError):
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"the database cannot be reached (LIUDONG_DATABASE_URL): {reason}"
    return None


if __name__ == "__main__":
    main()
