"""The population at a moment and how late changes are recorded: counts from the
residence-periods view equal an independent fold of the events, as known at any time and
as true on any date, for every reader within their areas."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.services import Services
from domain.common import OFFICE_TZ, Actor, DomainError, Role, Stamp
from domain.identity import IdentityNumber
from projections.residence_periods import COUNTS_FROM_ROWS, PopulationQuery, population, population_from_rows
from tests.conftest import Api, issue_key
from tests.factories import id_number, unique, unique_area

SHANGHAI = ZoneInfo("Asia/Shanghai")
Place = tuple[str, UUID | None]


def at(text: str) -> datetime:
    """A moment in the office's time zone: ``at("2026-03-01 09:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def clerk(user: str, when: datetime) -> Stamp:
    return Stamp(Actor(user, Role.CASEWORKER), when)


def caught_up(services: Services) -> int:
    head = services.head()
    for view in ("residence_periods", "reporting_delays"):
        assert services.wait_for(view, head, 20), f"{view} did not reach {head}"
    return head


class District:
    """Records straight through the application, each command with its own recorded time."""

    def __init__(self, services: Services, user: str = "pop-caseworker") -> None:
        self.app = services.app
        self.user = user
        self.residents: list[UUID] = []

    def site(self, area: str, capacity: int = 50) -> UUID:
        result = self.app.register_site(name=unique("Pop"), area=area, address="1 Road", operator_type="employer",
                                        operator_name="Hengli", capacity=capacity, facilities=[],
                                        stamp=Stamp(Actor("pop-supervisor", Role.SUPERVISOR), at("2025-01-01 09:00")))
        return result.id

    def register(self, area: str, on: date, when: datetime) -> UUID:
        rid = self.app.register_resident(
            id_number=IdentityNumber.parse(id_number()), name=unique("Pop"), phone="13800138000", hometown="Henan",
            employer=None, area=area, registered_on=on, stamp=clerk(self.user, when)).id
        self.residents.append(rid)
        return rid

    def into_site(self, rid: UUID, site: UUID, on: date, when: datetime) -> int:
        return self.app.move_resident_into_site(rid, site, on, clerk(self.user, when)).position

    def private(self, rid: UUID, area: str, on: date, when: datetime) -> int:
        return self.app.move_resident_to_private_housing(rid, area, on, clerk(self.user, when)).position

    def depart(self, rid: UUID, on: date, when: datetime) -> int:
        return self.app.record_departure(rid, on, "went home", clerk(self.user, when)).position

    def back(self, rid: UUID, area: str, on: date, when: datetime) -> int:
        return self.app.record_return(rid, area, on, clerk(self.user, when)).position


# -- the independent fold ------------------------------------------------------------------------
def steps_of(events: list[Any], known_at: datetime | None) -> list[tuple[date, Place | None]]:
    """A resident's places from the events recorded by ``known_at``: (from which date, where)."""
    steps: list[tuple[date, Place | None]] = []
    for e in events:
        if known_at is not None and e.recorded_at > known_at:
            continue
        kind = type(e).__name__
        if kind == "Registered":
            steps.append((e.registered_on, (e.area, None)))
        elif kind == "MovedIntoSite":
            steps.append((e.effective_date, (e.area, e.site_id)))
        elif kind in ("MovedToPrivateHousing", "Returned"):
            steps.append((e.effective_date, (e.area, None)))
        elif kind == "DepartedDistrict":
            steps.append((e.effective_date, None))
    return steps


def histories(services: Services, residents: list[UUID]) -> dict[UUID, list[Any]]:
    return {rid: list(services.app.events.get(rid)) for rid in residents}


def folded(events: dict[UUID, list[Any]], known_at: datetime | None, day: date, by_site: bool) -> dict[Place, int]:
    """Residents per place on ``day`` from the events recorded by ``known_at``."""
    counts: Counter[Place] = Counter()
    for history in events.values():
        place = None
        for on, where in steps_of(history, known_at):
            if on <= day:
                place = where
        if place is not None:
            counts[place if by_site else (place[0], None)] += 1
    return dict(counts)


