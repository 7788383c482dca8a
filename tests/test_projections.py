"""The read models: built exactly once per event, rebuildable from events alone,
and equal to an independent fold of the same events."""

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from typer.testing import CliRunner

from application.cli import cli
from application.services import Services
from domain.common import Actor, DomainError, Role, Stamp
from domain.identity import IdentityNumber
from projections.residents import ResidentFilter, ResidentsProjection, list_residents
from tests.conftest import NOW
from tests.factories import id_number, unique, unique_area, view_rows_sql

STAMP = Stamp(Actor("prop-caseworker", Role.CASEWORKER), NOW)


def table(services: Services, sql: str) -> list[dict[str, Any]]:
    with services.pool.connection() as conn:
        return [dict(row) for row in conn.execute(sql).fetchall()]


def caught_up(services: Services, position: int | None = None) -> None:
    target = position if position is not None else services.head()
    for name in services.projections:
        assert services.wait_for(name, target, 10), f"{name} did not reach {target}"


def seed(services: Services, n: int = 5) -> None:
    site = services.app.register_site(name=unique("Seed"), area="xiaogang", address="1 Road", operator_type="employer",
                                      operator_name="Hengli", capacity=n, facilities=["canteen"], stamp=STAMP)
    for _ in range(n):
        resident = services.app.register_resident(
            id_number=IdentityNumber.parse(id_number()), name=unique("Seed"), phone="13800138000",
            hometown="Henan", employer=None, area="xiaogang", registered_on=date(2026, 1, 1), stamp=STAMP)
        services.app.move_resident_into_site(resident.id, site.id, date(2026, 2, 1), STAMP)


def test_rebuilding_a_projection_from_events_equals_the_live_table(services: Services, database: Any,
                                                                    monkeypatch: Any) -> None:
    seed(services)
    caught_up(services)
    for name, order in (("residents", "id"), ("site_occupancy", "site_id")):
        live = table(services, f"SELECT * FROM {name} ORDER BY {order}")
        assert live
        monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
        result = CliRunner().invoke(cli, ["projections", "rebuild", name])
        assert result.exit_code == 0, result.output
        assert f"rebuilt {name}" in result.output
        rebuilt = table(services, f"SELECT * FROM {name} ORDER BY {order}")
        assert rebuilt == live
    # The live runner goes on from the rebuilt position, applying new events once.
    seed(services, n=2)
    caught_up(services)
    assert len(table(services, "SELECT id FROM residents WHERE area = 'Seedtown'")) == len(
        {r["id"] for r in table(services, "SELECT id FROM residents WHERE area = 'Seedtown'")})


def test_a_redelivered_event_is_applied_once(services: Services) -> None:
    """Delivered again in order (a restart) or out of band (a republish to Kafka): skipped."""
    from application.events import EventCatalogue
    from application.projecting import delivery_from_store
    from application.store import read_stored
    from projections.engine import ViewApplier
    from projections.site_occupancy import SiteOccupancyProjection

    seed(services, n=1)
    caught_up(services)
    head = services.head()
    catalogue = EventCatalogue.of_domain()
    applier = ViewApplier(SiteOccupancyProjection, privacy=services.app.vault)
    before = table(services, "SELECT * FROM site_occupancy ORDER BY site_id")
    with psycopg.connect(services.database.dsn, autocommit=True, row_factory=dict_row) as conn:
        deliveries = [delivery_from_store(r, catalogue) for r in read_stored(conn, head - 5, 5)]
        assert applier.apply_ordered(conn, deliveries, head).applied == 0
        streamed = [replace(d, stream="kafka/test/x/0", offset=n, previous=None) for n, d in enumerate(deliveries)]
        result = applier.apply_streamed(conn, streamed)
        assert (result.applied, result.duplicates) == (0, sum(1 for d in deliveries
                                                              if type(d.event) in SiteOccupancyProjection.handlers))
        conn.execute("DELETE FROM site_occupancy_tracking WHERE application_name = 'kafka/test/x/0'")
    assert table(services, "SELECT * FROM site_occupancy ORDER BY site_id") == before


