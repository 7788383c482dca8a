"""Erasure from an immutable log: 1,000 residents with disputes and notes, 100 erased. Then
a pg_dump of the whole database, every message on the Kafka topics and everything the
service and its processes logged hold none of the erased people's identity numbers,
phones or names (in any encoding they could be stored in); the other 900 read back in
full; statistics do not change; every view rebuilt equals the live one, and every
aggregate loads again from the store."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from api.app import create_app
from application.services import Services
from application.settings import Settings
from domain.committees import ManagementCommittee
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber
from tests.conftest import NOW, TEST_MASTER_KEY, issue_key, serve_app
from tests.factories import id_number
from tests.kafka_support import Cluster, assert_views_equal_rebuild, own_database, read_topics
from workers.broker import DevBroker

pytestmark = pytest.mark.kafka

RESIDENTS = 1000
ERASED = 100
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红文辉建国志新"


def forms(text: str) -> list[str]:
    """Every way a value could sit in a dump, a topic or a log: as text, as the hex of its
    UTF-8 (bytea columns), and JSON-escaped (\\uXXXX)."""
    escaped = json.dumps(text)[1:-1]
    return sorted({text, text.encode().hex(), escaped})


def person(rng: random.Random, n: int) -> dict[str, str]:
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(3)) + f"{n:04d}"
    phone = "13" + "".join(rng.choice("0123456789") for _ in range(9))
    return {"name": name, "phone": phone, "id_number": id_number(rng)}


@pytest.fixture()
def stack(database: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A database, broker, relay and the service of this test only (with a projector process)."""
    broker = DevBroker.start()
    with own_database(database) as db:
        cluster = Cluster(db.dsn, broker.bootstrap, tmp_path)
        settings = Settings(data_dir=tmp_path, pii_master_key=TEST_MASTER_KEY, read_wait_timeout=20.0,
                            rate_limit_per_minute=0, sweep_interval_seconds=0)
        log_file = tmp_path / "service.log"
        handler = logging.FileHandler(log_file)
        handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        root.addHandler(handler)
        previous = root.level
        root.setLevel(logging.DEBUG)
        services = Services.open(settings, database=db, run_projections=True)
        try:
            cluster.relay()
            with serve_app(create_app(settings, services)) as base_url:
                yield {"services": services, "db": db, "cluster": cluster, "base_url": base_url,
                       "log": log_file, "broker": broker}
        finally:
            services.close()
            cluster.stop_all()
            root.removeHandler(handler)
            root.setLevel(previous)
            handler.close()
            broker.stop()


