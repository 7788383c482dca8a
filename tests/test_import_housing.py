"""Bulk import of housing sites and moves: the API's rules, the same events, a report of
refused rows naming line, field and rule, re-runs that store nothing, and the last bed
still given once when an import races a caseworker."""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from application.cli import cli
from application.import_housing import (
    MOVE_COLUMNS,
    MOVE_OPTIONAL,
    SITE_COLUMNS,
    SITE_OPTIONAL,
    import_moves,
    import_sites,
    site_id_for,
)
from application.imports import import_residents, read_rows
from application.services import Services
from domain.common import Actor, Role, Stamp
from tests.conftest import NOW, Api, define_area
from tests.factories import id_number, resident_body

SITES_HEADER = ",".join(SITE_COLUMNS + SITE_OPTIONAL) + "\n"
MOVES_HEADER = ",".join(MOVE_COLUMNS + MOVE_OPTIONAL) + "\n"
RESIDENTS_HEADER = "id_number,name,phone,hometown,employer,area,registered_on,household_relation\n"


def _rows(header: str, lines: list[str], required: tuple[str, ...], optional: tuple[str, ...]) -> Any:
    return read_rows(io.StringIO(header + "".join(line + "\n" for line in lines)), required, optional)


def _stamp(role: Role = Role.SUPERVISOR) -> Stamp:
    return Stamp(Actor("test-import", role), NOW)


def _code() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


def _sites(services: Services, lines: list[str], **kwargs: Any) -> Any:
    return import_sites(services.app, _rows(SITES_HEADER, lines, SITE_COLUMNS, SITE_OPTIONAL), _stamp(), **kwargs)


def _moves(services: Services, lines: list[str], **kwargs: Any) -> Any:
    return import_moves(services.app, _rows(MOVES_HEADER, lines, MOVE_COLUMNS, MOVE_OPTIONAL),
                        _stamp(Role.CASEWORKER), **kwargs)


def _residents(services: Services, area: str, count: int) -> list[str]:
    numbers = [id_number() for _ in range(count)]
    lines = [f"{n},王{i}伟,13800138000,Henan,,{area},2026-03-01," for i, n in enumerate(numbers)]
    report = import_residents(services.app, read_rows(io.StringIO(RESIDENTS_HEADER + "\n".join(lines) + "\n")),
                              _stamp(Role.CASEWORKER))
    assert report.stored == count, report.refused
    return numbers


def test_sites_are_registered_under_their_codes_bad_rows_reported_and_a_rerun_stores_nothing(
        services: Services, supervisor: Api, stored: Any) -> None:
    area = define_area(services, "Sites")
    good = [_code() for _ in range(3)]
    lines = [f"{c},银杏{i}号集中居住点,{area},银杏路{i}号,village_cooperative,银杏村合作社,{10 + i},canteen;school"
             for i, c in enumerate(good)]
    lines += [
        f"bad code!,Name,{area},1 Road,employer,Hengli,10,",  # line 5: code
        f"{_code()},Name,{area},1 Road,employer,Hengli,0,",  # 6: no beds
        f"{_code()},Name,{area},1 Road,employer,Hengli,many,",  # 7: not a number
        f"{_code()},Name,{area},1 Road,landlord,Hengli,10,",  # 8: operator type
        f"{_code()},Name,{area},1 Road,employer,Hengli,10,canteen;casino",  # 9: facility
        f"{_code()},Name,nowhere,1 Road,employer,Hengli,10,",  # 10: area
        f"{good[0].lower()},Name,{area},1 Road,employer,Hengli,10,",  # 11: the same code again
        f"{_code()},,{area},1 Road,employer,Hengli,10,",  # 12: no name
    ]
    report = _sites(services, lines, batch_size=4)
    assert (report.rows, report.stored, report.already) == (11, 3, 0)
    assert [(r.line, r.field, r.rule) for r in report.refused] == [
        (5, "code", "site_code"), (6, "capacity", "capacity_not_positive"), (7, "capacity", "int_parsing"),
        (8, "operator_type", "operator_type_unknown"), (9, "facilities", "facility_unknown"),
        (10, "area", "unknown_area"), (11, "code", "site_code_repeated"), (12, "name", "required")]
    site = supervisor.get(f"/sites/{site_id_for(good[1])}").json()
    assert (site["name"], site["capacity"], site["facilities"], site["operator"]["type"]) == (
        "银杏1号集中居住点", 11, ["canteen", "school"], "village_cooperative")

    snapshot = stored()
    again = _sites(services, lines)
    assert (again.stored, again.already, len(again.refused)) == (0, 3, 8)
    assert snapshot.unchanged()


