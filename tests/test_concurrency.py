"""Invariants hold under real concurrent HTTP requests against PostgreSQL."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import Api
from tests.factories import resident_body, site_body


def test_twenty_moves_racing_for_the_last_bed_give_one_success(
    base_url: str, keys: dict[str, str], caseworker: Api, supervisor: Api, services: Any
) -> None:
    site = supervisor.post("/sites", site_body(capacity=3)).json()
    for _ in range(2):  # two of three beds taken: one left
        resident = caseworker.post("/residents", resident_body()).json()
        taken = caseworker.post(f"/residents/{resident['id']}/moves",
                                {"site_id": site["id"], "effective_date": "2026-04-01"})
        assert taken.status_code == 200
    racers = [caseworker.post("/residents", resident_body()).json()["id"] for _ in range(20)]

    def move(resident_id: str) -> httpx.Response:
        # One client per request: separate connections, truly concurrent.
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post(f"/residents/{resident_id}/moves",
                               json={"site_id": site["id"], "effective_date": "2026-04-02"},
                               headers={"Authorization": f"Bearer {keys['caseworker']}"})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(move, racers))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 19, [r.text for r in responses if r.status_code not in (200, 409)]
    assert {r.json()["rule"] for r in responses if r.status_code == 409} == {"site_full"}
    doc = supervisor.get(f"/sites/{site['id']}").json()
    assert (doc["occupants"], doc["free_beds"]) == (3, 0)
    winner = next(rid for rid, r in zip(racers, responses, strict=True) if r.status_code == 200)
    losers = [rid for rid, r in zip(racers, responses, strict=True) if r.status_code != 200]
    assert caseworker.get(f"/residents/{winner}").json()["status"] == "in_site"
    assert all(caseworker.get(f"/residents/{rid}").json()["status"] == "private_housing" for rid in losers)


def test_concurrent_registrations_of_one_identity_number_store_one_resident(
    base_url: str, keys: dict[str, str], caseworker: Api
) -> None:
    body = resident_body()

    def register(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post("/residents", json=body, headers={"Authorization": f"Bearer {keys['caseworker']}"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(register, range(10)))
    created = [r for r in responses if r.status_code == 201]
    assert len(created) == 1
    refused = [r for r in responses if r.status_code == 409]
    assert len(refused) == 9, [r.text for r in responses if r.status_code != 409]
    assert {r.json()["existing_resident_id"] for r in refused} == {created[0].json()["id"]}


def test_concurrent_retries_with_one_idempotency_key_store_the_command_once(
    base_url: str, keys: dict[str, str], caseworker: Api, supervisor: Api, services: Any
) -> None:
    site = supervisor.post("/sites", site_body(capacity=50)).json()
    resident = caseworker.post("/residents", resident_body()).json()
    head_before = services.head()

    def retry(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post(f"/residents/{resident['id']}/moves",
                               json={"site_id": site["id"], "effective_date": "2026-04-02"},
                               headers={"Authorization": f"Bearer {keys['caseworker']}",
                                        "Idempotency-Key": "move-once"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(retry, range(8)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({r.json()["position"] for r in responses}) == 1
    # One move: one event on the resident and one on the site. Positions are counted, not
    # subtracted: a retry that lost the race for the resident's next version rolled back and
    # left a gap in the positions it had drawn (docs/adr/0005).
    with services.pool.connection() as conn:
        rows = conn.execute("SELECT originator_id FROM liudong_events WHERE notification_id > %s",
                            (head_before,)).fetchall()
    assert sorted(str(r["originator_id"]) for r in rows) == sorted([resident["id"], site["id"]])
    assert supervisor.get(f"/sites/{site['id']}").json()["occupants"] == 1


def test_commands_that_arrive_together_share_one_transaction_and_a_refused_one_fails_alone(
    base_url: str, keys: dict[str, str], caseworker: Api, supervisor: Api, services: Any, monkeypatch: Any
) -> None:
    """Group commit (issue 9): the first write is held until fifteen more wait behind it; those
    are then stored in one transaction. Among them two registrations lose the race for an
    identity number and three retries share an Idempotency-Key: each is answered on its own, as
    it would be alone, and the others commit."""
    recorder = services.app.recorder
    group = recorder.group_commit
    assert group is not None
    site = supervisor.post("/sites", site_body(capacity=50)).json()
    mover = caseworker.post("/residents", resident_body()).json()
    gate = threading.Event()
    flush = recorder._insert_group

    def held(batch: list[Any]) -> None:
        gate.wait(30)
        flush(batch)

    monkeypatch.setattr(recorder, "_insert_group", held)
    head_before, before = services.head(), (group.transactions, group.commands, group.split)
    twice = resident_body()
    bodies = [resident_body() for _ in range(10)] + [twice] * 3
    auth = {"Authorization": f"Bearer {keys['caseworker']}"}

    def register(body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post("/residents", json=body, headers=auth)

    def move(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post(f"/residents/{mover['id']}/moves", json={"site_id": site["id"],
                               "effective_date": "2026-04-02"}, headers={**auth, "Idempotency-Key": "together"})

    with ThreadPoolExecutor(max_workers=16) as pool:
        registered = [pool.submit(register, body) for body in bodies]
        moved = [pool.submit(move, n) for n in range(3)]
        deadline = time.monotonic() + 30
        while len(group._queue) < 14 and time.monotonic() < deadline:  # all but the held leaders' writes
            time.sleep(0.01)
        queued = len(group._queue)
        gate.set()
        answers = [f.result() for f in registered]
        moves = [f.result() for f in moved]

    assert queued >= 10, queued
    transactions, commands = group.transactions - before[0], group.commands - before[1]
    assert commands - transactions >= queued - 1, (transactions, commands)  # the queued ones shared a transaction
    assert group.split > before[2]  # the lost races made their transaction store write by write
    assert [a.status_code for a in answers[:10]] == [201] * 10, [a.text for a in answers[:10]]
    same = sorted(a.status_code for a in answers[10:])
    assert same == [201, 409, 409], [a.text for a in answers[10:]]
    assert {a.json()["rule"] for a in answers[10:] if a.status_code == 409} == {"identity_number_registered"}
    assert all(m.status_code == 200 for m in moves) and len({m.json()["position"] for m in moves}) == 1
    with services.pool.connection() as conn:
        stored = conn.execute("SELECT originator_id, originator_version FROM liudong_events"
                              " WHERE notification_id > %s", (head_before,)).fetchall()
    # Eleven residents with a claim each, and one move (the resident and the site): nothing twice.
    assert len(stored) == 11 * 2 + 2
    assert len({(r["originator_id"], r["originator_version"]) for r in stored}) == len(stored)
    assert supervisor.get(f"/sites/{site['id']}").json()["occupants"] == 1
