"""Active members (骨干) over HTTP: identified once per resident, trained, appointed, liaised
with their employer, lost (by a departure in the same transaction); the per-site view and
the monthly statistics equal a fold of the events."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import httpx

from application.services import Services
from domain.active_members import active_member_id
from tests.conftest import Api
from tests.factories import resident_body, site_body, unique_area

NOBODY = "00000000-0000-0000-0000-000000000001"


def problem_names(response: httpx.Response, status: int, rule: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert rule in [body.get("rule")] + [e.get("rule") for e in body.get("errors", [])], body
    if field is not None:
        assert field in [e.get("field") for e in body.get("errors", [])], body


def resident(caseworker: Api, area: str, site: str | None = None) -> str:
    rid = str(caseworker.post("/residents", resident_body(area=area, registered_on="2025-06-01")).json()["id"])
    if site is not None:
        moved = caseworker.post(f"/residents/{rid}/moves", {"site_id": site, "effective_date": "2025-07-01"})
        assert moved.status_code == 200, moved.text
    return rid


def identify(caseworker: Api, rid: str, on: str = "2025-09-01", **body: Any) -> dict[str, Any]:
    response = caseworker.post("/active-members", {"resident_id": rid, "identified_on": on, **body})
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/active-members/{response.json()['id']}"
    return dict(response.json())


def test_an_active_member_is_identified_trained_appointed_liaised_and_lost(caseworker: Api,
                                                                            supervisor: Api) -> None:
    area = unique_area("AM")
    site = supervisor.post("/sites", site_body(area=area)).json()["id"]
    rid = resident(caseworker, area, site)
    member = identify(caseworker, rid)
    assert member["id"] == str(active_member_id(UUID(rid)))
    mid = member["id"]
    for path, body in (("trainings", {"course": "mediation basics", "trained_on": "2025-10-01"}),
                       ("appointments", {"role": "group_leader", "appointed_on": "2025-10-15"}),
                       ("appointments", {"role": "representative", "appointed_on": "2025-11-01"}),
                       ("role-endings", {"role": "representative", "ended_on": "2026-01-10"}),
                       ("employer-liaisons", {"employer": "Hengli Textiles", "agreed_on": "2025-10-20",
                                              "note": "day shifts on meeting Saturdays"})):
        response = caseworker.post(f"/active-members/{mid}/{path}", body)
        assert response.status_code == 200, (path, response.text)
    doc = caseworker.get(f"/active-members/{mid}").json()
    assert (doc["resident_id"], doc["site_id"], doc["area"], doc["status"]) == (rid, site, area, "active")
    assert [r["role"] for r in doc["roles"]] == ["group_leader"]
    assert doc["employer_liaisons"][0]["note"] == "day shifts on meeting Saturdays"
    assert doc["trainings"] == [{"course": "mediation basics", "trained_on": "2025-10-01"}]
    lost = caseworker.post(f"/active-members/{mid}/loss", {"lost_on": "2026-02-01", "reason": "resigned"})
    assert lost.status_code == 200, lost.text
    doc = caseworker.get(f"/active-members/{mid}").json()
    assert (doc["status"], doc["lost_on"], doc["lost_reason"], doc["roles"]) == ("lost", "2026-02-01", "resigned",
                                                                                   [])
    listed = caseworker.get("/active-members", params={"site_id": site, "after": lost.json()["position"]}).json()
    assert [(i["id"], i["status"], i["trainings"], i["employer"]) for i in listed["items"]] == [
        (mid, "lost", 1, "Hengli Textiles")]
    history = supervisor.get(f"/residents/{rid}/history").json()
    assert history  # the resident's own history is unchanged by the member's events


def test_the_employer_note_is_sealed_in_the_store_and_hidden_in_the_history_from_who_may_not_read_it(
        caseworker: Api, services: Services, as_role: Any) -> None:
    rid = resident(caseworker, unique_area("AM"))
    mid = identify(caseworker, rid)["id"]
    caseworker.post(f"/active-members/{mid}/employer-liaisons",
                    {"employer": "Hengli", "agreed_on": "2025-10-20", "note": "Wang's night shifts swapped"})
    with services.pool.connection() as conn:
        (row,) = conn.execute("SELECT state FROM liudong_events WHERE originator_id = %s AND originator_version = 2",
                              (UUID(mid),)).fetchall()
    assert b"night shifts" not in bytes(row["state"])

    def reasons(api: Api) -> list[Any]:
        return [e["reason"] for e in api.get(f"/active-members/{mid}/history").json()["items"]]

    assert reasons(caseworker)[-1] == "Wang's night shifts swapped"
    assert reasons(as_role("api_consumer"))[-1] is None  # sealed personal data: hidden without the pii scope
    # Each read of the member is in the access log, under the resident (found by a review).
    assert caseworker.get(f"/active-members/{mid}").status_code == 200
    with services.pool.connection() as conn:
        logged = conn.execute("SELECT route, detail FROM access_log WHERE resident_id = %s ORDER BY id DESC LIMIT 1",
                              (UUID(rid),)).fetchone()
    assert logged is not None and (logged["route"], logged["detail"]) == (f"GET /active-members/{mid}", mid)
    # ...and each read of its history, which gives the liaison notes (found by a review: unlogged)
    with services.pool.connection() as conn:
        routes = [r["route"] for r in conn.execute("SELECT route FROM access_log WHERE resident_id = %s",
                                                     (UUID(rid),)).fetchall()]
    assert routes.count(f"GET /active-members/{mid}/history") == 2  # the caseworker's and the api_consumer's


def test_refused_commands_name_their_rule_and_store_nothing(caseworker: Api, stored: Any) -> None:
    area = unique_area("AM")
    gone = resident(caseworker, area)
    caseworker.post(f"/residents/{gone}/departure", {"effective_date": "2025-08-01", "reason": "went home"})
    rid = resident(caseworker, area)
    mid = identify(caseworker, rid)["id"]
    caseworker.post(f"/active-members/{mid}/appointments", {"role": "group_leader", "appointed_on": "2025-10-01"})
    snapshot = stored()
    cases = [
        (caseworker.post("/active-members", {"resident_id": gone, "identified_on": "2025-09-01"}),
         409, "resident_departed", None),
        (caseworker.post("/active-members", {"resident_id": rid, "identified_on": "2025-09-01"}),
         409, "already_identified", None),
        (caseworker.post("/active-members", {"resident_id": NOBODY, "identified_on": "2025-09-01"}),
         422, "unknown_reference", "resident_id"),
        (caseworker.post("/active-members", {"resident_id": rid, "identified_on": "2025-09-01", "area": area,
                                             "site_id": NOBODY}), 422, "site_or_area", "area"),
        (caseworker.post(f"/active-members/{mid}/trainings", {"course": "x", "trained_on": "2099-01-01"}),
         422, "effective_date_in_future", "trained_on"),
        (caseworker.post(f"/active-members/{mid}/trainings", {"course": "x", "trained_on": "2025-08-01"}),
         409, "date_before_identification", None),
        (caseworker.post(f"/active-members/{mid}/appointments", {"role": "group_leader",
                                                                 "appointed_on": "2025-10-02"}),
         409, "role_already_held", None),
        (caseworker.post(f"/active-members/{mid}/appointments", {"role": "mayor", "appointed_on": "2025-10-02"}),
         422, "validation", "role"),
        (caseworker.post(f"/active-members/{mid}/role-endings", {"role": "representative",
                                                                 "ended_on": "2025-10-02"}),
         409, "role_not_held", None),
        (caseworker.post(f"/active-members/{mid}/loss", {"lost_on": "2025-10-02", "reason": "bored"}),
         422, "validation", "reason"),
        (caseworker.get("/active-members/monthly", params={"from": "2026-05", "to": "2026-01"}),
         422, "month_range", "from"),
    ]
    for response, status, rule, field in cases:
        problem_names(response, status, rule, field)
    assert snapshot.unchanged()
    caseworker.post(f"/active-members/{mid}/loss", {"lost_on": "2025-11-01", "reason": "moved_away"})
    snapshot = stored()
    refused = caseworker.post(f"/active-members/{mid}/appointments",
                              {"role": "representative", "appointed_on": "2025-11-02"})
    problem_names(refused, 409, "active_member_lost")
    assert snapshot.unchanged()
    unknown = caseworker.post(f"/active-members/{NOBODY}/trainings", {"course": "x", "trained_on": "2025-10-01"})
    assert unknown.status_code == 404


def test_a_departure_loses_the_active_member_in_the_same_transaction(caseworker: Api, services: Services) -> None:
    area = unique_area("AM")
    rid = resident(caseworker, area)
    mid = identify(caseworker, rid)["id"]
    caseworker.post(f"/active-members/{mid}/appointments", {"role": "representative", "appointed_on": "2025-10-01"})
    departed = caseworker.post(f"/residents/{rid}/departure", {"effective_date": "2026-03-01", "reason": "home"})
    assert departed.status_code == 200, departed.text
    doc = caseworker.get(f"/active-members/{mid}").json()
    assert (doc["status"], doc["lost_on"], doc["lost_reason"], doc["roles"]) == ("lost", "2026-03-01", "departed", [])
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT originator_id, topic, xmin::text AS tx FROM liudong_events WHERE originator_id = ANY(%s)"
            " AND (topic LIKE %s OR topic LIKE %s)",
            ([UUID(rid), UUID(mid)], "%DepartedDistrict", "%ActiveMember.Lost")).fetchall()
    assert len(rows) == 2 and len({r["tx"] for r in rows}) == 1, rows
    summary = caseworker.get("/active-members/sites", params={"area": area, "on": "2026-03-31",
                                                                "after": departed.json()["position"]}).json()
    (row,) = summary["items"]
    assert (row["active_members"], row["lost_last_12_months"], row["succession_gaps"]) == (
        0, 1, ["group_leader", "representative", "committee_member"])


def test_two_concurrent_identifications_of_one_resident_store_one(base_url: str, keys: dict[str, str],
                                                                  caseworker: Api, services: Services) -> None:
    rid = resident(caseworker, unique_area("AM"))

    def identify_once(_: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            return client.post("/active-members", json={"resident_id": rid, "identified_on": "2025-09-01"},
                               headers={"Authorization": f"Bearer {keys['caseworker']}"})

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(identify_once, range(2)))
    assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
    (refused,) = [r for r in responses if r.status_code == 409]
    assert refused.json()["rule"] == "already_identified"
    assert refused.json()["existing_active_member_id"] == str(active_member_id(UUID(rid)))
    assert len(list(services.app.events.get(active_member_id(UUID(rid))))) == 1


def test_succession_gaps_and_the_monthly_loss_rate(caseworker: Api, supervisor: Api) -> None:
    area = unique_area("AM")
    site = supervisor.post("/sites", site_body(area=area)).json()["id"]
    members = [identify(caseworker, resident(caseworker, area, site), on="2025-09-01")["id"] for _ in range(4)]
    caseworker.post(f"/active-members/{members[0]}/appointments",
                    {"role": "group_leader", "appointed_on": "2025-10-01"})
    caseworker.post(f"/active-members/{members[1]}/appointments",
                    {"role": "committee_member", "appointed_on": "2025-10-01"})
    caseworker.post(f"/active-members/{members[2]}/trainings", {"course": "law", "trained_on": "2025-10-03"})
    last = caseworker.post(f"/active-members/{members[1]}/loss", {"lost_on": "2025-10-20", "reason": "resigned"})
    summary = caseworker.get("/active-members/sites", params={"site_id": site, "on": "2026-01-01",
                                                                "after": last.json()["position"]}).json()
    (row,) = summary["items"]
    assert (row["site_id"], row["active_members"], row["lost_last_12_months"]) == (site, 3, 1)
    assert (row["roles_held"], row["succession_gaps"]) == (["group_leader"], ["representative", "committee_member"])
    months = caseworker.get("/active-members/monthly", params={"area": area, "from": "2025-09", "to": "2025-11"})
    assert months.status_code == 200, months.text
    got = [(m["month"], m["identified"], m["trained"], m["appointed"], m["lost"], m["active_at_start"],
            m["loss_rate"]) for m in months.json()["items"]]
    assert got == [("2025-09", 4, 0, 0, 0, 0, None), ("2025-10", 0, 1, 2, 1, 4, 0.25),
                   ("2025-11", 0, 0, 0, 0, 3, 0.0)]


def fold(events: list[Any]) -> dict[str, Any]:
    """What a member's row must say, from their events alone."""
    row: dict[str, Any] = {}
    roles: set[str] = set()
    for e in events:
        kind = type(e).__name__
        if kind == "Identified":
            row = {"resident_id": e.resident_id, "site_id": e.site_id, "area": e.area, "status": "active",
                   "identified_on": e.identified_on, "trainings": 0, "lost_on": None, "lost_reason": None,
                   "employer": None}
        elif kind == "Trained":
            row["trainings"] += 1
        elif kind == "Appointed":
            roles.add(e.role)
        elif kind == "RoleEnded":
            roles.discard(e.role)
        elif kind == "EmployerLiaisonAgreed":
            row["employer"] = e.employer
        elif kind == "Lost":
            row.update(status="lost", lost_on=e.lost_on, lost_reason=e.reason)
            roles.clear()
        row["version"] = e.originator_version
    row["roles"] = sorted(roles)
    return row


