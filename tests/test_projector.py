"""The in-process projector: one read of the store feeds every view; an event a view
keeps failing on becomes a dead letter and the view goes on; a view that fails as a whole
is retried with backoff, and /readyz names it meanwhile."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from typing import Any
from uuid import uuid4

import httpx
import pytest
from eventsourcing.persistence import StoredEvent

from application.projecting import LocalProjector, retry_dead_letter
from application.services import Services
from domain.identity import IdentityNumber
from domain.residents import Resident
from projections.base import SqlProjection, View, event_class, handles
from tests.factories import id_number

FAIL_FOR: set[str] = set()


class FussyView(View):
    tables = ["fussy_residents"]
    ddl = ["CREATE TABLE IF NOT EXISTS fussy_residents (id uuid PRIMARY KEY, name text NOT NULL, moves int NOT NULL)"]


class FussyProjection(SqlProjection):
    """Refuses residents whose name is in FAIL_FOR, as a handler with a bug would."""

    name = "fussy_for_test"
    view_class = FussyView

    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Any, e: Any) -> None:
        name = self.privacy.open(e.name)
        if name in FAIL_FOR:
            raise RuntimeError("this view cannot cope")
        cursor.execute("INSERT INTO fussy_residents VALUES (%s, %s, 0)", (e.originator_id, name))

    @handles(event_class(Resident, "MovedToPrivateHousing"))
    def moved(self, cursor: Any, e: Any) -> None:
        cursor.execute("UPDATE fussy_residents SET moves = moves + 1 WHERE id = %s", (e.originator_id,))


def register(services: Services, stamp: Any, name: str) -> Any:
    return services.app.register_resident(
        id_number=IdentityNumber.parse(id_number()), name=name, phone="13800138000", hometown="Anhui",
        employer=None, area="xiaogang", registered_on=date(2026, 1, 1), stamp=stamp)


@pytest.fixture()
def fussy(services: Services) -> Any:
    """A projector of its own for the fussy view (beside the session's projector process)."""
    projector = LocalProjector(services.database.dsn, {"fussy_for_test": FussyProjection},
                               master_key=services.settings.master_key(), attempts=2, backoff=0.01)
    thread = threading.Thread(target=projector.run, daemon=True)
    thread.start()
    assert projector.started.wait(10)
    yield projector
    projector.stopping.set()
    thread.join(10)


def wait(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def mark(services: Services, view: str) -> int:
    with services.pool.connection() as conn:
        row = conn.execute(f"SELECT notification_id FROM {view}_tracking WHERE application_name = 'Liudong'"
                           ).fetchone()
    return int(row["notification_id"]) if row else 0


def test_an_event_a_view_keeps_failing_on_becomes_a_dead_letter_and_waits_for_a_retry(
        services: Services, stamp: Any, fussy: LocalProjector) -> None:
    FAIL_FOR.add("Fussy Bad")
    bad = register(services, stamp, "Fussy Bad")
    moved = services.app.move_resident_to_private_housing(bad.id, "daqi", date(2026, 2, 1), stamp)
    good = register(services, stamp, "Fussy Good")
    wait(lambda: mark(services, "fussy_for_test") >= good.position)
    with services.pool.connection() as conn:
        rows = {r["name"] for r in conn.execute("SELECT name FROM fussy_residents").fetchall()}
        letters = conn.execute("SELECT * FROM projection_dead_letters WHERE view = 'fussy_for_test'"
                               " AND originator_id = %s ORDER BY version", (bad.id,)).fetchall()
    # The other resident is applied; the bad one's registration is a dead letter after two
    # tries, and their move waits behind it rather than being applied out of order.
    assert "Fussy Good" in rows and "Fussy Bad" not in rows
    assert [(r["version"], r["attempts"]) for r in letters] == [(1, 2), (2, 1)]
    assert "cannot cope" in letters[0]["error"] and "waits behind" in letters[1]["error"]
    assert letters[0]["position"] == bad.position - 1 or letters[0]["position"] < moved.position
    # Every other view went on: the session's residents view has both.
    assert services.wait_for("residents", good.position, 10)

    # The bug is fixed; a retry applies the event and the move that waited behind it.
    FAIL_FOR.discard("Fussy Bad")
    outcome = retry_dead_letter(services.database.dsn, letters[0]["id"], {"fussy_for_test": FussyProjection},
                                master_key=services.settings.master_key())
    assert outcome.outcome == "applied"
    assert outcome.resolved == [letters[0]["id"], letters[1]["id"]]
    with services.pool.connection() as conn:
        row = conn.execute("SELECT moves FROM fussy_residents WHERE id = %s", (bad.id,)).fetchone()
    assert row is not None and row["moves"] == 1
    # Retrying again changes nothing.
    again = retry_dead_letter(services.database.dsn, letters[0]["id"], {"fussy_for_test": FussyProjection},
                              master_key=services.settings.master_key())
    assert again.outcome.startswith("already resolved")


def test_an_event_of_an_unknown_class_is_a_dead_letter_not_a_stopped_view(services: Services, stamp: Any,
                                                                           fussy: LocalProjector) -> None:
    before = register(services, stamp, "Before Unknown")
    # A later version of the code stored an event this one has no class for.
    services.app.recorder.insert_events([StoredEvent(originator_id=uuid4(), originator_version=1,
                                                     topic="domain.future:Thing.Happened", state=b"{}")])
    after = register(services, stamp, "After Unknown")
    wait(lambda: mark(services, "fussy_for_test") >= after.position)
    assert services.wait_for("residents", after.position, 10)
    with services.pool.connection() as conn:
        letter = conn.execute("SELECT * FROM projection_dead_letters WHERE view = '*'"
                              " AND event_type = 'domain.future:Thing.Happened'").fetchone()
        names = {r["name"] for r in conn.execute("SELECT name FROM fussy_residents").fetchall()}
    assert letter is not None and "unknown event topic" in letter["error"]
    assert {"Before Unknown", "After Unknown"} <= names
    assert before.position < letter["position"] < after.position


def test_a_view_that_fails_as_a_whole_is_named_by_readyz_and_recovers_by_itself(
        services: Services, stamp: Any, http: httpx.Client) -> None:
    """The session's projector process: the statistics view loses a table for a while."""
    first = register(services, stamp, "Whole First")
    assert services.wait_for("statistics", first.position, 10)
    with services.pool.connection() as conn:
        conn.execute("ALTER TABLE stat_residents RENAME TO stat_residents_away")
    try:
        second = register(services, stamp, "Whole Second")
        wait(lambda: http.get("/readyz").status_code == 503)
        body = http.get("/readyz").json()
        assert body["stopped"] == ["statistics"]
        assert body["projections"]["statistics"]["error"] == "UndefinedTable"
        assert "stat_residents" not in json.dumps(body)  # the kind of error, never its text
        # The other views kept up meanwhile.
        assert services.wait_for("residents", second.position, 10)
        assert services.positions()["statistics"] < second.position
    finally:
        with services.pool.connection() as conn:
            conn.execute("ALTER TABLE stat_residents_away RENAME TO stat_residents")
    assert services.wait_for("statistics", second.position, 40)
    wait(lambda: http.get("/readyz").status_code == 200, 40)
    with services.pool.connection() as conn:
        rows = conn.execute("SELECT count(*) AS n FROM stat_residents WHERE resident_id = ANY(%s)",
                            ([first.id, second.id],)).fetchone()
    assert rows is not None and rows["n"] == 2


def test_a_heartbeat_on_a_failing_view_keeps_the_kind_of_its_error_and_its_count(services: Services) -> None:
    """The heartbeat used to overwrite the kind with "retrying" (and count a failure per beat):
    /readyz then named no error at all between two retries."""
    from projections.engine import record_heartbeat, record_status

    with services.pool.connection() as conn:
        record_status(conn, "heartbeat_for_test", "w1", "UndefinedTable")
        record_heartbeat(conn, "heartbeat_for_test", "w1", True)
        record_heartbeat(conn, "heartbeat_for_test", "w1", True)
        row = conn.execute("SELECT state, error_kind, failures FROM projection_status"
                           " WHERE view = 'heartbeat_for_test'").fetchone()
        assert row is not None
        assert (row["state"], row["error_kind"], row["failures"]) == ("failing", "UndefinedTable", 1)
        record_heartbeat(conn, "heartbeat_for_test", "w1", False)
        row = conn.execute("SELECT state, error_kind, failures FROM projection_status"
                           " WHERE view = 'heartbeat_for_test'").fetchone()
        assert row is not None and (row["state"], row["error_kind"], row["failures"]) == ("running", None, 0)
        conn.execute("DELETE FROM projection_status WHERE view = 'heartbeat_for_test'")


def test_the_mark_watcher_knows_which_views_nobody_keeps(services: Services) -> None:
    """A page after a form waits for every view but those nobody keeps just now: reported
    failing, their follower silent, or never reported since the process started a while ago
    (found by reviews: one stopped view, or one no worker keeps, held every page after every
    form for the whole read-wait timeout)."""
    import psycopg

    from api.waits import SILENT_SECONDS, MarkWatcher
    from projections.engine import record_status

    kept = "unkept_for_test"  # a view no follower keeps (a worker's --projections left it out)
    any_view = next(iter(services.projections.values()))
    watcher = MarkWatcher(services.database.dsn, {**services.projections, kept: any_view})
    with services.pool.connection() as conn:
        record_status(conn, "ghost_for_test", "w1", "UndefinedTable")
        record_status(conn, "silent_for_test", "w2", None)
        conn.execute("UPDATE projection_status SET heartbeat_at = now() - interval '1 minute'"
                     " WHERE view = 'silent_for_test'")
    try:
        with psycopg.connect(services.database.dsn, autocommit=True) as conn:
            watcher._read_all(conn)
            assert {"ghost_for_test", "silent_for_test"} <= watcher.stopped
            assert kept not in watcher.stopped  # not reported yet: the first seconds after a start
            watcher._started -= SILENT_SECONDS + 1
            watcher._read_all(conn)
            assert kept in watcher.stopped  # still not reported, long after the start: nobody keeps it
    finally:
        with services.pool.connection() as conn:
            conn.execute("DELETE FROM projection_status WHERE view IN ('ghost_for_test', 'silent_for_test')")



def test_a_process_that_keeps_no_views_leaves_a_view_of_another_version_to_its_follower(
        services: Services, stamp: Any) -> None:
    """Found by a review: a read-only command (``projections status``) of a newer build dropped
    a live view and its Kafka offsets under the workers keeping it, who went on from positions
    whose rows were gone. Only a follower rebuilds a view of another version."""
    from psycopg.sql import SQL, Identifier

    from projections.engine import VIEW_VERSION

    cls = services.projections["residents"]
    tracking = Identifier(cls.tracking_table())
    current = cls.view_class.version
    with services.pool.connection() as conn:
        register(services, stamp, "Versioned Person")
        # the view has it before counting (found flaky: the registration was applied between the counts)
        assert services.wait_for("residents", services.head(), 30)
        conn.execute(SQL("UPDATE {} SET notification_id = %s WHERE application_name = %s").format(tracking),
                     (current - 1, VIEW_VERSION))
        try:
            before = conn.execute("SELECT count(*) AS n FROM residents").fetchone()["n"]
            services.ensure_schema()  # what every API process and command does at start
            assert conn.execute("SELECT count(*) AS n FROM residents").fetchone()["n"] == before
            row = conn.execute(SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(tracking),
                               (VIEW_VERSION,)).fetchone()
            assert row["notification_id"] == current - 1  # left for the follower to rebuild
        finally:
            conn.execute(SQL("UPDATE {} SET notification_id = %s WHERE application_name = %s").format(tracking),
                         (current, VIEW_VERSION))
