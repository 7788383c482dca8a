"""The in-process runner: one subscription feeds every view; a failing view stops alone."""

import time
from datetime import date
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from api.services import Services
from domain.identity import IdentityNumber
from domain.residents import Resident
from projections.base import SqlProjection, ViewRecorder, event_class, handles
from projections.residents import ResidentsProjection
from tests.factories import id_number
from workers.runner import ProjectionRunner


class BrokenView(ViewRecorder):
    tables: list[str] = []
    ddl: list[str] = []


class BrokenProjection(SqlProjection):
    """A view whose handler always fails: the runner must keep the others going."""

    name = "broken_for_test"
    view_class = BrokenView

    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Any, e: Any) -> None:
        raise RuntimeError("this view cannot cope")


def test_a_failing_view_stops_alone_and_the_others_keep_up(services: Services, stamp: Any) -> None:
    """The session's own runner runs too: two runners on one view must also apply each event once."""
    env = services.database.eventsourcing_env(2)
    factory = InfrastructureFactory.construct(Environment("broken_for_test", env))
    factory.tracking_recorder(BrokenView).datastore.close()  # create its tracking table
    runner = ProjectionRunner(env, {"residents": ResidentsProjection, "broken_for_test": BrokenProjection})
    runner.start()
    try:
        created = services.app.register_resident(
            id_number=IdentityNumber.parse(id_number()), name="Runner", phone="13800138000", hometown="Anhui",
            employer=None, area="Runnertown", registered_on=date(2026, 1, 1), stamp=stamp)
        assert services.wait_for("residents", created.position, 10)
        deadline = time.monotonic() + 10
        while "broken_for_test" not in runner.failed and time.monotonic() < deadline:
            time.sleep(0.05)
        status = runner.status()
        assert status["broken_for_test"]["running"] is False
        assert "cannot cope" in str(status["broken_for_test"]["error"])
        assert status["residents"]["running"] is True
        with services.pool.connection() as conn:
            rows = conn.execute("SELECT count(*) AS n FROM residents WHERE id = %s", (created.id,)).fetchone()
        assert rows is not None and rows["n"] == 1
    finally:
        runner.stop()