def test_the_view_equals_a_fold_of_each_members_events(caseworker: Api, services: Services) -> None:
    area = unique_area("AM")
    ids = [identify(caseworker, resident(caseworker, area))["id"] for _ in range(3)]
    script = [(0, "appointments", {"role": "group_leader", "appointed_on": "2025-10-01"}),
              (0, "trainings", {"course": "a", "trained_on": "2025-10-02"}),
              (0, "role-endings", {"role": "group_leader", "ended_on": "2025-12-01"}),
              (1, "appointments", {"role": "representative", "appointed_on": "2025-10-01"}),
              (1, "employer-liaisons", {"employer": "E", "agreed_on": "2025-10-05", "note": "n"}),
              (1, "loss", {"lost_on": "2025-11-01", "reason": "moved_away"}),
              (1, "appointments", {"role": "group_leader", "appointed_on": "2025-11-05"}),  # refused: lost
              (2, "trainings", {"course": "b", "trained_on": "2025-09-10"})]
    for who, path, body in script:
        caseworker.post(f"/active-members/{ids[who]}/{path}", body)
    position = services.head()
    assert services.wait_for("active_members", position, 20)
    listed = {i["id"]: i for i in caseworker.get("/active-members", params={"area": area}).json()["items"]}
    for mid in ids:
        expected = fold(list(services.app.events.get(UUID(mid))))
        row = listed[mid]
        got = {k: row[k] for k in expected}
        expected = {k: (str(v) if isinstance(v, UUID) or hasattr(v, "isoformat") else v) for k, v in expected.items()}
        assert got == expected


