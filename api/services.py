"""The composition root: one place that builds the database, the application,
the read-side connection pool and the projection runners, and closes them."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from api import auth
from api.application import Liudong
from api.database import Database, open_database
from api.settings import Settings
from api.store import IDEMPOTENCY_TABLE
from domain.common import Actor, Role, Stamp
from projections.base import SqlProjection, ViewRecorder, read_events_from
from projections.disputes import overdue_open_cases
from projections.registry import PROJECTIONS
from workers.runner import ProjectionRunner

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SYSTEM_ACTOR = Actor("system", Role.SYSTEM)


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    database: Database
    app: Liudong
    pool: ConnectionPool[Any]
    clock: Clock = system_clock
    runner: ProjectionRunner | None = None
    projections: dict[str, type[SqlProjection]] = field(default_factory=lambda: dict(PROJECTIONS))
    _stopping: threading.Event = field(default_factory=threading.Event)
    _sweeper: threading.Thread | None = None

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        run_projections: bool | None = None,
        database: Database | None = None,
    ) -> Services:
        database = database or open_database(settings)
        env = database.eventsourcing_env(settings.pool_size)
        app = Liudong(env=env)
        app.command_retries = settings.command_retries
        app.sla = settings.sla_policy()
        app.SUBSIDY_TWO_APPROVALS_THRESHOLD = settings.subsidy_two_approvals_threshold
        pool: ConnectionPool[Any] = ConnectionPool(
            database.dsn,
            min_size=1,
            max_size=settings.pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=True,
        )
        services = cls(settings=settings, database=database, app=app, pool=pool, clock=clock)
        services.ensure_schema()
        if settings.run_projections if run_projections is None else run_projections:
            services.runner = ProjectionRunner(env, services.projections)
            services.runner.start()
            if settings.sweep_interval_seconds:
                services._sweeper = threading.Thread(target=services._sweep_periodically, name="sweeper",
                                                     daemon=True)
                services._sweeper.start()
        return services

    # -- sweeps -------------------------------------------------------------
    def system_stamp(self) -> Stamp:
        return Stamp(SYSTEM_ACTOR, self.clock())

    def today(self) -> date:
        """The office's today by the services' clock."""
        return self.system_stamp().today

    def sla_sweep(self) -> int:
        """Record every new service-level breach once; returns how many were recorded."""
        stamp = self.system_stamp()
        with self.pool.connection() as conn:
            candidates = overdue_open_cases(conn, stamp.today)
        return self.app.escalate_breaches(candidates, stamp)

    def permit_sweep(self) -> int:
        """Suspend each permit whose endorsement lapsed; returns how many were suspended."""
        stamp = self.system_stamp()
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id FROM residents WHERE permit_status = 'issued' AND endorsement_due < %s", (stamp.today,)
            ).fetchall()
        return self.app.suspend_lapsed_permits([r["id"] for r in rows], stamp)

    def _sweep_periodically(self) -> None:
        while not self._stopping.wait(self.settings.sweep_interval_seconds):
            for sweep in (self.sla_sweep, self.permit_sweep, self.purge_expired_idempotency_keys):
                try:
                    count = sweep()
                except Exception:  # a failed sweep is retried at the next interval; the reason is logged
                    log.exception("%s failed", sweep.__name__)
                else:
                    log.info("%s: %d", sweep.__name__, count)

    def ensure_schema(self) -> None:
        with self.pool.connection() as conn:
            for statement in auth.SCHEMA:
                conn.execute(statement)
        for name in self.projections:
            self.view(name).datastore.close()

    def view(self, name: str) -> ViewRecorder:
        """A view recorder for the named projection (creates its tables if missing)."""
        cls = self.projections[name]
        env = {**self.database.eventsourcing_env(2), "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "1"}
        factory = InfrastructureFactory[ViewRecorder].construct(
            env=Environment(cls.name, env)
        )
        return factory.tracking_recorder(cls.view_class)

    def close(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join()
        if self.runner is not None:
            self.runner.stop()
        self.pool.close()
        self.app.close()

    # -- read side ----------------------------------------------------------
    def positions(self) -> dict[str, int]:
        """Each projection's tracked position in the application's event log."""
        result: dict[str, int] = {}
        with self.pool.connection() as conn:
            for name in self.projections:
                row = conn.execute(
                    f'SELECT max(notification_id) AS n FROM "{name}_tracking" WHERE application_name = %s',
                    (self.app.name,),
                ).fetchone()
                result[name] = int(row["n"]) if row and row["n"] is not None else 0
        return result

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def wait_for(self, projection: str, position: int, timeout: float) -> bool:
        """Block until ``projection`` has applied the event at ``position``, up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            with self.pool.connection() as conn:
                row = conn.execute(
                    f'SELECT max(notification_id) AS n FROM "{projection}_tracking" WHERE application_name = %s',
                    (self.app.name,),
                ).fetchone()
            if row and row["n"] is not None and row["n"] >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def rebuild(self, name: str) -> int:
        cls = self.projections[name]
        view = self.view(name)
        try:
            reader = read_events_from(self.app.recorder, self.app.mapper, cls.handled_topics)
            return int(cls.rebuild(view, self.app.name, reader, head=self.head()))
        finally:
            view.datastore.close()

    def purge_expired_idempotency_keys(self) -> int:
        """Forget Idempotency-Keys older than their time to live (run with the sweeps)."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                f"DELETE FROM {IDEMPOTENCY_TABLE} WHERE created_at < now() - make_interval(hours => %s)",
                (self.settings.idempotency_ttl_hours,),
            )
            return int(cur.rowcount)