def counted(rows: list[dict[str, Any]]) -> dict[Place, int]:
    return {(r["area"], r.get("site_id")): r["residents"] for r in rows}


def from_view(services: Services, areas: list[str], known_at: datetime | None, day: date,
              by_site: bool) -> tuple[dict[Place, int], dict[Place, int]]:
    """The endpoint's count and the rows' own definition, within ``areas``."""
    query = PopulationQuery(effective_at=day, known_at=known_at, by_site=by_site, areas=areas)
    with services.pool.connection() as conn:
        return counted(population(conn, query, services.today())), counted(population_from_rows(conn, query))


def checkpoints(services: Services, areas: list[str]) -> tuple[list[Any], list[Any]]:
    """The live day and month checkpoints, and the same summed again from the rows."""
    columns = "axis, span, starts_on, area, site_id, change"
    with services.pool.connection() as conn, conn.transaction():
        live = conn.execute(f"SELECT {columns} FROM residence_counts WHERE area = ANY(%s) AND change <> 0"
                            " ORDER BY 1, 2, 3, 4, 5", (areas,)).fetchall()
        conn.execute("CREATE TEMP TABLE recount (LIKE residence_counts INCLUDING ALL) ON COMMIT DROP")
        conn.execute(COUNTS_FROM_ROWS.replace("INSERT INTO residence_counts", "INSERT INTO recount"))
        again = conn.execute(f"SELECT {columns} FROM recount WHERE area = ANY(%s) AND change <> 0"
                             " ORDER BY 1, 2, 3, 4, 5", (areas,)).fetchall()
    return live, again


# -- a late report, step by step, over HTTP --------------------------------------------------------
def test_a_late_reported_move_counts_from_its_date_but_only_once_known(services: Services, http: Any,
                                                                       keys: dict[str, str]) -> None:
    auditor = Api(http, keys["auditor"])
    area = unique_area("Late")
    district = District(services)
    site = district.site(area)
    li = district.register(area, date(2026, 1, 10), at("2026-01-10 09:00"))
    zhao = district.register(area, date(2026, 2, 1), at("2026-02-03 09:00"))
    # Recorded on 20 November: Li moved into the site on 5 March.
    district.into_site(li, site, date(2026, 3, 5), at("2026-11-20 10:00"))
    # Recorded on 22 November: Zhao left the district on 15 November.
    position = district.depart(zhao, date(2026, 11, 15), at("2026-11-22 10:00"))

    def count(**params: Any) -> dict[Place, int]:
        response = auditor.get("/statistics/population", params={"area": area, "by": "site", "after": position,
                                                                   **params})
        assert response.status_code == 200, response.text
        assert response.headers["X-Read-Consistent"] == "true"
        body = response.json()
        assert body["total"] == sum(i["residents"] for i in body["items"])
        return {(i["area"], UUID(i["site_id"]) if i["site_id"] else None): i["residents"] for i in body["items"]}

    # As known on 1 November, both lived in private housing on 1 April ...
    assert count(known_at="2026-11-01T12:00:00+08:00", effective_at="2026-04-01") == {(area, None): 2}
    # ... as known now, Li was in the site from 5 March; the day before, still in private housing.
    assert count(effective_at="2026-04-01") == {(area, None): 1, (area, site): 1}
    assert count(effective_at="2026-03-04") == {(area, None): 2}
    assert count(effective_at="2026-03-05") == {(area, None): 1, (area, site): 1}
    # Known at a moment alone: that moment's own day. The report of the 20th at 10:00 counts from that instant.
    assert count(known_at="2026-11-20T09:59:59+08:00") == {(area, None): 2}
    assert count(known_at="2026-11-20T10:00:00+08:00") == {(area, None): 1, (area, site): 1}
    # Zhao's departure: on the 20th, as known on the 21st, Zhao was still here; as known now, gone.
    assert count(known_at="2026-11-21T12:00:00+08:00", effective_at="2026-11-20") == {(area, None): 1,
                                                                                      (area, site): 1}
    assert count(effective_at="2026-11-20") == {(area, site): 1}
    # A UTC offset other than the office's names the same instant.
    assert count(known_at="2026-11-20T01:59:59Z") == {(area, None): 2}
    by_area = auditor.get("/statistics/population", params={"area": area, "effective_at": "2026-04-01"},
                          headers={"Accept-Language": "en"}).json()
    assert by_area["by"] == "area" and by_area["known_at"] is None and by_area["effective_at"] == "2026-04-01"
    assert by_area["items"] == [{"area": area, "area_name": f"Late {area}", "site_id": None, "residents": 2}]