def test_moves_follow_the_domain_rules_in_file_order_and_a_rerun_stores_nothing(
        services: Services, caseworker: Api, stored: Any) -> None:
    area = define_area(services, "Moves")
    big, small = _code(), _code()
    assert _sites(services, [f"{big},Big,{area},1 Road,employer,Hengli,10,",
                             f"{small},Small,{area},2 Road,employer,Hengli,1,"]).stored == 2
    a, b, c, d = _residents(services, area, 4)
    lines = [
        f"{a},into_site,2026-04-01,{big},,",  # line 2
        f"{b},into_site,2026-04-01,{small},,",  # 3: takes the small site's only bed
        f"{c},into_site,2026-04-02,{small},,",  # 4: refused, full
        f"{a},into_site,2026-05-01,{small},,",  # 5: refused, full
        f"{b},into_site,2026-05-02,{big},,",  # 6: b leaves the small site for the big one
        f"{a},into_site,2026-05-03,{small},,",  # 7: now a's move finds the bed free
        f"{c},departed,2026-06-01,,,returned to hometown",  # 8
        f"{c},into_site,2026-06-02,{big},,",  # 9: refused, departed
        f"{c},returned,2026-07-01,,{area},",  # 10
        f"{d},private_housing,2026-02-01,,{area},",  # 11: before the registration
        f"{id_number()},into_site,2026-04-01,{big},,",  # 12: nobody has this number
        f"{d},into_site,2026-04-01,NOSUCHSITE,,",  # 13
        f"{d},into_site,2026-12-30,{big},,",  # 14: in the future
        f"{d},moved,2026-04-01,{big},,",  # 15: no such kind
        f"{d},into_site,2026-04-03,,,",  # 16: into a site without its code
    ]
    report = _moves(services, lines, batch_size=3)
    assert (report.rows, report.stored, report.already) == (15, 6, 0)
    assert [(r.line, r.field, r.rule) for r in report.refused] == [
        (4, "", "site_full"), (5, "", "site_full"), (9, "", "resident_departed"),
        (11, "effective_date", "effective_date_before_registration"), (12, "id_number", "resident_unknown"),
        (13, "site_code", "site_unknown"), (14, "effective_date", "effective_date_in_future"),
        (15, "kind", "move_kind"), (16, "site_code", "required")]
    after = services.head()
    big_site = caseworker.get(f"/sites/{site_id_for(big)}").json()
    small_site = caseworker.get(f"/sites/{site_id_for(small)}").json()
    assert (big_site["occupants"], small_site["occupants"], small_site["free_beds"]) == (1, 1, 0)
    listed = caseworker.get("/residents", params={"area": area, "after": after, "limit": 10}).json()["items"]
    status = {r["site_id"]: r["status"] for r in listed}
    assert status[str(site_id_for(small))] == "in_site" and status[str(site_id_for(big))] == "in_site"
    assert sorted(r["status"] for r in listed) == ["in_site", "in_site", "private_housing", "private_housing"]

    snapshot = stored()
    again = _moves(services, lines)
    assert (again.stored, again.already, len(again.refused)) == (0, 6, 9)
    assert snapshot.unchanged()


def test_an_import_and_a_caseworker_race_for_the_last_bed(services: Services, caseworker: Api) -> None:
    """Real concurrency against PostgreSQL: an import's batch and a caseworker's move both
    want a site's one bed; exactly one gets it, and the other is told which rule stopped it."""
    area = define_area(services, "Race")
    for _ in range(3):
        _race_for_a_bed(services, caseworker, area)


