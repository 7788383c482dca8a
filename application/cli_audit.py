"""``liudong audit ...`` and ``liudong replay``: the auditor's command line.

``verify`` prints one line an outside script can read: ``ok events=N head=HEX position=P``
(exit 0), or ``broken position=P kind=KIND: what`` (exit 1). ``verify-export`` needs no
database and no configuration: only the bundle and the office's public key. ``chain`` and
``export`` chain what is stored first, and refuse (exit 1) over a chain that lost rows.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

audit_cli = typer.Typer(help="tamper evidence: the event chain, checkpoints, signed exports", no_args_is_help=True)


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        typer.echo(f"{option}: not a moment like 2026-06-01T12:00:00+08:00: {value!r}", err=True)
        raise typer.Exit(2) from None
    if moment.tzinfo is None or len(value) <= 10 or value[10:11] not in ("T", " "):
        # A date alone (2026-11-29, or 2026-11-29+08:00, which Python reads as 08:00) is no moment:
        # the example is one (found by a review: the example given was itself refused).
        day = value[:10]
        typer.echo(f"{option}: a moment with its UTC offset, e.g. {day}T00:00:00+08:00", err=True)
        raise typer.Exit(2)
    return moment


def _progress(description: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    # On standard error: standard output keeps the one line scripts read.
    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    transient=True, console=Console(stderr=True))


def _connect(services: Any) -> Any:
    import psycopg
    from psycopg.rows import dict_row

    return psycopg.connect(services.database.dsn, autocommit=True, row_factory=dict_row)


@audit_cli.command("chain")
def audit_chain() -> None:
    """Chain every event stored so far now (a running service does this continuously) and record a checkpoint."""
    from application.chain import ChainCut, Chainer
    from application.cli import open_services

    services = open_services()
    try:
        chainer = Chainer(services.database.dsn, checkpoint_every=services.settings.checkpoint_every_events,
                          signing_key=services.settings.audit_signing_key())
        count = chainer.catch_up(wait=False)
        with _connect(services) as conn:
            position, link = chainer.head(conn)
    except ChainCut as refused:
        typer.echo(f"refused: {refused}", err=True)
        raise typer.Exit(1) from None
    finally:
        services.close()
    if count is None:
        typer.echo(f"a running service chains the events; head {link.hex()} at position {position}")
    else:
        typer.echo(f"chained {count} events; head {link.hex()} at position {position}")


@audit_cli.command("checkpoint")
def audit_checkpoint() -> None:
    """Record the chain's head now (signed with LIUDONG_AUDIT_SIGNING_KEY_FILE when set)."""
    from application.chain import Chainer, UnsignedCheckpoint
    from application.cli import open_services

    services = open_services()
    try:
        chainer = Chainer(services.database.dsn, signing_key=services.settings.audit_signing_key())
        with _connect(services) as conn:
            # No lock: a checkpoint names a head already chained, whoever chains meanwhile.
            mark = chainer.checkpoint(conn)
    except UnsignedCheckpoint as refused:
        typer.echo(str(refused), err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    if mark is None:
        typer.echo("nothing chained yet: no checkpoint", err=True)
        raise typer.Exit(1)
    typer.echo(f"checkpoint #{mark['id']} at position {mark['position']}: {mark['link'].hex()}")


def _expected_head(value: str | None) -> tuple[int, bytes] | None:
    if value is None:
        return None
    position, _, link = value.partition(":")
    try:
        expected = int(position), bytes.fromhex(link)
    except ValueError:
        expected = (0, b"")
    if expected[0] < 1 or len(expected[1]) != 32:
        typer.echo(f"--expect-head: POSITION:HASH, e.g. 21:{'ab' * 32} (a checkpoint's position and link): {value!r}",
                   err=True)
        raise typer.Exit(2)
    return expected


@audit_cli.command("verify")
def audit_verify(
    public_key: Annotated[Path | None, typer.Option(
        help="the office's Ed25519 public key: checkpoint signatures are checked too "
             "(default: from LIUDONG_AUDIT_SIGNING_KEY_FILE when set)")] = None,
    expect_head: Annotated[str | None, typer.Option(
        "--expect-head", help="POSITION:HASH of a head kept outside the database (a checkpoint published or"
                              " printed earlier, an export's last line): the chain must still hold it")] = None,
) -> None:
    """Recompute the chain over every stored event: exit 0 and `ok` with the count and head, or exit 1 and the
    first broken position."""
    from application.chain import load_public_key, verify
    from application.cli import open_services

    expected = _expected_head(expect_head)
    services = open_services()
    try:
        key = load_public_key(public_key) if public_key else None
        if key is None and services.settings.audit_signing_key_file:
            key = services.settings.audit_signing_key().public_key()
        with _connect(services) as conn, _progress("verifying") as bar:
            task = bar.add_task("verify", total=None)
            result = verify(conn, public_key=key, expect=expected,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    finally:
        services.close()
    rate = result.events / result.seconds if result.seconds else 0.0
    if result.broken is not None:
        typer.echo(f"broken position={result.broken.position} kind={result.broken.kind}: {result.broken.detail}")
        typer.echo(f"({result.events} events verified before it, in {result.seconds:.2f} s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"ok events={result.events} head={result.head.hex()} position={result.head_position}"
               f" checkpoints={result.checkpoints} unchained={result.unchained}")
    typer.echo(f"verified {result.events} events in {result.seconds:.2f} s ({rate:,.0f} events/s)", err=True)


@audit_cli.command("keygen")
def audit_keygen(
    private: Annotated[Path, typer.Option("--private", help="where to write the private key (PEM; mode 0600)")],
    public: Annotated[Path, typer.Option("--public", help="where to write the public key (PEM): give it out")],
) -> None:
    """Make an Ed25519 key pair for signing checkpoints and exports."""
    from application.chain import generate_keys

    if private.exists():
        typer.echo(f"{private} exists; refusing to overwrite a key", err=True)
        raise typer.Exit(2)
    kid = generate_keys(private, public)
    typer.echo(f"key {kid}: private {private}, public {public}; set LIUDONG_AUDIT_SIGNING_KEY_FILE={private}")


@audit_cli.command("export")
def audit_export(
    out: Annotated[Path, typer.Option("--out", help="the bundle to write (JSON Lines)")],
    since: Annotated[str | None, typer.Option("--from", help="first recorded moment, with offset")] = None,
    until: Annotated[str | None, typer.Option("--to", help="last recorded moment, with offset")] = None,
    aggregate: Annotated[str | None, typer.Option(help="only this record's events (its id)")] = None,
) -> None:
    """Export events with their chain links and a signed manifest, for an inspector who verifies offline. Every
    event stored by now is chained first, so the bundle covers each one in the range."""
    import getpass

    from application.access import Principal
    from application.audit import record_access
    from application.chain import ChainCut
    from application.cli import open_services
    from application.export import export
    from application.store import EVENTS_TABLE
    from domain.common import Actor, Role

    start, end = _moment(since, "--from"), _moment(until, "--to")
    if start is not None and end is not None and start > end:  # found by a review: an empty bundle, exit 0
        typer.echo(f"--to {until} comes before --from {since}", err=True)
        raise typer.Exit(2)
    try:
        record = UUID(aggregate) if aggregate else None
    except ValueError:
        typer.echo(f"--aggregate: not an id: {aggregate!r}", err=True)
        raise typer.Exit(2) from None
    if not out.parent.is_dir():  # found by a review: a traceback
        typer.echo(f"--out {out}: no folder {out.parent}", err=True)
        raise typer.Exit(2)
    services = open_services()
    try:
        key = services.settings.audit_signing_key()
        if key is None:
            typer.echo("no signing key: run `liudong audit keygen` and set LIUDONG_AUDIT_SIGNING_KEY_FILE", err=True)
            raise typer.Exit(2)
        who = f"cli:{getpass.getuser()}"
        if record is not None:
            with _connect(services) as conn:
                known = conn.execute(f"SELECT 1 FROM {EVENTS_TABLE} WHERE originator_id = %s LIMIT 1",
                                     (record,)).fetchone()
            if known is None:
                typer.echo(f"--aggregate: no record {record} is stored", err=True)
                raise typer.Exit(2)
        try:
            _chain_stored(services, key)
        except ChainCut as refused:
            typer.echo(f"refused: {refused}", err=True)
            raise typer.Exit(1) from None
        with _connect(services) as conn, out.open("wb") as stream:
            summary = export(conn, stream, signing_key=key, since=start, until=end, aggregate=record,
                             exported_by=who)
            # An export carries every event of the range, personal data sealed: it is in the access log.
            record_access(conn, Principal(Actor(who, Role.AUDITOR)), record, "liudong audit export",
                          detail=f"from={since} to={until} events={summary.events} out={out.name}")
    finally:
        services.close()
    positions = (f"positions {summary.first_position}..{summary.last_position}" if summary.events
                 else "none in the range")
    typer.echo(f"exported {summary.events} events ({positions}) to {out}; signed by key {summary.manifest['key_id']}")
    if summary.unchained:
        typer.echo(f"{summary.unchained} events stored after position {summary.manifest['chain_head']} were not yet"
                   " chained, so not exported (the manifest says so)", err=True)


def _chain_stored(services: Any, key: Any, wait_seconds: float = 30.0) -> None:
    """Chain every event stored now before an export (found by a review: with no service
    running, events not yet chained were left out without a word). A running service's
    chainer holds the lock: it is given ``wait_seconds`` to reach the store's head."""
    import time

    from application.chain import Chainer, chain_state

    chainer = Chainer(services.database.dsn, checkpoint_every=services.settings.checkpoint_every_events,
                      signing_key=key)
    if chainer.catch_up(wait=False) is not None:
        return
    deadline = time.monotonic() + wait_seconds
    with _connect(services) as conn:
        stored = chain_state(conn)["stored"]
        while chain_state(conn)["chained"] < stored and time.monotonic() < deadline:
            time.sleep(0.2)


@audit_cli.command("verify-export")
def audit_verify_export(
    bundle: Annotated[Path, typer.Argument(help="the bundle (from `liudong audit export`)", exists=True,
                                           dir_okay=False, readable=True)],
    public_key: Annotated[Path, typer.Option(help="the office's Ed25519 public key (PEM)", exists=True,
                                             dir_okay=False, readable=True)],
) -> None:
    """Check a bundle offline, with no database: signature, chain, counts. Exit 0 when valid."""
    from application.chain import load_public_key
    from application.export import verify_export

    try:
        key = load_public_key(public_key)
    except (ValueError, TypeError) as error:
        typer.echo(f"not an Ed25519 public key in PEM: {public_key} ({type(error).__name__})", err=True)
        raise typer.Exit(2) from None
    result = verify_export(bundle, key)
    if not result.ok:
        where = f"line {result.line}: " if result.line else ""
        typer.echo(f"invalid: {where}{result.problem}")
        raise typer.Exit(1)
    typer.echo(f"valid: {result.events} events, chain and signature check")


def replay_command(
    schema: Annotated[str, typer.Option(help="the PostgreSQL schema to build the views in, beside the live ones")],
    known_at: Annotated[str | None, typer.Option("--known-at", help="the moment, with offset (default: now)")] = None,
    views: Annotated[str | None, typer.Option(help="comma-separated views (default: all)")] = None,
    replace: Annotated[bool, typer.Option(help="drop the schema first if it exists")] = False,
) -> None:
    """Build every view as the office knew it at a moment (events recorded up to it) into its own schema."""
    from application.cli import open_services
    from application.projecting import replay
    from projections.registry import PROJECTIONS

    moment = _moment(known_at, "--known-at")
    names = [v.strip() for v in views.split(",") if v.strip()] if views else list(PROJECTIONS)
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown:
        typer.echo(f"unknown views: {', '.join(unknown)}; known: {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(2)
    services = open_services()
    try:
        with _progress(f"replaying into {schema}") as bar:
            task = bar.add_task("replay", total=None)
            report = replay(services.database.dsn, {n: PROJECTIONS[n] for n in names}, schema,
                            master_key=services.settings.master_key(), known_at=moment, replace=replace,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    typer.echo(f"replayed {report.events} events ({report.applied} recorded by {known_at or 'now'}) into {schema}"
               f" in {report.seconds:.1f} s: {report.rate:,.0f} events/s (a plain scan of the store:"
               f" {report.raw_rate:,.0f} events/s)")


def register(cli: typer.Typer) -> None:
    cli.add_typer(audit_cli, name="audit")
    cli.command("replay")(replay_command)