def test_the_view_equals_a_fold_of_a_scripted_history(services: Services) -> None:
    """Registrations, moves between areas and sites, a same-day move, departures and a return,
    several recorded late: every (known at, effective at) pair, by area and by site."""
    a, b = unique_area("Fold"), unique_area("Fold")
    d = District(services)
    s1, s2 = d.site(a), d.site(b)
    r1 = d.register(a, date(2026, 1, 5), at("2026-01-05 09:00"))
    r2 = d.register(a, date(2026, 1, 5), at("2026-01-20 09:00"))  # registered 15 days late
    r3 = d.register(b, date(2026, 2, 1), at("2026-02-01 23:59"))
    d.into_site(r1, s1, date(2026, 2, 1), at("2026-02-01 10:00"))
    d.private(r1, b, date(2026, 2, 1), at("2026-02-02 10:00"))  # moved on again the same day, reported a day late
    d.into_site(r3, s2, date(2026, 3, 1), at("2026-06-01 10:00"))  # three months late
    d.depart(r2, date(2026, 4, 1), at("2026-04-01 10:00"))
    d.back(r2, b, date(2026, 5, 1), at("2026-05-03 10:00"))
    d.into_site(r2, s2, date(2026, 5, 20), at("2026-07-01 10:00"))
    d.depart(r3, date(2026, 6, 15), at("2026-07-01 10:00"))  # recorded at the same instant as r2's move
    caught_up(services)

    events = histories(services, d.residents)
    times = sorted({e.recorded_at for history in events.values() for e in history})
    moments: list[datetime | None] = [None, *times, *(t - timedelta(microseconds=1) for t in times)]
    days = sorted({date(2026, 1, 4), date(2026, 12, 31), *(m.astimezone(OFFICE_TZ).date() for m in times),
                   date(2026, 2, 1), date(2026, 3, 1), date(2026, 3, 31), date(2026, 5, 19), date(2026, 6, 14)})
    checked = 0
    for known_at in moments:
        for day in days:
            for by_site in (False, True):
                expected = folded(events, known_at, day, by_site)
                fast, rows = from_view(services, [a, b], known_at, day, by_site)
                assert fast == expected, (known_at, day, by_site)
                assert rows == expected, (known_at, day, by_site)
                checked += 1
    assert checked > 200
    live, again = checkpoints(services, [a, b])
    assert live == again and live


