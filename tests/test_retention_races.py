"""Retention and erasure under races (found by a review, each with real concurrent requests):
a dispute logged while its resident party was being erased kept their data readable for good; a
retention sweep, working from a list the views gave it, erased a resident who had come back or
had become a party to an open dispute while it ran. Each erasure now judges the records as they
stand, and a record naming an erased resident is decided again and refused."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx
import pytest

from application.services import Services
from tests.conftest import Api
from tests.factories import resident_body, unique_area

ERASURE = {"legal_basis": "data_subject_request", "note": "request 2026-501"}


def dispute(resident: str, area: str) -> dict[str, Any]:
    return {"category": "wages_and_labour", "description": "wages unpaid since May", "area": area,
            "parties": [{"resident_id": resident}, {"name": "Yuanda Dyeing Co.", "kind": "employer"}],
            "occurred_on": "2026-11-01"}


@pytest.mark.slow
def test_disputes_logged_while_their_party_is_erased_are_refused_or_erased_with_them(
        base_url: str, keys: dict[str, str], caseworker: Api, as_role: Any, services: Services) -> None:
    area = unique_area("Race")
    for _ in range(3):
        resident = caseworker.post("/residents", resident_body(area=area)).json()["id"]
        start = threading.Barrier(5)

        def send(n: int, resident: str = resident, start: threading.Barrier = start) -> httpx.Response:
            with httpx.Client(base_url=base_url, timeout=60) as client:
                start.wait()
                if n == 0:
                    return client.post(f"/residents/{resident}/erasure", json=ERASURE,
                                       headers={"Authorization": f"Bearer {keys['supervisor']}"})
                return client.post("/disputes", json=dispute(resident, area),
                                   headers={"Authorization": f"Bearer {keys['caseworker']}"})

        with ThreadPoolExecutor(max_workers=5) as pool:
            erasure, *logged = list(pool.map(send, range(5)))
        assert erasure.status_code == 200, erasure.text
        assert all(r.status_code in (201, 409) for r in logged), [r.text for r in logged]
        assert all(r.json()["rule"] == "already_erased" for r in logged if r.status_code == 409)
        cases = [UUID(r.json()["id"]) for r in logged if r.status_code == 201]
        with services.pool.connection() as conn:  # every case that was stored lost its key with the resident
            kept = conn.execute("SELECT key_id FROM pii_keys WHERE key_id = ANY(%s) AND wrapped IS NOT NULL",
                                (cases,)).fetchall()
        assert kept == [], f"cases whose text outlived the erasure: {kept}"
        auditor = as_role("auditor")
        for case in cases:
            doc = auditor.get(f"/disputes/{case}", headers={"Accept-Language": "en"}).json()
            assert doc["description"] == "[erased]", doc["description"]


def test_a_sweep_working_from_a_stale_list_erases_only_who_is_still_due(
        caseworker: Api, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """The views the sweep lists from lag behind the store: a resident listed as due may have
    come back, or become a party to an open dispute, before the sweep reaches them."""
    area = unique_area("Sweep")

    def departed_long_ago() -> str:
        resident = caseworker.post("/residents", resident_body(area=area, registered_on="2019-03-01")).json()["id"]
        left = caseworker.post(f"/residents/{resident}/departure", {"effective_date": "2021-01-01",
                                                                     "reason": "home"})
        assert left.status_code == 200, left.text
        return str(resident)

    due, returned, held, recent = departed_long_ago(), departed_long_ago(), departed_long_ago(), None
    back = caseworker.post(f"/residents/{returned}/return", {"area": area, "effective_date": "2026-11-01"})
    assert back.status_code == 200, back.text
    case = caseworker.post("/disputes", {**dispute(held, area), "occurred_on": "2020-12-01"})
    assert case.status_code == 201, case.text
    recent = caseworker.post("/residents", resident_body(area=area)).json()["id"]
    assert caseworker.post(f"/residents/{recent}/departure", {"effective_date": "2026-06-01",
                                                              "reason": "home"}).status_code == 200
    stale = [{"id": UUID(r), "departed_on": "2021-01-01"} for r in (due, returned, held, recent)]
    monkeypatch.setattr(services, "retention_due", lambda: stale)
    assert services.retention_sweep() == 1
    erased = {r: caseworker.get(f"/residents/{r}").json().get("erased_on") is not None
              for r in (due, returned, held, recent)}
    assert erased == {due: True, returned: False, held: False, recent: False}


def test_a_record_decided_on_a_resident_erased_before_it_is_stored_is_decided_again_and_refused(
        base_url: str, keys: dict[str, str], caseworker: Api, supervisor: Api,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a review: an election (here an employer's link) decided on a candidate while their
    erasure ran was stored after it, recording something new of an erased person. The residents a
    decision reads wait for an erasure when stored, and one erased meanwhile has it decided again."""
    from domain.operators import Operator

    resident = caseworker.post("/residents", resident_body()).json()["id"]
    employer = supervisor.post("/operators", {"type": "employer", "name": "Shenzhou Knitting", "area": "xinqi",
                                              "contact": "Chen Jie 13800000000"})
    assert employer.status_code == 201, employer.text
    decide = Operator.link_employee
    erasures: list[httpx.Response] = []

    def decided_then_erased(self: Operator, **kwargs: Any) -> None:
        decide(self, **kwargs)  # decided on the resident as they stood
        if not erasures:  # the erasure commits between this decision and its write
            def erase() -> None:
                with httpx.Client(base_url=base_url, timeout=60) as client:
                    erasures.append(client.post(f"/residents/{resident}/erasure", json=ERASURE,
                                                headers={"Authorization": f"Bearer {keys['supervisor']}"}))
            thread = threading.Thread(target=erase)
            thread.start()
            thread.join()

    monkeypatch.setattr(Operator, "link_employee", decided_then_erased)
    linked = caseworker.post(f"/operators/{employer.json()['id']}/employees",
                             {"resident_id": resident, "linked_on": "2026-04-01"})
    assert [e.status_code for e in erasures] == [200], [e.text for e in erasures]
    assert linked.status_code == 409 and linked.json()["rule"] == "already_erased", linked.text
    assert supervisor.get(f"/operators/{employer.json()['id']}").json()["employees"] == []


