"""The population at a moment: ``GET /statistics/population`` with 260,000 residents in the
residence-periods view, against the same SQL run directly through psycopg.

What it loads, on one scratch database (see ``bench.commands.scratch_database``):

* housing sites, registered through the application: 15 in each area of the register;
* 260,000 residents' histories over six years: registrations, moves between sites, private
  housing and areas, departures and returns, each recorded the same day or days to months
  late. Recording 600,000+ commands would take most of an hour, so their rows are written
  **directly** into ``residence_periods`` (COPY) by the same rules the projection follows,
  and the checkpoints summed from the rows (``COUNTS_FROM_ROWS``);
* a cohort of residents with histories from the same generator, recorded **through the
  application** as commands with their own recorded times, which the projector process
  applies with the real handlers on top of the loaded rows. The cohort's counts over HTTP
  must equal a fold of its histories, and the loaded rows' counts must equal a fold of
  theirs and the rows' own definition, or the bench stops.

Then p50/p99 of the endpoint over real HTTP (uvicorn on loopback, one keep-alive client) and
of its SQL alone (the raw baseline), for dates as known now, moments, both, and by site; and
the rows' definition (which scans every period) a few times, for comparison.

    python -m bench.population [--residents 260000] [--requests 300] [--cohort 150] [--seed 7]
"""

from __future__ import annotations

import argparse
import io
import logging
import random
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg.rows import dict_row

from application.services import Services
from bench.commands import IdentityNumbers, scratch_database, serve
from bench.table import record
from domain.common import OFFICE_TZ, Actor, Role, Stamp
from domain.identity import IdentityNumber
from projections.residence_periods import (
    COUNTS_FROM_ROWS,
    PopulationQuery,
    population_from_rows,
    population_statement,
)

log = logging.getLogger("bench.population")

GOAL_P99_MS = 50.0
YEARS = 6
SITES_PER_AREA = 15
CHECK_AREA = "bench-cohort"
Place = tuple[str, UUID | None]
ADMIN = Actor("bench-admin", Role.ADMIN)
NULL = "\\N"  # COPY's text format


@dataclass(frozen=True)
class Change:
    kind: str  # register, site, private, depart, return
    recorded_at: datetime
    effective: date
    place: Place | None  # None: left the district
    actor: str


class Histories:
    """Random but plausible lives in the district: most changes reported the same day, some
    days or months late; a resident moves every year or two and one in seven of the moves
    is a departure, after which some come back."""

    def __init__(self, rng: random.Random, sites: dict[str, list[UUID]], now: datetime) -> None:
        self.rng = rng
        self.sites = sites
        self.areas = sorted(sites)
        self.now = now
        self.today = now.astimezone(OFFICE_TZ).date()
        self.start = self.today - timedelta(days=365 * YEARS)
        self.clerks = {area: [f"bench-clerk-{area}-{n}" for n in range(4)] for area in self.areas}

    def lag(self) -> int:
        r = self.rng.random()
        if r < 0.55:
            return 0
        if r < 0.80:
            return self.rng.randint(1, 3)
        if r < 0.92:
            return self.rng.randint(4, 7)
        if r < 0.98:
            return self.rng.randint(8, 30)
        return self.rng.randint(31, 180)

    def recorded(self, effective: date, previous: datetime | None) -> datetime:
        day = effective + timedelta(days=self.lag())
        moment = datetime(day.year, day.month, day.day, 8, tzinfo=OFFICE_TZ) + timedelta(
            seconds=self.rng.randrange(10 * 3600))
        moment = min(moment, self.now)
        return max(moment, previous) if previous is not None else moment

    def place(self, area: str, current: Place | None) -> Place:
        if self.rng.random() < 0.4:
            choices = [s for s in self.sites[area] if current is None or s != current[1]]
            return area, self.rng.choice(choices)
        return area, None

    def one(self) -> list[Change]:
        rng = self.rng
        effective = self.start + timedelta(days=rng.randrange((self.today - self.start).days + 1))
        area = rng.choice(self.areas)
        at = self.recorded(effective, None)
        changes = [Change("register", at, effective, (area, None), rng.choice(self.clerks[area]))]
        here: Place | None = (area, None)
        while True:
            effective += timedelta(days=int(rng.expovariate(1 / 500)))
            if effective > self.today:
                return changes
            at = self.recorded(effective, at)
            if here is None:
                if rng.random() < 0.6:
                    return changes  # gone for good
                area = rng.choice(self.areas)
                here = (area, None)
                changes.append(Change("return", at, effective, here, rng.choice(self.clerks[area])))
                continue
            clerk = rng.choice(self.clerks[here[0]])
            if rng.random() < 0.15:
                changes.append(Change("depart", at, effective, None, clerk))
                here = None
                continue
            area = here[0] if rng.random() < 0.75 else rng.choice(self.areas)
            here = self.place(area, here)
            changes.append(Change("site" if here[1] else "private", at, effective, here, clerk))