def _race_for_a_bed(services: Services, caseworker: Api, area: str) -> None:
    code = _code()
    assert _sites(services, [f"{code},Last bed,{area},1 Road,employer,Hengli,1,"]).stored == 1
    numbers = _residents(services, area, 20)
    created = caseworker.post("/residents", resident_body(area=area))
    assert created.status_code == 201, created.text
    racer = created.json()["id"]
    lines = [f"{n},into_site,2026-04-01,{code},," for n in numbers]
    barrier = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def run_import() -> None:
        barrier.wait()
        outcome["import"] = _moves(services, lines, batch_size=20)

    def run_api() -> None:
        barrier.wait()
        outcome["api"] = caseworker.post(f"/residents/{racer}/moves",
                                         {"site_id": str(site_id_for(code)), "effective_date": "2026-04-01"})

    threads = [threading.Thread(target=run_import), threading.Thread(target=run_api)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    site = caseworker.get(f"/sites/{site_id_for(code)}").json()
    assert (site["occupants"], site["free_beds"]) == (1, 0)
    imported, api = outcome["import"], outcome["api"]
    by_api = 1 if api.status_code == 200 else 0
    if not by_api:
        assert api.status_code in (409, 422) and api.json()["rule"] == "site_full", api.text
    assert imported.stored + by_api == 1, (imported, api.text)
    assert [r.rule for r in imported.refused] == ["site_full"] * (20 - imported.stored)


def test_generate_and_import_a_district_from_the_command_line(database: Any, monkeypatch: Any, tmp_path: Path,
                                                              services: Services) -> None:
    from tests.conftest import TEST_MASTER_KEY

    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    monkeypatch.setenv("LIUDONG_PII_MASTER_KEY", TEST_MASTER_KEY)
    runner = CliRunner()
    # A day long past: the deliberately wrong rows are wrong for reasons that do not pass with
    # time (found by a review: rows dated ten days after a fixed "today" became good days later,
    # and a wrong departure made a later return fail too, so the refusals outnumbered them).
    made = runner.invoke(cli, ["generate", "district", "--out", str(tmp_path), "--residents", "1300", "--seed", "5",
                               "--today", "2026-06-30"])
    assert made.exit_code == 0, made.output
    wrong = [int(n) for n in re.findall(r"\((\d+) deliberately wrong\)", made.output)]
    assert len(wrong) == 2, made.output
    with (tmp_path / "sites.csv").open(encoding="utf-8") as f:
        sites = list(csv.DictReader(f))
    with (tmp_path / "moves.csv").open(encoding="utf-8") as f:
        moves = list(csv.DictReader(f))
    assert len(sites) == 70 and {s["operator_type"] for s in sites} <= {
        "village_cooperative", "employer", "government_entrusted"}
    assert {m["kind"] for m in moves} >= {"into_site", "departed"}
    assert [m["effective_date"] for m in moves] == sorted(m["effective_date"] for m in moves)
    # Codes shared with other tests' imports would collide: this database has its own district.
    outputs = {}
    for kind, expected in zip(("sites", "residents", "moves"), [0, *wrong], strict=True):
        result = runner.invoke(cli, ["import", kind, str(tmp_path / f"{kind}.csv")])
        assert result.exit_code in (0, 1), result.output
        outputs[kind] = result.output
        with (tmp_path / f"{kind}.refused.csv").open(encoding="utf-8") as f:
            refused = list(csv.DictReader(f))
        assert (result.exit_code == 1) == bool(refused)
        assert len(refused) == expected, (kind, refused)
    assert "70 sites registered" in outputs["sites"] or "70 stored before" in outputs["sites"]
    assert " moves recorded" in outputs["moves"]
    again = runner.invoke(cli, ["import", "moves", str(tmp_path / "moves.csv")])
    assert " 0 moves recorded" in again.output, again.output


def test_a_supervisor_uploads_sites_and_moves(services: Services, http: Any, keys: dict[str, str],
                                              supervisor: Api) -> None:
    import time

    area = define_area(services, "Upload")
    code = _code()
    (number,) = _residents(services, area, 1)
    auth = {"Authorization": f"Bearer {keys['supervisor']}", "Content-Type": "text/csv"}

    def follow(response: Any) -> dict[str, Any]:
        assert response.status_code == 202, response.text
        for _ in range(200):
            job = supervisor.get(response.headers["Location"]).json()
            if job["status"] != "running":
                return dict(job)
            time.sleep(0.05)
        raise AssertionError("the import did not finish")

    sites = follow(http.post("/imports", params={"kind": "sites"}, headers=auth,
                             content=(SITES_HEADER + f"{code},Upload,{area},1 Road,employer,Hengli,5,\n").encode()))
    assert (sites["kind"], sites["status"], sites["registered"]) == ("sites", "done", 1)
    moves = follow(http.post("/imports", params={"kind": "moves"}, headers=auth, content=(
        MOVES_HEADER + f"{number},into_site,2026-04-01,{code},,\n{number},into_site,2026-04-02,NOPE,,\n").encode()))
    assert (moves["kind"], moves["registered"]) == ("moves", 1)
    assert [(r["line"], r["rule"]) for r in moves["refused"]] == [(3, "site_unknown")]
    wrong_header = http.post("/imports", params={"kind": "moves"}, headers=auth, content=SITES_HEADER.encode())
    assert wrong_header.status_code == 422 and wrong_header.json()["rule"] == "csv_header"
    assert http.post("/imports", params={"kind": "cats"}, headers=auth, content=b"x\n").status_code == 422


def test_a_moves_import_snapshots_each_site_once_at_the_end(services: Services, database: Any,
                                                            caseworker: Api) -> None:
    from tests.test_snapshots import _snapshot_rows

    area = define_area(services, "Snapshots")
    code = _code()
    assert _sites(services, [f"{code},Busy,{area},1 Road,employer,Hengli,200,"]).stored == 1
    numbers = _residents(services, area, 130)
    report = _moves(services, [f"{n},into_site,2026-04-01,{code},," for n in numbers], batch_size=50)
    assert report.stored == 130
    # Not every 100 events while the import saved, but once, at the version it reached.
    assert [v for v, _ in _snapshot_rows(database.dsn, site_id_for(code))] == [131]
    assert services.app.snapshotting_intervals  # the application snapshots again
    site = caseworker.get(f"/sites/{site_id_for(code)}").json()
    assert (site["occupants"], site["version"]) == (130, 131)


def test_departures_and_returns_by_import_change_committee_seats_and_active_members_at_once(
        services: Services, caseworker: Api, supervisor: Api) -> None:
    """As the API's departure and return do (issue 10, rule 2): the seat is vacant the day
    the import records the departure, not when a later sweep reconciles it; the active
    member is lost with it; a return takes the seat again."""
    area = define_area(services, "Seats")
    first, second = id_number(), id_number()
    rid = []
    for number in (first, second):
        made = caseworker.post("/residents", resident_body(id_number=number, area=area))
        assert made.status_code == 201, made.text
        rid.append(made.json()["id"])
    committee = supervisor.post("/committees", {
        "name": f"C-{uuid.uuid4().hex[:6]}", "area": area, "established_on": "2026-03-10",
        "members": [{"name": "王伟"}, {"name": "R0", "resident_id": rid[0]}, {"name": "R1", "resident_id": rid[1]}]})
    assert committee.status_code == 201, committee.text
    cid = committee.json()["id"]
    member = caseworker.post("/active-members", {"resident_id": rid[0], "identified_on": "2026-03-15"})
    assert member.status_code == 201, member.text
    report = _moves(services, [f"{first},departed,2026-06-01,,,went home",
                               f"{second},departed,2026-06-02,,,went home",
                               f"{second},returned,2026-07-01,,{area},"])
    assert (report.stored, report.refused) == (3, [])
    doc = supervisor.get(f"/committees/{cid}").json()
    assert {m["name"]: m["status"] for m in doc["members"]} == {"王伟": "active", "R0": "vacant", "R1": "active"}
    history = supervisor.get(f"/committees/{cid}/history").json()["items"]
    assert [(e["event"], e["effective_date"]) for e in history[-3:]] == [
        ("ManagementCommittee.SeatVacated", "2026-06-01"), ("ManagementCommittee.SeatVacated", "2026-06-02"),
        ("ManagementCommittee.SeatResumed", "2026-07-01")]
    lost = caseworker.get(f"/active-members/{member.json()['id']}").json()
    assert (lost["status"], lost["lost_on"], lost["lost_reason"]) == ("lost", "2026-06-01", "departed")


def test_a_departure_reason_or_a_landlord_over_two_lines_is_taken_as_the_api_takes_it(
        services: Services, caseworker: Api) -> None:
    """Found by a review: the API takes a reason or a landlord with a line break (its Reason and
    HousingIn.landlord are free text), the moves import refused it (control_characters)."""
    area = define_area(services, "Lines")
    first, second = _residents(services, area, 2)
    lines = [f'{first},departed,2026-06-01,,,"went home:\nfather ill"',
             f'{second},private_housing,2026-06-01,,{area},,rented,,"陈建国\n(his son collects the rent)"',
             f"{second},private_housing,2026-06-02,,{area},,rented,,\"陈建国\x01\""]
    report = _moves(services, lines)
    assert report.stored == 2, report.refused
    assert [(r.field, r.rule) for r in report.refused] == [("landlord", "control_characters")]
    holder = services.app.repository.get(services.app.vault.claim_id(first)).holder()
    resident = caseworker.get(f"/residents/{holder}", params={"after": services.head()}).json()
    assert resident["departure_reason"] == "went home:\nfather ill"


def test_two_rented_rooms_on_one_day_are_two_moves_and_a_rerun_stores_neither_again(services: Services) -> None:
    """Found by a review: the row's key left out the address and landlord, so the second room
    was refused as row_repeated (and a re-run counted it as stored before)."""
    area = define_area(services, "Rooms")
    (number,) = _residents(services, area, 1)
    lines = [f"{number},private_housing,2026-06-01,,{area},,rented,3 Lane 1,陈建国",
             f"{number},private_housing,2026-06-01,,{area},,rented,7 Lane 2,李秀英",
             f"{number},private_housing,2026-06-01,,{area},,rented,7 Lane 2,李秀英"]
    report = _moves(services, lines)
    assert report.stored == 2
    assert [(r.line, r.rule) for r in report.refused] == [(4, "row_repeated")]
    again = _moves(services, lines[:2])
    assert (again.stored, again.already, again.refused) == (0, 2, [])


def test_a_refused_move_names_the_csv_column_not_the_apis_field_path(services: Services) -> None:
    """Found by a review: the report named housing.landlord, the API's path, for the landlord
    column (as the sites import already named operator_type, not operator.type)."""
    area = define_area(services, "Columns")
    (number,) = _residents(services, area, 1)
    report = _moves(services, [f"{number},private_housing,2026-06-01,,{area},,rented,,",
                               f"{number},private_housing,2026-06-01,,{area},,villa,,",
                               f"{number},private_housing,2026-06-01,,{area},,site,,"])
    assert [(r.line, r.field, r.rule) for r in report.refused] == [
        (2, "landlord", "rented_housing_unidentified"), (3, "housing_kind", "housing_kind"),
        (4, "housing_kind", "housing_site_needs_site_id")]


def test_a_generated_district_has_the_seeds_shape_at_any_size(tmp_path: Path) -> None:
    """Issue 9's district, scaled: about 80 of 260 in sites and most of the rest renting, a year
    of moves, departures and returns ending on the day asked for, and a year of disputes (found
    by a review: of 20,000 residents 156 rented and about 13,900 had housing "other"; no disputes)."""
    from datetime import date, timedelta

    from application.areas import seed_areas
    from application.generate import DISPUTE_COLUMNS, generate_district

    today = date(2026, 6, 30)
    made = generate_district(tmp_path, residents=5200, areas=[a["code"] for a in seed_areas()], seed=11, today=today)
    with (tmp_path / "moves.csv").open(encoding="utf-8") as f:
        moves = list(csv.DictReader(f))
    first: dict[str, dict[str, str]] = {}
    for m in moves:
        first.setdefault(m["id_number"], m)
    in_sites = sum(1 for m in first.values() if m["kind"] == "into_site")
    renting = sum(1 for m in first.values() if m["housing_kind"] == "rented")
    assert 5200 * 60 / 260 < in_sites < 5200 * 100 / 260, in_sites
    assert renting > 0.75 * (5200 - in_sites), (renting, in_sites)
    kinds = {m["kind"] for m in moves}
    assert kinds == {"into_site", "private_housing", "departed", "returned"}
    assert all(m["address"] and m["landlord"] for m in moves if m["housing_kind"] == "rented")
    days = [date.fromisoformat(m["effective_date"]) for m in moves]
    assert max(days) == today and sum(1 for d in days if d > today - timedelta(days=365)) > 500
    with (tmp_path / "disputes.csv").open(encoding="utf-8") as f:
        disputes = list(csv.DictReader(f))
    assert made.dispute_rows == len(disputes) > 30 and tuple(disputes[0]) == DISPUTE_COLUMNS
    assert all(today - timedelta(days=366) <= date.fromisoformat(d["occurred_on"]) <= today for d in disputes)


def test_a_departure_a_committee_refuses_stores_nothing_not_even_with_a_later_row(
        services: Services, caseworker: Api, supervisor: Api) -> None:
    """Found by a review: the resident departed in memory before the committee refused the
    seat's vacancy, and the next row of the batch saved that departure although the report
    called it refused."""
    area = define_area(services, "Undo")
    number = id_number()
    made = caseworker.post("/residents", resident_body(id_number=number, area=area, registered_on="2026-01-10"))
    assert made.status_code == 201, made.text
    rid = made.json()["id"]
    committee = supervisor.post("/committees", {"name": f"C-{uuid.uuid4().hex[:6]}", "area": area,
                                                "established_on": "2026-05-01",
                                                "members": [{"name": "R", "resident_id": rid}]})
    assert committee.status_code == 201, committee.text
    before = services.head()
    report = _moves(services, [f"{number},departed,2026-03-01,,,went home",
                               f"{number},returned,2026-04-01,,{area},"])
    assert report.stored == 0 and [r.rule for r in report.refused] == [
        "departed_before_joining_committee", "resident_not_departed"], report.refused
    assert services.head() == before
    resident = caseworker.get(f"/residents/{rid}").json()
    assert resident["status"] != "departed"