def test_unknown_projection_names_are_refused_by_the_cli(database: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    result = CliRunner().invoke(cli, ["projections", "rebuild", "nonsense"])
    assert result.exit_code == 2
    assert "residents" in result.output


# --- property: the residents view equals an independent fold of the events ---

def fold_resident(events: list[Any]) -> dict[str, Any]:
    """What a resident's row must say, computed from their events alone."""
    row: dict[str, Any] = {}
    for e in events:
        kind = type(e).__name__
        if kind == "Registered":
            row = {"id": e.originator_id, "name": e.name, "sex": e.sex, "birth_date": e.birth_date,
                   "employer": e.employer, "status": "private_housing", "site_id": None, "area": e.area,
                   "since": e.registered_on}
        elif kind == "MovedIntoSite":
            row.update(status="in_site", site_id=e.site_id, area=e.area, since=e.effective_date)
        elif kind in ("MovedToPrivateHousing", "Returned"):
            row.update(status="private_housing", site_id=None, area=e.area, since=e.effective_date)
        elif kind == "DepartedDistrict":
            row.update(status="departed", site_id=None, since=e.effective_date)
        elif kind == "EmployerChanged":
            row.update(employer=e.employer)
        row["version"] = e.originator_version
    return row


def fold_site(events: list[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for e in events:
        kind = type(e).__name__
        if kind == "Registered":
            row = {"capacity": e.capacity, "occupants": 0, "closed": False}
        elif kind == "CapacityChanged":
            row["capacity"] = e.capacity
        elif kind == "ResidentMovedIn":
            row["occupants"] += 1
        elif kind == "ResidentMovedOut":
            row["occupants"] -= 1
        elif kind == "Closed":
            row["closed"] = True
    row["free_beds"] = row["capacity"] - row["occupants"]
    return row


commands = st.lists(
    st.tuples(
        st.sampled_from(["move_site", "private", "depart", "return", "employer", "capacity", "close", "permit",
                         "issue"]),
        st.integers(0, 3),  # which resident
        st.integers(0, 1),  # which site
        st.integers(0, 3),  # days after the previous change
        st.integers(1, 4),  # a capacity
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=commands)
def test_residents_and_occupancy_equal_a_fold_of_the_events(
    services: Services, script: list[tuple[str, int, int, int, int]]
) -> None:
    app = services.app
    area = unique_area("Prop")
    sites = [app.register_site(name=unique("S"), area=area, address="a", operator_type="employer",
                               operator_name="E", capacity=2, facilities=[], stamp=STAMP).id for _ in range(2)]
    residents = [app.register_resident(id_number=IdentityNumber.parse(id_number()), name=unique("R"),
                                       phone="13800138000", hometown="Anhui", employer=None, area=area,
                                       registered_on=date(2026, 1, 1), stamp=STAMP).id for _ in range(4)]
    day = date(2026, 1, 1)
    for action, who, where, gap, capacity in script:
        day = min(day + timedelta(days=gap), date(2026, 11, 25))
        rid, sid = residents[who], sites[where]
        try:
            if action == "move_site":
                app.move_resident_into_site(rid, sid, day, STAMP)
            elif action == "private":
                app.move_resident_to_private_housing(rid, area, day, STAMP)
            elif action == "depart":
                app.record_departure(rid, day, "went home", STAMP)
            elif action == "return":
                app.record_return(rid, area, day, STAMP)
            elif action == "employer":
                app.change_employer(rid, f"E{capacity}", day, STAMP)
            elif action == "capacity":
                app.change_site_capacity(sid, capacity, STAMP)
            elif action == "close":
                app.close_site(sid, day, "demolished", STAMP)
            elif action == "permit":
                app.apply_for_permit(rid, applied_on=max(day, date(2026, 7, 2)), stamp=STAMP)
            elif action == "issue":
                app.issue_permit(rid, number=f"JZZ-{capacity}", issued_on=max(day, date(2026, 7, 2)), stamp=STAMP)
        except DomainError:
            pass  # refused commands are part of the script: they must leave no trace
    caught_up(services)

    for rid in residents:
        expected = fold_resident(list(app.events.get(rid)))
        (row,) = table(services, f"SELECT * FROM residents WHERE id = '{rid}'")
        row["name"] = app.vault.open(row["name"])  # the view keeps the name sealed
        assert {k: row[k] for k in expected} == expected
    for sid in sites:
        expected = fold_site(list(app.events.get(sid)))
        (row,) = table(services, f"SELECT * FROM site_occupancy WHERE site_id = '{sid}'")
        assert {k: row[k] for k in expected} == expected
        assert 0 <= row["occupants"] <= row["capacity"]
        in_site = table(services, f"SELECT count(*) AS n FROM residents WHERE site_id = '{sid}'")[0]["n"]
        assert in_site == row["occupants"]
    # The counts the lists' totals come from agree with the rows, whatever the moves did.
    kept = table(services, f"SELECT status, site_id, housing_kind, permit_status, n FROM residents_counts"
                           f" WHERE area = '{area}' AND n <> 0")
    counted = table(services, f"SELECT status, site_id, housing_kind, permit_status, count(*) AS n FROM residents"
                              f" WHERE area = '{area}' GROUP BY 1, 2, 3, 4")
    assert sorted(map(repr, kept)) == sorted(map(repr, counted))
    with services.pool.connection() as conn:
        assert list_residents(conn, ResidentFilter(area=area), 50, None).total == len(residents)
        assert list_residents(conn, ResidentFilter(area=area, status="departed"), 50, None).total == sum(
            r["n"] for r in counted if r["status"] == "departed")


def test_projection_handlers_cover_every_event_of_their_aggregates() -> None:
    from domain.residents import Resident
    from domain.sites import HousingSite
    from projections.site_occupancy import SiteOccupancyProjection

    for aggregate, projection in ((Resident, ResidentsProjection), (HousingSite, SiteOccupancyProjection)):
        handled = {cls.__name__ for cls in projection.handlers}
        # "Event" and "Created" are eventsourcing's base classes; nothing is stored under them.
        emitted = {name for name, value in vars(aggregate).items()
                   if isinstance(value, type) and issubclass(value, aggregate.Event)} - {"Event", "Created"}
        assert emitted <= handled, emitted - handled


def test_every_view_rebuilt_from_events_equals_the_live_one(services: Services) -> None:
    seed(services, n=3)
    caught_up(services)

    def snapshot(tables: list[str]) -> dict[str, list[str]]:
        result = {}
        with services.pool.connection() as conn:
            for name in tables:
                rows = conn.execute(view_rows_sql(name)).fetchall()
                # stat_movements' serial id depends on sequence values, not on the events.
                result[name] = sorted(repr(sorted((k, v) for k, v in r.items() if (name, k) != (
                    "stat_movements", "id"))) for r in rows)
        return result

    for name, projection in services.projections.items():
        live = snapshot(projection.view_class.tables)
        position = services.rebuild(name)
        assert position >= 1
        assert snapshot(projection.view_class.tables) == live, name


def test_a_rebuild_inserting_registrations_many_at_a_time_equals_the_live_view_whatever_the_batches(
        services: Services) -> None:
    """A rebuild of residents inserts the registrations of a batch in one statement and
    creates the indexes after the rows: with batches of one event, a few, or all of them
    (a resident's move in the same batch as their registration waits for it), the rows,
    the counts and the indexes are those the live view has."""
    from application.projecting import rebuild

    seed(services, n=4)
    site = services.app.register_site(name=unique("Bulk"), area="xiaogang", address="2 Road", operator_type="employer",
                                      operator_name="Hengli", capacity=2, facilities=[], stamp=STAMP)
    for n in range(3):  # registered, then moved within a few events
        resident = services.app.register_resident(
            id_number=IdentityNumber.parse(id_number()), name=f"李{n}\"{{,}}\\ 名", phone="13800138000",
            hometown="Henan", employer=None, area="xiaogang", registered_on=date(2026, 1, 1), stamp=STAMP)
        if n < 2:
            services.app.move_resident_into_site(resident.id, site.id, date(2026, 2, 1), STAMP)
    caught_up(services)
    tables = ResidentsProjection.view_class.tables
    indexes = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY indexname"

    def state() -> tuple[Any, ...]:
        with services.pool.connection() as conn:
            rows = {t: sorted(repr(sorted(r.items())) for r in conn.execute(view_rows_sql(t)).fetchall())
                    for t in tables}
            return rows, conn.execute(indexes, (tables,)).fetchall()

    live = state()
    assert any("gin" in row["indexdef"] for row in live[1])
    for batch_size in (1, 3, 2000):
        rebuild(services.database.dsn, ResidentsProjection, batch_size=batch_size,
                master_key=services.settings.master_key())
        assert state() == live, batch_size
    # Array columns travel as literals: any text comes back as it was.
    from projections.engine import _array_literal

    odd = ["a,b", 'q"uote', "back\\slash", "{brace}", "NULL", "", " space ", "名"]
    with services.pool.connection() as conn:
        row = conn.execute("SELECT %s::text[] AS v", (_array_literal([*odd, None]),)).fetchone()
    assert row is not None and row["v"] == [*odd, None]


def test_a_followers_own_write_failing_fails_that_view_alone_and_the_next_view_goes_on(services: Services) -> None:
    """In pipeline mode an error shows at a sync: one in a view's offsets or links (after its
    handlers) still fails that view inside its own savepoint, so the batch's transaction
    goes on with the next view, and nothing of the failed view's batch is kept."""
    import pytest

    from application.events import EventCatalogue
    from application.projecting import delivery_from_store
    from application.store import read_stored
    from projections.engine import ViewApplier
    from projections.site_occupancy import SiteOccupancyProjection

    seed(services, n=1)
    caught_up(services)
    head = services.head()
    catalogue = EventCatalogue.of_domain()
    failing = ViewApplier(ResidentsProjection, privacy=services.app.vault, backoff=0)
    healthy = ViewApplier(SiteOccupancyProjection, privacy=services.app.vault, backoff=0)
    failing._link = lambda cur, deliveries, low_water: cur.execute("SELECT 1 / 0")  # type: ignore[method-assign]
    stream = "kafka/test/own-writes/0"
    with psycopg.connect(services.database.dsn, autocommit=True, row_factory=dict_row) as conn:
        streamed = [replace(delivery_from_store(r, catalogue), stream=stream, offset=n)
                    for n, r in enumerate(read_stored(conn, head - 4, 4))]
        with conn.transaction():
            with pytest.raises(psycopg.errors.DivisionByZero):
                failing.apply_streamed(conn, streamed)
            healthy.apply_streamed(conn, streamed)
        assert healthy.stream_offsets(conn, [stream]) == {stream: len(streamed) - 1}
        assert failing.stream_offsets(conn, [stream]) == {}


STRICT_BAD: set[Any] = set()


def _strict_projection() -> Any:
    from domain.residents import Resident
    from projections.base import SqlProjection, View, event_class, handles

    class StrictView(View):
        tables = ["strict_rows"]
        ddl = ["CREATE TABLE IF NOT EXISTS strict_rows (id uuid PRIMARY KEY, seen bigint NOT NULL)"]

    class StrictProjection(SqlProjection):
        """Fails in SQL on the residents in STRICT_BAD (the error shows at a later read in
        pipeline mode); every other registration is inserted and then read back."""

        name = "strict_for_test"
        view_class = StrictView

        @handles(event_class(Resident, "Registered"))
        def registered(self, cursor: Any, e: Any) -> None:
            if e.originator_id in STRICT_BAD:
                cursor.execute("SELECT 1 / 0")
                return
            cursor.execute("INSERT INTO strict_rows VALUES (%s, 0)", (e.originator_id,))
            row = cursor.execute("SELECT count(*) AS n FROM strict_rows").fetchone()
            cursor.execute("UPDATE strict_rows SET seen = %s WHERE id = %s", (row["n"], e.originator_id))

    return StrictProjection


def test_an_sql_error_that_shows_at_a_later_read_is_a_dead_letter_and_the_rest_of_the_batch_applied(
        services: Services) -> None:
    """In pipeline mode a handler's SQL error can surface at a later handler's read, before any
    sync: the batch still goes the careful way (one dead letter, the others applied), live
    and in a rebuild, instead of failing the whole view."""
    from application.events import EventCatalogue
    from application.projecting import delivery_from_store, rebuild
    from application.store import read_stored
    from projections.engine import ViewApplier

    projection = _strict_projection()
    start = services.head()  # the suite's other modules' events before it: not applied one by one here
    seed(services, n=3)
    caught_up(services)
    head = services.head()
    with psycopg.connect(services.database.dsn, autocommit=True, row_factory=dict_row) as conn:
        deliveries = [delivery_from_store(r, EventCatalogue.of_domain())
                      for r in read_stored(conn, start, head - start)]
        residents = [d.originator_id for d in deliveries if d.event_type.endswith("Resident.Registered")]
        STRICT_BAD.add(residents[-3])
        try:
            applier = ViewApplier(projection, privacy=services.app.vault, attempts=1, backoff=0)
            applier.ensure_schema(conn)
            result = applier.apply_ordered(conn, deliveries, head)
            assert len(result.dead_letters) == 1
            ids = {r["id"] for r in conn.execute("SELECT id FROM strict_rows").fetchall()}
            assert residents[-3] not in ids and {residents[-2], residents[-1]} <= ids
            rebuild(services.database.dsn, projection, master_key=services.settings.master_key())
            seeded = set(residents)  # a rebuild reads the whole store: compared on this test's residents
            assert {r["id"] for r in conn.execute("SELECT id FROM strict_rows").fetchall()} & seeded == ids
            letters = conn.execute("SELECT originator_id FROM projection_dead_letters WHERE view = %s"
                                   " AND resolved_at IS NULL", (projection.name,)).fetchall()
            assert [r["originator_id"] for r in letters] == [residents[-3]]
        finally:
            STRICT_BAD.clear()


def test_list_totals_are_counted_up_to_a_thousand_and_estimated_above(services: Services) -> None:
    from projections.pages import EXACT_UP_TO, count_rows

    with services.pool.connection() as conn:
        conn.execute("CREATE TEMP TABLE many (n int)")
        conn.execute("INSERT INTO many SELECT generate_series(1, 3000)")
        conn.execute("ANALYZE many")
        assert count_rows(conn, "many WHERE n <= %s", (EXACT_UP_TO,)) == (EXACT_UP_TO, False)
        total, estimated = count_rows(conn, "many WHERE n > %s", (0,))
        assert estimated and 2_000 < total < 4_000
        conn.execute("DROP TABLE many")
