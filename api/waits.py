"""Read-your-writes without holding a thread: ``?after=POSITION`` awaits, on the event
loop, the moment the view's low-water mark reaches the position. One thread per process
listens for the views' NOTIFY messages (and looks every second, in case one was missed)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import psycopg
from psycopg import sql

from projections.base import SqlProjection
from projections.engine import LOW_WATER_MARK, NOTIFY_CHANNEL, parse_mark

log = logging.getLogger(__name__)

# A view whose follower has not reported for this long is stopped (/readyz says so too).
SILENT_SECONDS = 30.0


class MarkWatcher:
    def __init__(self, dsn: str, projections: dict[str, type[SqlProjection]]) -> None:
        self.dsn = dsn
        self.projections = projections
        self.marks: dict[str, int] = dict.fromkeys(projections, 0)
        # Views nobody keeps just now (projection_status): reported failing, their follower
        # silent, or never reported by anyone since this process started a while ago.
        self.stopped: frozenset[str] = frozenset()
        self._started = time.monotonic()
        self._waiters: dict[str, list[tuple[int, asyncio.Event, asyncio.AbstractEventLoop]]] = {
            name: [] for name in projections}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mark-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    row = conn.execute("SELECT current_schema()").fetchone()
                    live = row[0] if row else "public"
                    while not self._stopping.is_set():
                        self._read_all(conn)
                        for notify in conn.notifies(timeout=1.0):
                            parsed = parse_mark(notify.payload)
                            if parsed is not None and parsed[0] == live:  # not a copy built beside the views
                                self._update(parsed[1], parsed[2])
            except psycopg.Error as error:
                log.warning("mark watcher lost the database (%s); retrying", type(error).__name__)
                self._stopping.wait(1.0)

    def _read_all(self, conn: psycopg.Connection[Any]) -> None:
        try:
            rows = conn.execute("SELECT view, state = 'failing' OR heartbeat_at < now() - make_interval(secs => %s)"
                                " FROM projection_status", (SILENT_SECONDS,)).fetchall()
        except psycopg.errors.UndefinedTable:
            rows = []
        stopped = {str(view) for view, silent_or_failing in rows if silent_or_failing}
        if time.monotonic() - self._started > SILENT_SECONDS:  # past the first reports after a start
            stopped |= set(self.projections) - {str(view) for view, _ in rows}
        self.stopped = frozenset(stopped)
        for name, cls in self.projections.items():
            try:
                row = conn.execute(sql.SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
                    sql.Identifier(cls.tracking_table())), (LOW_WATER_MARK,)).fetchone()
            except psycopg.errors.UndefinedTable:
                continue
            if row is not None and row[0] is not None:
                self._update(name, int(row[0]))

    def _update(self, view: str, mark: int) -> None:
        with self._lock:
            if view not in self.marks or mark <= self.marks[view]:
                return
            self.marks[view] = mark
            ready = [w for w in self._waiters[view] if w[0] <= mark]
            self._waiters[view] = [w for w in self._waiters[view] if w[0] > mark]
        for _, event, loop in ready:
            loop.call_soon_threadsafe(event.set)

    async def wait(self, view: str, position: int, timeout: float) -> bool:
        """Whether ``view`` reached ``position`` within ``timeout`` seconds."""
        event = asyncio.Event()
        with self._lock:
            if self.marks.get(view, 0) >= position:
                return True
            self._waiters[view].append((position, event, asyncio.get_running_loop()))
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return self.marks.get(view, 0) >= position
        finally:  # timed out or cancelled (a page giving up on several views at once): no waiter left
            with self._lock:
                self._waiters[view] = [w for w in self._waiters[view] if w[1] is not event]