def test_writes_waiting_for_an_erasure_leave_it_the_connections_it_needs(
        caseworker: Api, supervisor: Api, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by a review: each write naming a resident waited for a running erasure holding a
    connection of the pool; seventy of them left the erasure none, and it failed after 30 s. They
    now wait without one."""
    import time
    from datetime import date

    from application.commands.residency import ResidencyCommands
    from domain.common import Actor, Role, Stamp
    from tests.conftest import NOW

    area = unique_area("Pool")
    # more than the store's connections (the tests' pool_size 30, as many again in overflow)
    residents = [UUID(caseworker.post("/residents", resident_body(area=area)).json()["id"]) for _ in range(70)]
    erased = UUID(caseworker.post("/residents", resident_body(area=area)).json()["id"])
    employer = supervisor.post("/operators", {"type": "employer", "name": "Shenzhou Knitting", "area": "xinqi",
                                              "contact": "Chen Jie 13800000000"}).json()["id"]
    scan = ResidencyCommands._texts_naming
    scanning = threading.Event()

    def slow_scan(self: Any, names: Any) -> Any:  # a long scan over many texts, holding the erasure's lock
        scanning.set()
        time.sleep(2)
        return scan(self, names)

    monkeypatch.setattr(ResidencyCommands, "_texts_naming", slow_scan)
    outcome: dict[str, Any] = {}

    def erase() -> None:
        try:
            services.app.erase_resident(erased, legal_basis="data_subject_request", note="request 2026-90",
                                        stamp=Stamp(Actor("test-supervisor", Role.SUPERVISOR), NOW))
            outcome["erasure"] = "stored"
        except Exception as error:  # the outcome is the assertion
            outcome["erasure"] = repr(error)

    eraser = threading.Thread(target=erase)
    eraser.start()
    assert scanning.wait(30)

    def link(resident: UUID) -> str:
        services.app.link_operator_employee(UUID(employer), resident_id=resident, linked_on=date(2026, 11, 1),
                                            stamp=Stamp(Actor("test-caseworker", Role.CASEWORKER), NOW))
        return "linked"

    with ThreadPoolExecutor(max_workers=len(residents)) as pool:
        linked = list(pool.map(link, residents))
    eraser.join()
    assert outcome == {"erasure": "stored"} and linked == ["linked"] * len(residents)