def periods(changes: list[Change]) -> list[list[Any]]:
    """The rows the projection writes for these changes: [area, site_id, valid_from, valid_to,
    recorded_from, recorded_to, version] (the same rules as ResidencePeriodsProjection)."""
    rows: list[list[Any]] = []
    open_row: list[Any] | None = None
    for version, c in enumerate(changes, 1):
        if open_row is not None:  # a move or a departure supersedes the open period
            at = max(c.recorded_at, open_row[4])
            open_row[5] = at
            rows.append([open_row[0], open_row[1], open_row[2], c.effective, at, None, version])
        if c.place is not None:
            open_row = [c.place[0], c.place[1], c.effective, None, c.recorded_at, None, version]
            rows.append(open_row)
        else:
            open_row = None
    return rows


def place_on(changes: list[Change], known_at: datetime | None, day: date) -> Place | None:
    """The independent fold: where the resident lived on ``day`` by the changes recorded by ``known_at``."""
    where = None
    for c in changes:
        if (known_at is None or c.recorded_at <= known_at) and c.effective <= day:
            where = c.place
    return where


def fold(lives: list[list[Change]], known_at: datetime | None, day: date, by_site: bool = False) -> dict[Place, int]:
    """Residents per place on ``day`` as known at ``known_at``."""
    counts: Counter[Place] = Counter()
    for changes in lives:
        where = place_on(changes, known_at, day)
        if where is not None:
            counts[where if by_site else (where[0], None)] += 1
    return dict(counts)


# -- loading --------------------------------------------------------------------------------
def register_sites(services: Services, areas: list[str], per_area: int) -> dict[str, list[UUID]]:
    stamp = Stamp(Actor("bench-supervisor", Role.SUPERVISOR), datetime.now(UTC) - timedelta(days=365 * YEARS + 30))
    sites: dict[str, list[UUID]] = {}
    for area in areas:
        sites[area] = [services.app.register_site(
            name=f"Bench Site {area} {n}", area=area, address=f"{n} Ginkgo Road", operator_type="village_cooperative",
            operator_name="Ginkgo Village Cooperative", capacity=100_000, facilities=["canteen"], stamp=stamp).id
            for n in range(per_area)]
    return sites


def load_rows(dsn: str, histories: Histories, residents: int, seed: int) -> tuple[int, float]:
    """COPY the residents' periods; returns the rows written and the seconds it took. The
    lives are generated again from ``seed`` for the checks, so none is kept in memory."""
    started = time.perf_counter()
    written = 0
    rng = random.Random(seed)
    columns = "resident_id, version, area, site_id, valid_from, valid_to, recorded_from, recorded_to"
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur, \
            cur.copy(f"COPY residence_periods ({columns}) FROM STDIN") as copy:
        buffer = io.StringIO()
        for n in range(residents):
            rid = UUID(int=rng.getrandbits(128), version=4)
            for area, site, valid_from, valid_to, recorded_from, recorded_to, version in periods(histories.one()):
                buffer.write(f"{rid}\t{version}\t{area}\t{site or NULL}\t{valid_from}\t{valid_to or NULL}"
                             f"\t{recorded_from.isoformat()}\t{recorded_to.isoformat() if recorded_to else NULL}\n")
                written += 1
            if n % 20_000 == 19_999:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return written, time.perf_counter() - started


