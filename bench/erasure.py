"""Erasure against a committee's free text: each erasure looks through every committee text
still readable (agenda titles, decisions, actions, sealed under a key per event) for the
person's name, number and dependants' names, and destroys the keys of those that name them.

Measured: the first erasure of a process (it opens every text once), the ones after it (the
folded texts are kept in memory), and a raw scan of the same text events (the rows read, no
decoding or opening) in the same run.

    python -m bench.erasure [--residents 2000] [--meetings 3000] [--erasures 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time
import warnings
from datetime import UTC, date, datetime
from uuid import UUID

import psycopg

from application.services import Services
from bench.commands import IdentityNumbers, scratch_database
from bench.table import record
from domain.committees import ManagementCommittee
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber

log = logging.getLogger("bench.erasure")
GOAL_MS = 1000.0  # an erasure (after the first) within a second with this many texts


def fill(services: Services, residents: int, meetings: int, rng: random.Random) -> tuple[list[UUID], int]:
    """Residents, and a committee whose meetings each name one of them in their agenda, minutes
    and action (three text events a meeting); returns the residents and the texts made."""
    numbers = IdentityNumbers(rng)
    stamp = Stamp(Actor("bench-caseworker", Role.CASEWORKER), datetime(2026, 11, 5, 2, tzinfo=UTC))
    app = services.app
    people: list[tuple[UUID, str]] = []
    for n in range(residents):
        name = f"Bench Person {n:05d}"
        people.append((app.register_resident(id_number=IdentityNumber.parse(numbers()), name=name,
                                             phone="13800138000", hometown="Henan", employer=None, area="xinqi",
                                             registered_on=date(2026, 1, 2), stamp=stamp).id, name))
    committee = app.establish_committee(name="Bench committee", area="xinqi", site_id=None,
                                        members=[{"name": "Wang Fang", "role": "chair"}],
                                        established_on=date(2026, 1, 10), stamp=stamp).id
    chair = next(iter(app.load(ManagementCommittee, committee).members))
    started = time.monotonic()
    for m in range(meetings):
        _, name = people[rng.randrange(residents)]
        meeting = app.schedule_meeting(committee, scheduled_on=date(2026, 11, 3), stamp=stamp,
                                       agenda=[{"title": f"a bed for {name}"}]).details["meeting_id"]
        app.record_minutes(committee, meeting_id=meeting, held_on=date(2026, 11, 3), attendees=[chair], stamp=stamp,
                           decisions=[{"item_id": "1", "decision": f"house {name} by the month's end", "actions": [
                               {"description": f"call {name}", "owner": chair, "due_on": date(2026, 12, 1)}]}])
        if m and m % 500 == 0:
            log.info("%d meetings (%.0f/s)", m, m / (time.monotonic() - started))
    return [p for p, _ in people], meetings * 3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=2000)
    parser.add_argument("--meetings", type=int, default=3000)
    parser.add_argument("--erasures", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")
    rng = random.Random(args.seed)
    with scratch_database() as (settings, database):
        settings = settings.model_copy(update={"chain_events": False})
        services = Services.open(settings, run_projections=False, database=database)
        try:
            residents, texts = fill(services, args.residents, args.meetings, rng)
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                started = time.monotonic()
                rows = conn.execute(
                    "SELECT t.key_id, k.wrapped, e.state FROM pii_texts t JOIN pii_keys k USING (key_id)"
                    " JOIN liudong_events e ON e.originator_id = t.originator_id"
                    " AND e.originator_version = t.originator_version WHERE k.wrapped IS NOT NULL").fetchall()
                raw = time.monotonic() - started
            supervisor = Stamp(Actor("bench-supervisor", Role.SUPERVISOR), datetime(2026, 11, 20, 2, tzinfo=UTC))
            timings: list[float] = []
            erased_texts = 0
            for resident_id in rng.sample(residents, args.erasures):
                started = time.monotonic()
                result = services.app.erase_resident(resident_id, legal_basis="data_subject_request",
                                                     note="bench request", stamp=supervisor)
                timings.append((time.monotonic() - started) * 1000)
                erased_texts += int(result.details.get("texts_erased", 0))
        finally:
            services.close()
    first, rest = timings[0], timings[1:] or timings
    warm = statistics.median(rest)
    raw_ms = raw * 1000
    print(f"erasure against {texts:,} committee texts ({len(rows):,} rows read raw in {raw_ms:.0f} ms); "
          f"{args.erasures} erasures destroyed {erased_texts} text keys")
    # As the other benches: the speed as a fraction of the raw read's (raw time / erasure time).
    print(f"first erasure (opens every text)   {first:8.0f} ms  {raw_ms / first:6.2f}x raw")
    print(f"later erasures (median, p100 {max(rest):.0f} ms) {warm:8.0f} ms  {raw_ms / warm:6.2f}x raw")
    verdict = "met" if warm <= GOAL_MS else "not met"
    print(f"goal: a later erasure within {GOAL_MS:.0f} ms with {texts:,} texts: {verdict}")
    record(f"erasure with {texts:,} committee texts", f"raw read {raw_ms:.0f} ms",
           f"first {first:.0f} ms, later {warm:.0f} ms", f"{raw_ms / warm:.2f}x", f"<= {GOAL_MS:.0f} ms", verdict)


if __name__ == "__main__":
    main()