def test_the_sweep_loses_an_active_member_whose_departure_never_reached_them(
    caseworker: Api, services: Services, stamp: Any
) -> None:
    """A departure recorded by an import of moves (or racing the identification) leaves the
    member active; ``liudong committees sweep`` loses them once, dated by the departure."""
    from domain.residents import Resident

    area = unique_area("Sweep")
    rid = resident(caseworker, area)
    member = identify(caseworker, rid)
    record = services.app.load(Resident, UUID(rid))
    record.depart(effective_date=record.since, reason="import", stamp=stamp)  # as an import records it
    services.app.save(record)
    assert services.wait_for("active_members", services.head(), 30)
    assert services.wait_for("residents", services.head(), 30)
    assert services.active_member_sweep() >= 1
    doc = caseworker.get(f"/active-members/{member['id']}").json()
    assert doc["status"] == "lost" and doc["lost_on"] == max(record.since.isoformat(), "2025-09-01")
    assert services.wait_for("active_members", services.head(), 30)
    services.active_member_sweep()
    assert caseworker.get(f"/active-members/{member['id']}").json()["version"] == doc["version"]  # once


def test_an_identification_racing_a_departure_never_leaves_a_departed_resident_active(
    caseworker: Api, services: Services
) -> None:
    """Both write the resident (the identification records it on them), so the one decided
    second sees the other: either the departure loses the new member, or the identification
    is refused because the resident has gone."""
    from domain.active_members import ActiveMember

    area = unique_area("Race")
    for _ in range(6):
        rid = resident(caseworker, area)

        def act(n: int, rid: str = rid) -> httpx.Response:
            if n == 0:
                return caseworker.post("/active-members", {"resident_id": rid, "identified_on": "2025-09-01"})
            return caseworker.post(f"/residents/{rid}/departure", {"effective_date": "2025-10-01", "reason": "home"})

        with ThreadPoolExecutor(max_workers=2) as pool:
            identified, departed = pool.map(act, range(2))
        assert departed.status_code == 200, departed.text
        if identified.status_code == 201:
            member = services.app.load(ActiveMember, UUID(identified.json()["id"]))
            assert member.lost_on is not None and member.lost_reason == "departed"
        else:
            assert identified.status_code == 409 and identified.json()["rule"] == "resident_departed"