def test_erased_people_are_nowhere_and_everyone_else_is_intact(stack: dict[str, Any], capfd: Any,
                                                              figures: list[str]) -> None:
    services: Services = stack["services"]
    app = services.app
    rng = random.Random(20261127)
    stamp = Stamp(Actor("erasure-caseworker", Role.CASEWORKER), NOW)
    people: dict[UUID, dict[str, str]] = {}
    cases: dict[UUID, UUID] = {}
    sites = [app.register_site(name=f"Site {n}", area="xinqi", address="1 Road", operator_type="employer",
                               operator_name="Shenzhou Knitting", capacity=10_000, facilities=[],
                               stamp=stamp).id for n in range(3)]
    for n in range(RESIDENTS):
        data = person(rng, n)
        resident = app.register_resident(id_number=IdentityNumber.parse(data["id_number"]), name=data["name"],
                                          phone=data["phone"], hometown="Anhui", employer="Shenzhou Knitting",
                                          area="xinqi", registered_on=date(2026, 1, 2), stamp=stamp)
        people[resident.id] = data
        if n % 2:
            app.move_resident_into_site(resident.id, sites[n % 3], date(2026, 2, 1), stamp)
        case = app.log_dispute(category="wages_and_labour",
                               parties=[{"resident_id": resident.id},
                                        {"name": data["name"] + "的工友", "kind": "other"}],
                               site_id=None, area="xinqi",
                               description=f"{data['name']} ({data['phone']}) says three months' wages are unpaid",
                               priority="normal", occurred_on=date(2026, 11, 1), stamp=stamp)
        app.add_dispute_note(case.id, text=f"called {data['name']} on {data['phone']}; ID {data['id_number']}",
                             stamp=stamp)
        cases[resident.id] = case.id
        if n % 25 == 3:  # the reason for leaving names them: sealed under their own key
            app.record_departure(resident.id, date(2026, 11, 2), f"{data['name']} went home to Anhui", stamp)
    # A committee's free text names some of them (a key per event, destroyed with whoever it names).
    committee = app.establish_committee(name="Xinqi Management Committee", area="xinqi", site_id=None,
                                        members=[{"name": "Wang Fang", "role": "chair"}],
                                        established_on=date(2026, 1, 10), stamp=stamp).id
    chair = next(iter(app.load(ManagementCommittee, committee).members))
    texts: dict[UUID, str] = {}
    for resident_id in sorted(people)[:60]:
        data = people[resident_id]
        meeting = app.schedule_meeting(committee, scheduled_on=date(2026, 11, 3), stamp=stamp,
                                       agenda=[{"title": f"a bed for {data['name']}"}]).details["meeting_id"]
        app.record_minutes(committee, meeting_id=meeting, held_on=date(2026, 11, 3), attendees=[chair], stamp=stamp,
                           decisions=[{"item_id": "1", "decision": f"house {data['id_number']}", "actions": [
                               {"description": f"call {data['phone']} ({data['name']})", "owner": chair,
                                "due_on": date(2026, 12, 1)}]}])
        texts[resident_id] = meeting
    supervisor = {"Authorization": f"Bearer {issue_key(services, 'erasure-supervisor', Role.SUPERVISOR)}",
                  "Accept-Language": "en"}
    http = httpx.Client(base_url=stack["base_url"], timeout=30)
    head = services.head()
    statistics_before = http.get("/statistics", params={"area": "xinqi", "after": head}, headers=supervisor).json()

    erased = rng.sample(sorted(people), ERASED)
    for resident_id in erased:
        answer = http.post(f"/residents/{resident_id}/erasure", headers=supervisor,
                           json={"legal_basis": "data_subject_request", "note": "request 2026-117"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["cases_erased"] == 1
        assert answer.json()["texts_erased"] == (3 if resident_id in texts else 0)  # agenda, minutes, action
    head = services.head()
    for name in services.projections:
        assert services.wait_for(name, head, 60), name
    relay_done(stack, head)

    # The erased: every reader sees [erased]; nothing of them is left anywhere.
    sample = erased[0]
    doc = http.get(f"/residents/{sample}", headers=supervisor).json()
    assert (doc["name"], doc["id_number_masked"], doc["phone"]) == ("[erased]", "[erased]", "[erased]")
    assert http.get(f"/residents/{sample}", headers={**supervisor, "Accept-Language": "zh-CN"}).json()[
        "name"] == "[已删除]"
    case = http.get(f"/disputes/{cases[sample]}", headers=supervisor).json()
    assert case["description"] == "[erased]" and case["category"] == "wages_and_labour"
    assert all(p.get("name") in (None, "[erased]") for p in case["parties"])
    assert all(entry["facts"].get("text") in (None, "[erased]") for entry in case["timeline"])
    agenda = http.get(f"/committees/{committee}/agenda", headers=supervisor).json()
    titles = {m["meeting_id"]: m["agenda"][0]["title"] for m in agenda["past"]}
    actions = {a["meeting_id"]: a["description"] for a in agenda["actions"]}
    for resident_id, meeting in texts.items():
        data = people[resident_id]
        if resident_id in erased:
            assert (titles[meeting], actions[meeting]) == ("[erased]", "[erased]")
        else:
            assert (titles[meeting], actions[meeting]) == (f"a bed for {data['name']}",
                                                           f"call {data['phone']} ({data['name']})")
    assert any(r in erased for r in texts) and any(r not in erased for r in texts)
    statistics_after = http.get("/statistics", params={"area": "xinqi"}, headers=supervisor).json()
    assert statistics_after == statistics_before

    # The others read back in full.
    kept = [r for r in people if r not in set(erased)]
    for resident_id in kept:
        doc = http.get(f"/residents/{resident_id}", headers=supervisor).json()
        data = people[resident_id]
        assert (doc["name"], doc["phone"]) == (data["name"], data["phone"]), resident_id
        assert doc["id_number_masked"] == IdentityNumber(data["id_number"]).masked
    for resident_id in kept[:50]:
        case = http.get(f"/disputes/{cases[resident_id]}", headers=supervisor).json()
        assert people[resident_id]["phone"] in case["description"]

    # Rebuilt views equal the live ones; every aggregate loads from the store again.
    assert_views_equal_rebuild(stack["db"].dsn)
    with psycopg.connect(stack["db"].dsn, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT DISTINCT originator_id FROM liudong_events").fetchall()]
    app.repository.cache = None  # load from the events, not from memory
    for aggregate_id in ids:
        app.repository.get(aggregate_id)

    # Search: a dump of the whole database, the topics, the logs.
    dump = pg_dump(stack["db"].dsn)
    topics = "\n".join(m.value.decode("utf-8", "replace") for m in read_topics(
        stack["cluster"].bootstrap, [f"{stack['cluster'].prefix}.{kind}" for kind in
                                     ("residents", "sites", "disputes", "committees", "subsidies", "areas",
                                      "access", "unknown")]))
    out, err = capfd.readouterr()
    logs = "\n".join([stack["log"].read_text(errors="replace"), stack["cluster"].log("relay"), out, err])
    secrets_of_erased = [value for r in erased for value in people[r].values()]
    hits = {where: find(text, secrets_of_erased) for where, text in
            (("pg_dump", dump), ("kafka", topics), ("logs", logs))}
    assert hits == {"pg_dump": [], "kafka": [], "logs": []}
    # The search does find what is stored in the clear (as hex in the events' bytea, as text
    # in the views, escaped in the messages): the employer, the caseworker's user id.
    assert find(dump, ["Shenzhou Knitting"]) and find(topics, ["Shenzhou Knitting"])
    assert b"erasure-caseworker".hex() in dump and find(logs, ["/erasure"])
    # The search can find: the people kept are there (sealed, so not as plain text in the dump).
    assert find(dump + topics, [people[kept[0]]["id_number"]]) == []  # sealed, never plain
    assert people[kept[0]]["name"] in http.get(f"/residents/{kept[0]}", headers=supervisor).text
    figures.append(f"erasure: {RESIDENTS} residents with a dispute and a note each, {ERASED} erased; "
                   f"{len(secrets_of_erased)} values x 3 encodings searched in a {len(dump) // 1024} KiB pg_dump, "
                   f"{len(topics) // 1024} KiB of Kafka messages and {len(logs) // 1024} KiB of logs: 0 hits; "
                   f"{len(kept)} read back in full; views rebuilt equal; {len(ids)} aggregates reloaded")


def relay_done(stack: dict[str, Any], head: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(stack["db"].dsn, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT position FROM relay_state").fetchone()
            if row and row[0] >= head:
                return
            assert time.monotonic() < deadline, stack["cluster"].log("relay")[-2000:]
            time.sleep(0.2)


def pg_dump(dsn: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    result = subprocess.run([str(POSTGRES_BIN_PATH / "pg_dump"), "--dbname", dsn], capture_output=True, check=True,
                            timeout=300)
    return result.stdout.decode("utf-8", "replace")


def find(text: str, values: list[str]) -> list[str]:
    """Which of the values occur in the text, in any of their forms. (A substring test per
    form: one regular expression of the 900 alternatives took 10 s per 10 MB.)"""
    return sorted({f for v in values for f in forms(v) if f in text})