def lives(seed: int, sites: dict[str, list[UUID]], now: datetime, residents: int) -> Iterator[list[Change]]:
    """The loaded lives again, in the same order (the same seed, the same draws)."""
    histories = Histories(random.Random(seed), sites, now)
    for _ in range(residents):
        yield histories.one()


def record_cohort(services: Services, histories: Histories, size: int, area: str) -> tuple[list[list[Change]], int]:
    """Record the cohort's lives through the application, command by command."""
    numbers = IdentityNumbers(random.Random(size))
    app = services.app
    cohort = []
    commands = 0
    for n in range(size):
        changes = histories.one()
        first = changes[0]
        stamp = Stamp(Actor(first.actor, Role.CASEWORKER), first.recorded_at)
        rid = app.register_resident(
            id_number=IdentityNumber.parse(numbers()), name=f"Cohort Resident {n}", phone="13800138000",
            hometown="Anhui", employer=None, area=area, registered_on=first.effective, stamp=stamp).id
        commands += 1
        for c in changes[1:]:
            stamp = Stamp(Actor(c.actor, Role.CASEWORKER), c.recorded_at)
            if c.kind == "depart":
                app.record_departure(rid, c.effective, "went home", stamp)
            elif c.kind == "return":
                app.record_return(rid, area, c.effective, stamp)
            elif c.kind == "site":
                assert c.place is not None and c.place[1] is not None
                app.move_resident_into_site(rid, c.place[1], c.effective, stamp)
            else:
                app.move_resident_to_private_housing(rid, area, c.effective, stamp)
            commands += 1
        cohort.append(changes)
    return cohort, commands


# -- measuring ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    label: str
    params: Callable[[random.Random], dict[str, Any]]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def query_of(params: dict[str, Any], today: date) -> PopulationQuery:
    known_at = datetime.fromisoformat(params["known_at"]) if "known_at" in params else None
    effective_at = date.fromisoformat(params["effective_at"]) if "effective_at" in params else None
    return PopulationQuery.of(known_at=known_at, effective_at=effective_at, today=today,
                              by_site=params.get("by") == "site")


