"""``liudong relay | worker | dev-broker | up`` (registered on the ``liudong`` command as
an entry point)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from application.heap import freeze_startup_heap
from application.settings import Settings


def register(cli: typer.Typer) -> None:
    cli.command()(relay)
    cli.command()(worker)
    cli.command("dev-broker")(dev_broker)
    cli.command()(up)


def _stop_on_signals() -> threading.Event:
    """SIGTERM and SIGINT end the loop after the batch in flight."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    return stopping


def _setup(settings: Settings) -> str:
    from application.database import DatabaseUnavailable, open_database

    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    if not settings.distributed:
        typer.echo("set LIUDONG_KAFKA_BOOTSTRAP_SERVERS (e.g. the address `liudong dev-broker` prints)", err=True)
        raise typer.Exit(2)
    if settings.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr=settings.host)
    from application.privacy import MasterKeyMissing
    from application.services import ensure_event_store

    try:
        database = open_database(settings)
        ensure_event_store(database, settings.master_key())
        return database.dsn
    except (DatabaseUnavailable, MasterKeyMissing) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


def relay(
    from_position: Annotated[
        int | None, typer.Option("--from", min=0, help="publish again every event after this position (0: all)")
    ] = None,
) -> None:
    """Publish every stored event to Kafka, in order, as CloudEvents (one active relay; others wait)."""
    from workers.kafka import ProducerMisconfigured
    from workers.relay import Relay

    settings = Settings()
    dsn = _setup(settings)
    stopping = _stop_on_signals()
    if settings.chain_events:  # the relay follows the store anyway: it chains too (one chainer at a time)
        from application.chain import start_chainer

        start_chainer(dsn, checkpoint_every=settings.checkpoint_every_events,
                      checkpoint_seconds=settings.checkpoint_interval_seconds,
                      signing_key=settings.audit_signing_key(), stopping=stopping)
    try:
        relaying = Relay(settings, dsn, from_position=from_position, stopping=stopping)
        freeze_startup_heap()
        relaying.run()
    except ProducerMisconfigured as error:
        typer.echo(f"relay refused to start: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo("relay stopped")


def worker(
    projections: Annotated[
        str | None, typer.Option(help="comma-separated views to keep (default: all of them)")
    ] = None,
) -> None:
    """Keep the views from Kafka as a member of a consumer group."""
    from projections.registry import PROJECTIONS
    from workers.projector import Worker, group_for

    names = [n.strip() for n in projections.split(",") if n.strip()] if projections else list(PROJECTIONS)
    unknown = [n for n in names if n not in PROJECTIONS]
    if unknown or not names:
        typer.echo(f"unknown view {', '.join(unknown) or '(none given)'}; views: {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(2)
    settings = Settings()
    dsn = _setup(settings)
    stopping = _stop_on_signals()
    group = group_for(settings, names, list(PROJECTIONS))
    typer.echo(f"worker for {', '.join(names)} in group {group}")
    working = Worker(settings, dsn, {n: PROJECTIONS[n] for n in names}, group, stopping=stopping)
    freeze_startup_heap()
    working.run()
    typer.echo("worker stopped")


def dev_broker(
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="loopback port (default: a free one)")] = None,
) -> None:
    """Run a Kafka-compatible broker (tansu, memory storage) on loopback until Ctrl-C."""
    from workers.broker import BrokerUnavailable, DevBroker

    try:
        broker = DevBroker.start(port)
    except BrokerUnavailable as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"broker: {broker.bootstrap}  (memory storage: everything is lost when it stops)")
    typer.echo(f"export LIUDONG_KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}")
    stopping = _stop_on_signals()
    try:
        while not stopping.wait(0.5) and broker.running:
            pass
    finally:
        broker.stop()
    typer.echo("broker stopped")


def up(
    workers: Annotated[int, typer.Option(min=1, max=16, help="projection worker processes")] = 2,
    demo_keys: Annotated[bool, typer.Option(help="print a demo key per role (as `serve --demo-keys`)")] = True,
) -> None:
    """The distributed mode on one machine: database, broker, API, relay and workers."""
    from workers.up import run_all

    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    code = run_all(settings, workers=workers, demo_keys=demo_keys, log_dir=Path(settings.data_dir))
    raise typer.Exit(code)