def test_the_list_of_members_pages_with_a_cursor_and_counts_them_all(caseworker: Api, supervisor: Api) -> None:
    """Found by a review: the list stopped at 1,000 members and gave their count as the total."""
    area = unique_area("AMP")
    sites = [supervisor.post("/sites", site_body(area=area)).json()["id"] for _ in range(2)]
    made = [identify(caseworker, resident(caseworker, area, site), on=on)
            for site in sites for on in ("2025-09-01", "2025-09-02")]
    made.append(identify(caseworker, resident(caseworker, area), area=area))  # no site: last
    members = [m["id"] for m in made]
    seen: list[str] = []
    query: dict[str, Any] = {"area": area, "limit": 2, "after": made[-1]["position"]}
    while True:
        page = caseworker.get("/active-members", params=query).json()
        assert (page["total"], page["total_estimated"]) == (5, False)
        seen += [i["id"] for i in page["items"]]
        if page["next"] is None:
            break
        query["cursor"] = page["next"]
    assert sorted(seen) == sorted(members) and len(seen) == 5
    assert caseworker.get("/active-members", params={"area": area}).json()["next"] is None  # 1,000 a page
    problem_names(caseworker.get("/active-members", params={"cursor": "nonsense"}), 422, "invalid_cursor", "cursor")