def timed(run: Callable[[dict[str, Any]], None], variant: Variant, n: int, warmup: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    for _ in range(warmup):
        run(variant.params(rng))
    samples = []
    for _ in range(n):
        params = variant.params(rng)
        started = time.perf_counter()
        run(params)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.population", description=__doc__.split("\n\n")[0])
    parser.add_argument("--residents", type=int, default=260_000)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per variant (and raw queries)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--cohort", type=int, default=150, help="residents recorded through the application")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

    with scratch_database() as (settings, database):
        services = Services.open(settings, run_projections=True, database=database)
        try:
            run(services, settings, database.dsn, args, "embedded PostgreSQL" if database.embedded
                else f"PostgreSQL at {database.location}")
        finally:
            services.close()


def run(services: Services, settings: Any, dsn: str, args: Any, where: str) -> None:
    now = datetime.now(UTC)
    today = now.astimezone(OFFICE_TZ).date()
    areas = sorted(services.app.areas.refresh())
    sites = register_sites(services, areas, SITES_PER_AREA)

    print(f"\npopulation at a moment: {args.residents:,} residents over {YEARS} years, {len(areas)} areas, "
          f"{sum(map(len, sites.values()))} sites, on {where}")
    history_seed, rows_seed = args.seed, args.seed + 1
    written, copy_seconds = load_rows(dsn, Histories(random.Random(history_seed), sites, now), args.residents,
                                      rows_seed)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as loader:
        loader.execute(COUNTS_FROM_ROWS)
        checkpoints = loader.execute("SELECT count(*) FROM residence_counts").fetchone()
    count_seconds = time.perf_counter() - started
    print(f"  loaded directly (not through commands): {written:,} period rows in {copy_seconds:.1f} s,"
          f" {checkpoints[0] if checkpoints else 0:,} checkpoint rows summed in {count_seconds:.1f} s")

    # The cohort, through the application and the projector's real handlers.
    services.app.define_area(code=CHECK_AREA, name_zh="测试街道", name_en="Bench cohort", level="street_office",
                             parent=None, stamp=Stamp(ADMIN, now))
    cohort_sites = {CHECK_AREA: register_sites(services, [CHECK_AREA], 3)[CHECK_AREA]}
    started = time.perf_counter()
    cohort, commands = record_cohort(services, Histories(random.Random(args.seed + 2), cohort_sites, now),
                                     args.cohort, CHECK_AREA)
    head = services.head()
    for view in ("residence_periods", "reporting_delays"):
        if not services.wait_for(view, head, 120):
            raise SystemExit(f"view {view} did not reach position {head}")
    print(f"  cohort through the application: {args.cohort} residents, {commands} commands recorded and"
          f" projected in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(dsn, autocommit=True) as loader:
        loader.execute("VACUUM ANALYZE residence_periods")
        loader.execute("VACUUM ANALYZE residence_counts")

    _, key = services.app.issue_key(user_id="bench-auditor", role="auditor", areas=[], scopes=[],
                                    stamp=Stamp(ADMIN, now))
    headers = {"Authorization": f"Bearer {key}"}
    first_day = today - timedelta(days=365 * (YEARS - 1))
    span = (today - first_day).days

    def moment(rng: random.Random) -> datetime:
        return (now - timedelta(seconds=rng.randrange(span * 86400))).astimezone(OFFICE_TZ)

    def day(rng: random.Random) -> date:
        return first_day + timedelta(days=rng.randrange(span + 1))

    def believed(rng: random.Random) -> dict[str, Any]:
        t = moment(rng)
        return {"known_at": t.isoformat(), "effective_at": (t.date() - timedelta(days=rng.randint(1, 90))).isoformat()}

    variants = [
        Variant("effective_at=D, by area", lambda rng: {"effective_at": day(rng).isoformat()}),
        Variant("effective_at=D, by site", lambda rng: {"effective_at": day(rng).isoformat(), "by": "site"}),
        Variant("known_at=T, by area", lambda rng: {"known_at": moment(rng).isoformat()}),
        Variant("known_at=T, by site", lambda rng: {"known_at": moment(rng).isoformat(), "by": "site"}),
        Variant("known_at=T about D<T", believed),
    ]

    with serve(settings, services) as base_url, httpx.Client(base_url=base_url, timeout=30) as client, \
            psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        check(client, headers, conn, cohort, lives(history_seed, sites, now, args.residents), now, today)

        def over_http(params: dict[str, Any]) -> None:
            response = client.get("/statistics/population", params=params, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"GET /statistics/population {params}: {response.status_code} {response.text}")

        def raw(params: dict[str, Any]) -> None:
            sql, values = population_statement(query_of(params, today), today)
            conn.execute(sql, values).fetchall()

        results = []
        for n, variant in enumerate(variants):
            raw_ms = timed(raw, variant, args.requests, args.warmup, args.seed + n)
            http_ms = timed(over_http, variant, args.requests, args.warmup, args.seed + n)
            results.append((variant.label, raw_ms, http_ms))

        rows_ms: dict[str, list[float]] = {}
        for label, variant in (("effective_at", variants[0]), ("known_at", variants[2])):
            rng = random.Random(args.seed)
            rows_ms[label] = []
            for _ in range(5):
                query = query_of(variant.params(rng), today)
                started = time.perf_counter()
                population_from_rows(conn, query)
                rows_ms[label].append((time.perf_counter() - started) * 1000)

    report(results, rows_ms, args.requests, args.residents)


def check(client: httpx.Client, headers: dict[str, str], conn: psycopg.Connection[Any], cohort: list[list[Change]],
          loaded: Iterator[list[Change]], now: datetime, today: date) -> None:
    """Stop unless the endpoint agrees with the folds: the cohort's (recorded as commands) at
    many moments and dates, the loaded rows' at three."""
    pairs = 0
    for known_at in (None, now - timedelta(days=400), now - timedelta(days=30, hours=5)):
        for day in (today, today - timedelta(days=45), today - timedelta(days=200), today - timedelta(days=1000)):
            for by_site in (False, True):
                params: dict[str, Any] = {"area": CHECK_AREA, "effective_at": day.isoformat(),
                                          "by": "site" if by_site else "area"}
                if known_at is not None:
                    params["known_at"] = known_at.isoformat()
                body = client.get("/statistics/population", params=params, headers=headers).json()
                got = {(i["area"], UUID(i["site_id"]) if i["site_id"] else None): i["residents"]
                       for i in body["items"]}
                if got != fold(cohort, known_at, day, by_site):
                    raise SystemExit(f"cohort: the endpoint disagrees with the fold at {params}")
                pairs += 1
    queries = [PopulationQuery.of(known_at=known_at, effective_at=effective_at, today=today)
               for known_at, effective_at in ((None, today - timedelta(days=100)), (now - timedelta(days=200), None),
                                              (now - timedelta(days=300), today - timedelta(days=330)))]
    expected: list[Counter[Place]] = [Counter() for _ in queries]
    for changes in loaded:
        for query, counts in zip(queries, expected, strict=True):
            where = place_on(changes, query.known_at, query.effective_at)
            if where is not None:
                counts[(where[0], None)] += 1
    for query, counts in zip(queries, expected, strict=True):
        sql, values = population_statement(query, today)
        fast = {(r["area"], None): r["residents"] for r in conn.execute(sql, values).fetchall()
                if r["area"] != CHECK_AREA}
        defined = {(r["area"], None): r["residents"] for r in population_from_rows(conn, query)
                   if r["area"] != CHECK_AREA}
        if not fast == defined == dict(counts):
            raise SystemExit(f"loaded rows: checkpoints, rows and fold disagree at known_at={query.known_at},"
                             f" effective_at={query.effective_at}")
    print(f"  checked: the endpoint equals a fold of the cohort at {pairs} (moment, date, grouping) triples;"
          f" the loaded rows' checkpoints equal their definition and a fold of the lives at {len(queries)}")


def report(results: list[tuple[str, list[float], list[float]]], rows_ms: dict[str, list[float]], n: int,
           residents: int = 260_000) -> None:
    width = max(len(label) for label, _, _ in results)
    print(f"  {'':<{width}}  {'raw SQL p50 / p99':>20}  {'HTTP p50 / p99':>20}  HTTP p99 / raw p99   ({n} each)")
    worst = 0.0
    for label, raw_ms, http_ms in results:
        raw50, raw99 = percentile(raw_ms, 0.5), percentile(raw_ms, 0.99)
        http50, http99 = percentile(http_ms, 0.5), percentile(http_ms, 0.99)
        worst = max(worst, http99)
        print(f"  {label:<{width}}  {raw50:8.2f} / {raw99:6.2f} ms  {http50:8.2f} / {http99:6.2f} ms"
              f"  {http99 / raw99:6.2f}x")
    print("  for comparison, counting from the periods alone (every row read): "
          + ", ".join(f"{label} p50 {statistics.median(ms):.0f} ms" for label, ms in rows_ms.items()))
    verdict = "met" if worst <= GOAL_P99_MS else "not met"
    print(f"goal: HTTP p99 <= {GOAL_P99_MS:.0f} ms at {residents:,} residents  (worst {worst:.1f} ms: {verdict})")
    record(f"GET /statistics/population p99, {residents:,} residents", "the same SQL through psycopg",
           f"worst p99 {worst:.1f} ms", "", f"<= {GOAL_P99_MS:.0f} ms", verdict)


if __name__ == "__main__":
    main()
