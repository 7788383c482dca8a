"""Audit speeds on one scratch database: chaining, verifying the chain, a signed export and
its offline check, a replay of every view as known at a moment, and an online rebuild of the
residents view, each in events/s against a raw scan of the same events (``read_stored``, no
decoding) measured in the same run.

The store is filled through the application (residents registered and moved between sites),
so every event is a real one the views decode.

    python -m bench.audit [--residents 20000] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from application.chain import Chainer, generate_keys, load_private_key, load_public_key, verify
from application.export import export, verify_export
from application.projecting import raw_scan_rate, rebuild_online, replay
from application.services import Services
from bench.commands import IdentityNumbers, scratch_database
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber
from projections.registry import PROJECTIONS

log = logging.getLogger("bench.audit")


def fill(services: Services, residents: int, rng: random.Random) -> int:
    """Residents registered in batches of sites, half of them moved into one; returns the head."""
    numbers = IdentityNumbers(rng)
    areas = ["xiaogang", "xinqi", "daqi"]
    stamp = Stamp(Actor("bench-caseworker", Role.CASEWORKER), datetime(2026, 11, 1, 2, tzinfo=UTC))
    supervisor = Stamp(Actor("bench-supervisor", Role.SUPERVISOR), stamp.recorded_at)
    sites = [services.app.register_site(name=f"Bench site {i}", area=areas[i % 3], address=f"{i} Road",
                                        operator_type="employer", operator_name="Hengli", capacity=residents,
                                        facilities=["canteen"], stamp=supervisor).id for i in range(6)]
    started = time.monotonic()
    for n in range(residents):
        resident = services.app.register_resident(
            id_number=IdentityNumber.parse(numbers()), name=f"Bench {n}", phone="13800138000", hometown="Henan",
            employer=None, area=areas[n % 3], registered_on=date(2026, 1, 1 + n % 28), stamp=stamp)
        if n % 2:
            services.app.move_resident_into_site(resident.id, sites[n % 6], date(2026, 2, 1 + n % 28), stamp)
        if n and n % 5000 == 0:
            log.info("%d residents (%.0f/s)", n, n / (time.monotonic() - started))
    return services.head()


def line(label: str, events: int, seconds: float, raw: float) -> str:
    rate = events / seconds if seconds else 0.0
    return f"{label:<34} {events:>9,} events {seconds:8.2f} s {rate:>11,.0f}/s {rate / raw:6.2f}x raw"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")
    with scratch_database() as (settings, database), tempfile.TemporaryDirectory() as tmp:
        settings = settings.model_copy(update={"chain_events": False})
        services = Services.open(settings, run_projections=True, database=database)
        try:
            head = fill(services, args.residents, random.Random(args.seed))
            for name in services.projections:
                services.wait_for(name, head, 600)
            dsn = database.dsn
            with psycopg.connect(dsn, autocommit=True) as conn:
                row = conn.execute(sql.SQL("SELECT count(*) FROM liudong_events")).fetchone()
            events = int(row[0]) if row else 0
            raw = raw_scan_rate(dsn, events)
            out = [f"store: {events:,} events (head {head:,}); raw scan {raw:,.0f} events/s"]
            private, public = Path(tmp) / "audit.key", Path(tmp) / "audit.pub"
            generate_keys(private, public)
            started = time.monotonic()
            Chainer(dsn, checkpoint_every=10_000, signing_key=load_private_key(private)).catch_up()
            out.append(line("chain (SHA-256 links)", events, time.monotonic() - started, raw))
            bundle = Path(tmp) / "bundle.jsonl"
            with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
                started = time.monotonic()
                checked = verify(conn, public_key=load_public_key(public))
                assert checked.broken is None, checked.broken
                out.append(line("audit verify", checked.events, time.monotonic() - started, raw))
                started = time.monotonic()
                with bundle.open("wb") as sink:
                    export(conn, sink, signing_key=load_private_key(private))
            out.append(line("audit export (signed)", events, time.monotonic() - started, raw))
            started = time.monotonic()
            result = verify_export(bundle, load_public_key(public))
            assert result.ok, result.problem
            out.append(line("verify-export (offline)", result.events, time.monotonic() - started, raw))
            started = time.monotonic()
            report = replay(dsn, PROJECTIONS, "bench_replay", master_key=settings.master_key(),
                            known_at=datetime(2026, 12, 1, tzinfo=UTC), replace=True)
            out.append(line(f"replay, {len(PROJECTIONS)} views", report.events, time.monotonic() - started, raw))
            started = time.monotonic()
            report = rebuild_online(dsn, PROJECTIONS["residents"], master_key=settings.master_key())
            out.append(line("rebuild residents --online", report.events, time.monotonic() - started, raw)
                       + f" (swap {report.swap_seconds * 1000:.0f} ms)")
        finally:
            services.close()
    print("\n".join(out))


if __name__ == "__main__":
    main()
