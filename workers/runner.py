"""Runs every projection in one background thread of this process: one
subscription to the event log, and each event applied to every view in one
transaction (a savepoint each, so a failing view stops alone and the others go
on). A stopped runner restarts after a pause from the lowest tracked position;
views that are already past an event skip it."""

from __future__ import annotations

import logging
import threading
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import Environment

from api.application import Liudong
from projections.base import SqlProjection

log = logging.getLogger(__name__)


class ProjectionRunner:
    def __init__(self, env: dict[str, str], projections: dict[str, type[SqlProjection]], retry_after: float = 2.0):
        self.env = {**env, "POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "2"}
        self.classes = projections
        self.retry_after = retry_after
        self.failed: dict[str, str] = {}
        self.error: str | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._subscription: ApplicationSubscription[Any] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except Exception as error:  # the database went away, or a bug: recorded, retried after a pause
                if self._stopping.is_set():
                    return
                self.error = repr(error)
                log.exception("projection runner stopped; restarting in %.0f s", self.retry_after)
            self.restarts += 1
            self._stopping.wait(self.retry_after)

    def _follow(self) -> None:
        app = Liudong(env=self.env)
        factory = InfrastructureFactory.construct(Environment("projections", self.env))
        datastore: PostgresDatastore = factory.datastore  # type: ignore[attr-defined]
        try:
            projections = {
                name: cls(view=cls.view_class(datastore, tracking_table_name=f"{name}_tracking"))
                for name, cls in self.classes.items()
            }
            self.failed.clear()
            positions = [p.view.max_tracking_id(app.name) for p in projections.values()]
            start = None if None in positions else min(p for p in positions if p is not None)
            self._subscription = ApplicationSubscription(app, gt=start)
            self.error = None
            with self._subscription:
                for event, tracking in self._subscription:
                    self._apply(datastore, projections, event, tracking)
        finally:
            self._subscription = None
            app.close()
            datastore.close()

    def _apply(self, datastore: PostgresDatastore, projections: dict[str, SqlProjection], event: Any,
               tracking: Tracking) -> None:
        with datastore.transaction(commit=True) as cursor:
            for name, projection in projections.items():
                if name in self.failed:
                    continue
                cursor.execute("SAVEPOINT view")
                try:
                    projection.process_in(cursor, event, tracking)
                except Exception as error:  # this view stops (readyz shows why); the others go on
                    cursor.execute("ROLLBACK TO SAVEPOINT view")
                    self.failed[name] = repr(error)
                    log.exception("projection %s failed at position %d", name, tracking.notification_id)
                else:
                    cursor.execute("RELEASE SAVEPOINT view")

    def status(self) -> dict[str, dict[str, Any]]:
        running = self._thread is not None and self._thread.is_alive() and self.error is None
        return {
            name: {"running": running and name not in self.failed, "error": self.failed.get(name, self.error),
                   "restarts": self.restarts}
            for name in self.classes
        }

    def stop(self) -> None:
        self._stopping.set()
        subscription = self._subscription
        if subscription is not None:
            subscription.stop()
        if self._thread is not None:
            self._thread.join(timeout=30)
