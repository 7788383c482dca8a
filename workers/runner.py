"""Runs every projection in background threads of this process and restarts one
that fails, after a pause, from its last tracked position."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from eventsourcing.projection import ProjectionRunner

from api.application import Liudong
from projections.base import SqlProjection

log = logging.getLogger(__name__)


@dataclass
class RunnerState:
    runner: Any = None
    error: str | None = None
    restarts: int = 0


class ProjectionSupervisor:
    def __init__(self, env: dict[str, str], projections: dict[str, type[SqlProjection]], retry_after: float = 2.0):
        self.env = {**env, "POSTGRES_POOL_SIZE": "2", "POSTGRES_MAX_OVERFLOW": "2"}
        self.projections = projections
        self.retry_after = retry_after
        self.states: dict[str, RunnerState] = {name: RunnerState() for name in projections}
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    def start(self) -> None:
        for name in self.projections:
            self._start(name)
        self._monitor = threading.Thread(target=self._watch, name="projection-supervisor", daemon=True)
        self._monitor.start()

    def _start(self, name: str) -> None:
        cls = self.projections[name]
        try:
            runner: ProjectionRunner[Liudong, Any] = ProjectionRunner(
                application_class=Liudong,
                projection_class=cls,
                view_class=cls.view_class,
                env=self.env,
            )
        except Exception as error:  # the database may be briefly unreachable: retried by _watch
            log.exception("projection %s failed to start", name)
            self.states[name].error = repr(error)
            return
        self.states[name].runner = runner
        self.states[name].error = None

    def _watch(self) -> None:
        while not self._stopping.wait(self.retry_after):
            for name, state in self.states.items():
                runner = state.runner
                if runner is not None and not runner.is_interrupted.is_set():
                    continue
                if runner is not None:
                    error = runner._thread_error
                    state.error = repr(error)
                    log.error("projection %s stopped: %r; restarting", name, error)
                    self._close(runner)
                    state.runner = None
                state.restarts += 1
                self._start(name)

    @staticmethod
    def _close(runner: ProjectionRunner[Any, Any]) -> None:
        try:
            runner.__exit__(None, None, None)
        except Exception:  # the error was already recorded in the state; closing must go on
            log.debug("error while closing a stopped projection runner", exc_info=True)

    def status(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"running": state.runner is not None and not state.runner.is_interrupted.is_set(),
                   "error": state.error, "restarts": state.restarts}
            for name, state in self.states.items()
        }

    def stop(self) -> None:
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join()
        for state in self.states.values():
            if state.runner is not None:
                self._close(state.runner)
                state.runner = None