# -- property: random histories with random recorded and effective times --------------------------
actions = st.lists(
    st.tuples(
        st.sampled_from(["site", "private", "depart", "return"]),
        st.integers(0, 2),  # which resident
        st.integers(0, 1),  # which site or area
        st.integers(0, 60),  # hours after the previous recording (0: the same instant)
        st.integers(0, 40),  # days after the resident's last change, at most the recording day
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=actions, registered=st.lists(st.integers(0, 20), min_size=3, max_size=3))
def test_population_equals_a_fold_for_random_histories(services: Services, script: list[tuple[str, int, int, int, int]],
                                                       registered: list[int]) -> None:
    areas = [unique_area("Prop"), unique_area("Prop")]
    d = District(services)
    sites = [d.site(areas[0]), d.site(areas[1])]
    clock = at("2026-03-01 08:00")
    since: dict[UUID, date] = {}
    for late in registered:
        clock += timedelta(hours=7)
        on = clock.astimezone(OFFICE_TZ).date() - timedelta(days=late)
        since[d.register(areas[0], on, clock)] = on
    for action, who, where, hours, gap in script:
        clock += timedelta(hours=hours)
        rid = d.residents[who]
        on = min(since[rid] + timedelta(days=gap), clock.astimezone(OFFICE_TZ).date())
        try:
            if action == "site":
                d.into_site(rid, sites[where], on, clock)
            elif action == "private":
                d.private(rid, areas[where], on, clock)
            elif action == "depart":
                d.depart(rid, on, clock)
            else:
                d.back(rid, areas[where], on, clock)
        except DomainError:
            continue  # refused commands leave no trace
        since[rid] = on
    caught_up(services)
    events = histories(services, d.residents)
    times = sorted({e.recorded_at for history in events.values() for e in history})
    days = sorted({t.astimezone(OFFICE_TZ).date() + timedelta(days=shift) for t in times for shift in (-1, 0)})
    for known_at in [None, *times[::2], *(t - timedelta(seconds=1) for t in times[1::2])]:
        for day in days[::2]:
            by_site = day.day % 2 == 0
            expected = folded(events, known_at, day, by_site)
            fast, rows = from_view(services, areas, known_at, day, by_site)
            assert fast == expected == rows, (known_at, day, by_site)
    live, again = checkpoints(services, areas)
    assert live == again


# -- refusals and areas ---------------------------------------------------------------------------
@pytest.mark.parametrize(("params", "field"), [
    ({"known_at": "2026-11-01T12:00:00"}, "known_at"),
    ({"known_at": "yesterday"}, "known_at"),
    ({"effective_at": "2026-02-30"}, "effective_at"),
    ({"area": "no-such-area"}, "area"),
    ({"by": "village"}, "by"),
])
def test_bad_population_requests_are_refused_naming_the_field(keys: dict[str, str], http: Any, stored: Any,
                                                              params: dict[str, str], field: str) -> None:
    snapshot = stored()
    response = Api(http, keys["auditor"]).get("/statistics/population", params=params)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert snapshot.unchanged()


@pytest.mark.parametrize(("params", "field"), [
    ({"month": "2026-13"}, "month"),
    ({"area": "no-such-area"}, "area"),
    ({"kind": "escape"}, "kind"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_bad_reporting_delay_requests_are_refused_naming_the_field(keys: dict[str, str], http: Any, stored: Any,
                                                                   params: dict[str, str], field: str) -> None:
    snapshot = stored()
    response = Api(http, keys["auditor"]).get("/statistics/reporting-delays", params=params)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert snapshot.unchanged()


def test_an_area_bound_key_counts_only_its_areas(services: Services, http: Any) -> None:
    mine, other = unique_area("Mine"), unique_area("Other")
    d = District(services, user=unique("pop-area-clerk"))
    for area in (mine, mine, other):
        d.register(area, date(2026, 10, 1), at("2026-10-03 09:00"))
    position = caught_up(services)
    bound = Api(http, issue_key(services, unique("pop-consumer"), Role.API_CONSUMER, areas=[mine]))
    body = bound.get("/statistics/population", params={"after": position}).json()
    assert {i["area"] for i in body["items"]} <= {mine}
    assert [i["residents"] for i in body["items"] if i["area"] == mine] == [2]
    assert bound.get("/statistics/population", params={"area": other}).json()["items"] == []
    delays = bound.get("/statistics/reporting-delays", params={"actor": d.user}).json()
    assert [(i["area"], i["reports"]) for i in delays["items"]] == [(mine, 2)]
    everyone = Api(http, issue_key(services, unique("pop-district"), Role.API_CONSUMER))
    delays = everyone.get("/statistics/reporting-delays", params={"actor": d.user}).json()
    assert sorted((i["area"], i["reports"]) for i in delays["items"]) == sorted([(mine, 2), (other, 1)])


# -- reporting delays -------------------------------------------------------------------------------
def test_reporting_delays_of_a_hand_built_case(services: Services, http: Any, keys: dict[str, str]) -> None:
    area, elsewhere = unique_area("Delay"), unique_area("Delay")
    d = District(services, user=unique("delay-clerk"))
    site = d.site(area)
    rid = d.register(area, date(2026, 3, 1), at("2026-03-01 23:30"))  # 0 days
    d.into_site(rid, site, date(2026, 3, 2), at("2026-03-04 00:30"))  # 2 days (1 by the UTC date)
    d.private(rid, area, date(2026, 3, 5), at("2026-03-10 09:00"))  # 5 days
    d.depart(rid, date(2026, 3, 10), at("2026-03-20 09:00"))  # 10 days, counted where they left
    d.back(rid, elsewhere, date(2026, 3, 11), at("2026-04-25 09:00"))  # 45 days, recorded in April
    position = caught_up(services)
    auditor = Api(http, keys["auditor"])
    body = auditor.get("/statistics/reporting-delays", params={"actor": d.user, "after": position},
                       headers={"Accept-Language": "en"}).json()
    assert body["total"] == 2 and body["next"] is None
    march, april = body["items"]
    assert march == {"month": "2026-03", "area": area, "area_name": f"Delay {area}", "actor_id": d.user,
                     "reports": 4, "mean_days": 4.25, "p50_days": 3.5, "p90_days": 8.5, "max_days": 10,
                     "histogram": {"same_day": 1, "days_1_to_3": 1, "days_4_to_7": 1, "days_8_to_30": 1,
                                   "over_30_days": 0}}
    assert (april["month"], april["area"], april["reports"], april["max_days"], april["histogram"]["over_30_days"]) \
        == ("2026-04", elsewhere, 1, 45, 1)
    only_april = auditor.get("/statistics/reporting-delays", params={"actor": d.user, "month": "2026-04"}).json()
    assert [i["month"] for i in only_april["items"]] == ["2026-04"]
    departures = auditor.get("/statistics/reporting-delays", params={"actor": d.user, "kind": "departure"}).json()
    assert [(i["area"], i["reports"], i["max_days"]) for i in departures["items"]] == [(area, 1, 10)]
    first = auditor.get("/statistics/reporting-delays", params={"actor": d.user, "limit": 1}).json()
    assert [i["month"] for i in first["items"]] == ["2026-03"] and first["total"] == 2
    rest = auditor.get("/statistics/reporting-delays", params={"actor": d.user, "limit": 1,
                                                               "cursor": first["next"]}).json()
    assert [i["month"] for i in rest["items"]] == ["2026-04"] and rest["next"] is None


# -- rebuild -----------------------------------------------------------------------------------------
def test_rebuilding_the_views_gives_the_same_rows(services: Services) -> None:
    d = District(services)
    area = unique_area("Rebuild")
    rid = d.register(area, date(2026, 6, 1), at("2026-06-02 09:00"))
    d.into_site(rid, d.site(area), date(2026, 6, 5), at("2026-08-01 09:00"))
    caught_up(services)

    def snapshot(tables: list[str]) -> dict[str, list[Any]]:
        with services.pool.connection() as conn:
            return {t: sorted(repr(sorted(r.items())) for r in conn.execute(f"SELECT * FROM {t}").fetchall())
                    for t in tables}

    for name in ("residence_periods", "reporting_delays"):
        tables = services.projections[name].view_class.tables
        live = snapshot(tables)
        assert all(live.values()), name
        assert services.rebuild(name) >= 1
        assert snapshot(tables) == live, name
