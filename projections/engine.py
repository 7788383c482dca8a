"""Applying events to views: in batches, exactly once, whatever order the aggregates
arrive in, and without letting one bad event stop a view.

The same engine serves every follower:

* the in-process projector and rebuilds read the store in order (``apply_ordered``); a
  view's low-water mark is then simply the last position read;
* Kafka workers receive each aggregate's events in order on its partition, but the
  partitions in any interleaving, with redeliveries after a crash or a rebalance and
  duplicates after a republish (``apply_streamed``).

What makes that safe, per view, in the same transaction as the view's rows:

* the version of each aggregate the view last applied (``projection_versions``): an
  event at or below it is a duplicate and is skipped;
* per Kafka partition, the last offset dealt with (rows of the view's tracking table
  named after the partition), from which a worker resumes;
* the low-water mark (the tracking row ``Liudong``, the name eventsourcing's tracking
  gave it): every event at or below that global position has been dealt with. Kafka
  messages carry the position of the event before them in the store, so the mark
  advances along that chain (``projection_chain``) however the partitions interleave.
  ``?after=POSITION`` waits on it.

An event a handler keeps failing on (after a few tries with backoff) or that cannot be
decoded becomes a dead letter (``projection_dead_letters``); later events of the same
aggregate wait behind it as dead letters too, so the view never applies them out of
order; every other aggregate goes on. ``retry_dead_letters`` applies them later.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg import Connection, Cursor, Pipeline
from psycopg.sql import SQL, Composed, Identifier

from projections.base import BulkRows, Privacy, SqlProjection

log = logging.getLogger(__name__)

# The tracking row that holds a view's low-water mark. eventsourcing's tracking recorder
# wrote the application's name; views built before this engine keep working.
LOW_WATER_MARK = "Liudong"
# The tracking row that records which version of the view's class built it.
VIEW_VERSION = "__view_version__"
# A dead letter that concerns every view: a message that could not be decoded at all.
EVERY_VIEW = "*"
NOTIFY_CHANNEL = "liudong_views"
# Parameters: the channel, the schema (None: the current one), the payload.
_NOTIFY = "pg_notify(%s, coalesce(%s, current_schema()) || '/' || %s)"
MAX_ERROR_TEXT = 2000

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS projection_versions ("
    " view text NOT NULL, originator_id uuid NOT NULL, version bigint NOT NULL,"
    " PRIMARY KEY (view, originator_id))",
    "CREATE TABLE IF NOT EXISTS projection_chain ("
    " view text NOT NULL, position bigint NOT NULL, previous bigint NOT NULL, PRIMARY KEY (view, position))",
    "CREATE INDEX IF NOT EXISTS projection_chain_previous_idx ON projection_chain (view, previous)",
    "CREATE TABLE IF NOT EXISTS projection_dead_letters ("
    " id bigserial PRIMARY KEY,"
    " view text NOT NULL,"
    " dedupe_key text NOT NULL,"
    " position bigint,"
    " originator_id uuid,"
    " version bigint,"
    " event_type text NOT NULL,"
    " source text NOT NULL,"
    " payload bytea,"
    " error text NOT NULL,"
    " attempts integer NOT NULL DEFAULT 1,"
    " failed_at timestamptz NOT NULL DEFAULT now(),"
    " published_at timestamptz,"
    " resolved_at timestamptz,"
    " resolution text,"
    " UNIQUE (view, dedupe_key))",
    "CREATE INDEX IF NOT EXISTS projection_dead_letters_open_idx"
    " ON projection_dead_letters (originator_id, view) WHERE resolved_at IS NULL",
    "CREATE TABLE IF NOT EXISTS projection_status ("
    " view text PRIMARY KEY, state text NOT NULL, worker text NOT NULL, error_kind text,"
    " failures integer NOT NULL DEFAULT 0, since timestamptz NOT NULL DEFAULT now(),"
    " heartbeat_at timestamptz NOT NULL DEFAULT now())",
]

INFRASTRUCTURE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError)
# SQLSTATE classes that say the view (its tables, the database) is at fault, not the
# event: an undefined table or column, no privilege, disk full, a crash. The view stops
# and is retried; any other error is the event's, which becomes a dead letter.
VIEW_LEVEL_SQLSTATES = ("08", "40", "42", "53", "54", "55", "57", "58", "F0", "XX")


def is_view_level(error: BaseException) -> bool:
    if isinstance(error, INFRASTRUCTURE_ERRORS):
        return True
    state = getattr(error, "sqlstate", None)
    return isinstance(error, psycopg.Error) and isinstance(state, str) and state[:2] in VIEW_LEVEL_SQLSTATES


@dataclass(frozen=True)
class Delivery:
    """One event as a follower received it. ``event`` is None when it could not be
    decoded (``error`` says why); what could be read of it is kept for the dead letter."""

    position: int | None
    originator_id: UUID | None
    version: int | None
    event_type: str
    event: Any = None
    error: str | None = None
    previous: int | None = None
    stream: str | None = None
    offset: int | None = None
    payload: bytes | None = None

    @property
    def source(self) -> str:
        if self.stream is not None:
            return f"{self.stream}@{self.offset}"
        return f"store@{self.position}"


@dataclass
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dead_letters: list[int] = field(default_factory=list)
    low_water_mark: int = 0
    busy: bool = False  # the view is being rebuilt: nothing was applied


ENGINE_SCHEMA_VERSION = 1


def schema_mark(conn: Connection[Any], component: str) -> int | None:
    """The version of a component's tables this database has (None: never made). Reading it
    takes no lock: DDL (even CREATE ... IF NOT EXISTS) takes table locks that writers wait
    for, so processes run it only when the mark says they must."""
    schema = _schema(conn)  # marks live in the schema the tables are made in (a rebuild has its own)
    row = conn.execute("SELECT to_regclass(format('%%I.liudong_schema_marks', %s::text)) IS NOT NULL",
                       (schema,)).fetchone()
    if row is None or not _value(row, 0):
        return None
    row = conn.execute(SQL("SELECT version FROM {}.liudong_schema_marks WHERE component = %s").format(
        Identifier(schema)), (component,)).fetchone()
    return int(_value(row, 0)) if row is not None else None


def set_schema_mark(conn: Connection[Any], component: str, version: int) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS liudong_schema_marks (component text PRIMARY KEY, version int NOT NULL)")
    conn.execute("INSERT INTO liudong_schema_marks VALUES (%s, %s)"
                 " ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version", (component, version))


def ensure_engine_schema(conn: Connection[Any]) -> None:
    if schema_mark(conn, "engine") == ENGINE_SCHEMA_VERSION:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (zlib.crc32(b"liudong-engine-schema"),))
        for statement in SCHEMA:
            conn.execute(statement)
        set_schema_mark(conn, "engine", ENGINE_SCHEMA_VERSION)


class ViewApplier:
    """Applies batches of deliveries to one view. Each batch is one transaction, or a
    savepoint of the caller's transaction (a follower applies a batch to all its views in
    one commit; a view that fails rolls back alone)."""

    def __init__(
        self,
        projection: type[SqlProjection],
        *,
        privacy: Privacy,
        attempts: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.projection = projection()
        self.projection.privacy = privacy
        self.name = projection.name
        self.attempts = attempts
        self.backoff = backoff
        self.sleep = sleep
        self._rows: _RowBuffer | None = None  # during a rebuild: rows inserted many at a time
        tracking = Identifier(projection.tracking_table())
        # Names and positions as two arrays: one statement for any number of them.
        upsert = ("INSERT INTO {t} (application_name, notification_id) SELECT * FROM unnest(%s::text[], %s::bigint[])"
                  " ON CONFLICT (application_name) DO UPDATE"
                  " SET notification_id = GREATEST({t}.notification_id, EXCLUDED.notification_id)")
        self._upsert_tracking = SQL(upsert).format(t=tracking)
        self._select_tracking = SQL("SELECT application_name, notification_id FROM {t}"
                                    " WHERE application_name = ANY(%s)").format(t=tracking)
        self._lwm_lock = zlib.crc32(f"liudong-low-water-mark:{self.name}".encode())
        # The mark and how far the chain of links after it is unbroken, in one statement.
        self._select_advance = SQL(
            "WITH mark AS (SELECT coalesce((SELECT notification_id FROM {t} WHERE application_name = %(lwm)s), 0)"
            " AS at),"
            " links AS (SELECT position, previous,"
            " lag(position, 1, (SELECT at FROM mark)) OVER (ORDER BY position) AS before"
            " FROM projection_chain WHERE view = %(view)s AND position > (SELECT at FROM mark)),"
            " gap AS (SELECT min(position) AS at FROM links WHERE previous <> before)"
            " SELECT (SELECT at FROM mark) AS mark,"
            " (SELECT max(position) FROM links, gap WHERE gap.at IS NULL OR links.position < gap.at) AS reached"
        ).format(t=tracking)
        # Moving the mark: the new mark, the links behind it dropped, listeners told; one statement
        # (data-modifying WITH parts always run to completion).
        self._move_mark = SQL(
            f"WITH moved AS ({upsert} RETURNING 1),"
            " dropped AS (DELETE FROM projection_chain WHERE view = %s AND position <= %s RETURNING 1)"
            f" SELECT {_NOTIFY}"
        ).format(t=tracking)

    # -- schema -----------------------------------------------------------------------------
    def ensure_schema(self, conn: Connection[Any], *, rebuild: bool = True) -> None:
        """Create the view's tables and its tracking table, if missing. A view built by an
        older version of its class (``View.version``) is dropped first: the follower then
        builds it again from the first event. Only a follower does that (``rebuild``); any
        other process (an API process, a command) leaves a view of another version as it is,
        for its follower, which would otherwise go on from positions whose rows were dropped."""
        view = self.projection.view_class
        tracking = Identifier(self.projection.tracking_table())
        built = self._built_version(conn)
        if built == view.version:
            return  # no DDL: its table locks would make the view's writers wait
        if not rebuild and built is not None:
            log.warning("view %s was built by version %s; its follower (the projector or a worker of this"
                        " version) rebuilds it as version %s", self.name, built or 1, view.version)
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (self.projection.lock_key(),))
            conn.execute(SQL(
                "CREATE TABLE IF NOT EXISTS {} (application_name text PRIMARY KEY, notification_id bigint)"
            ).format(tracking))
            row = conn.execute(SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(tracking),
                               (VIEW_VERSION,)).fetchone()
            built = int(_value(row, 0)) if row is not None else None
            if (built is not None and built != view.version) or (built is None and self._has_rows(conn)):
                log.warning("view %s was built by version %s; building version %s from the events",
                            self.name, built or 1, view.version)
                for table in view.tables:
                    conn.execute(SQL("DROP TABLE IF EXISTS {}.{} CASCADE").format(Identifier(_schema(conn)),
                                                                                 Identifier(table)))
                conn.execute(SQL("DELETE FROM {}").format(tracking))
                for table in ("projection_versions", "projection_chain"):
                    conn.execute(SQL("DELETE FROM {} WHERE view = %s").format(Identifier(table)), (self.name,))
            for statement in view.ddl:
                conn.execute(statement)
            conn.execute(SQL(
                "INSERT INTO {} (application_name, notification_id) VALUES (%s, %s)"
                " ON CONFLICT (application_name) DO UPDATE SET notification_id = EXCLUDED.notification_id"
            ).format(tracking), (VIEW_VERSION, view.version))

    def _built_version(self, conn: Connection[Any]) -> int | None:
        # In the current schema only (a view rebuilt beside the live one has a schema of its own).
        row = conn.execute("SELECT to_regclass(format('%%I.%%I', current_schema(), %s::text)) IS NOT NULL",
                           (self.projection.tracking_table(),)).fetchone()
        if row is None or not _value(row, 0):
            return None
        row = conn.execute(SQL("SELECT notification_id FROM {} WHERE application_name = %s").format(
            Identifier(self.projection.tracking_table())), (VIEW_VERSION,)).fetchone()
        return int(_value(row, 0)) if row is not None else None

    def _has_rows(self, conn: Connection[Any]) -> bool:
        """Whether the view was built before it recorded its version."""
        row = conn.execute(SQL("SELECT count(*) FROM {} WHERE application_name = %s").format(
            Identifier(self.projection.tracking_table())), (LOW_WATER_MARK,)).fetchone()
        return bool(row is not None and _value(row, 0))

    def low_water_mark(self, conn: Connection[Any]) -> int:
        row = conn.execute(self._select_tracking, ([LOW_WATER_MARK],)).fetchone()
        return int(_value(row, 1)) if row is not None else 0

    def stream_offsets(self, conn: Connection[Any], streams: Sequence[str]) -> dict[str, int]:
        """The last offset this view dealt with on each of the given Kafka partitions."""
        return _tracked(conn.execute(self._select_tracking, (list(streams),)).fetchall())

    # -- batches ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _batch(self, conn: Connection[Any], tracking: list[str], deliveries: Sequence[Delivery]) -> Iterator[
            tuple[Pipeline, Cursor[Any], dict[str, int], tuple[dict[UUID, int], set[UUID]]] | None]:
        """One view's batch in pipeline mode, inside its savepoint: the view's lock, the
        tracking rows named (offsets, mark) and the versions and parked aggregates of the
        deliveries are asked together and answered in one round trip. Yields the pipeline, a
        cursor, the tracking rows and the versions; None if the view is being rebuilt. A
        handler that reads waits for its own answer; errors show at a sync (see ``_apply``)."""
        with conn.pipeline() as pipeline, conn.transaction(), conn.cursor() as cur, conn.cursor() as tracked, \
                conn.cursor() as versions:
            self._ask_enter(cur)
            tracked.execute(self._select_tracking, (tracking,))
            asked = self._ask_versions(versions, self._aggregates(deliveries))
            if not self._entered(cur):
                yield None
                return
            yield pipeline, cur, _tracked(tracked.fetchall()), self._versions_answer(versions, asked)

    def apply_ordered(self, conn: Connection[Any], deliveries: Sequence[Delivery], upto: int) -> BatchResult:
        """Apply events read from the store in order; afterwards every event up to
        ``upto`` has been dealt with (``upto`` may lie past the last delivery: the events
        between were read and are not of this view's kinds)."""
        with self._batch(conn, [LOW_WATER_MARK], deliveries) as batch:
            if batch is None:
                return BatchResult(busy=True)
            pipeline, cur, tracking, known = batch
            low_water = tracking.get(LOW_WATER_MARK, 0)
            fresh = [d for d in deliveries if d.position is not None and d.position > low_water]

            def tail(cur: Cursor[Any]) -> None:
                if upto > low_water:
                    cur.execute(self._upsert_tracking, ([LOW_WATER_MARK], [upto]))
                    notify_mark(cur, self.name, upto)

            result = self._apply(cur, pipeline, fresh, known, tail)
            result.low_water_mark = max(low_water, upto)
        return result

    def apply_streamed(self, conn: Connection[Any], deliveries: Sequence[Delivery]) -> BatchResult:
        """Apply events received from Kafka partitions (``stream`` and ``offset`` set on
        each; ``position`` and ``previous`` where the message carried them)."""
        streams = sorted({d.stream for d in deliveries if d.stream is not None})
        # The partitions' offsets and the low-water mark in one read. The mark only moves in
        # ``advance``; one moved by another worker meanwhile leaves links that the next advance
        # drops.
        with self._batch(conn, [*streams, LOW_WATER_MARK], deliveries) as batch:
            if batch is None:
                return BatchResult(busy=True)
            pipeline, cur, offsets, known = batch
            low_water = offsets.pop(LOW_WATER_MARK, 0)
            fresh = [d for d in deliveries if d.stream is None or (d.offset or 0) > offsets.get(d.stream, -1)]
            last: dict[str, int] = {}
            for d in deliveries:
                if d.stream is not None and d.offset is not None:
                    last[d.stream] = max(last.get(d.stream, -1), d.offset)
            moved = {stream: offset for stream, offset in last.items() if offset > offsets.get(stream, -1)}

            def tail(cur: Cursor[Any]) -> None:
                if moved:
                    cur.execute(self._upsert_tracking, (list(moved), list(moved.values())))
                self._link(cur, deliveries, low_water)

            result = self._apply(cur, pipeline, fresh, known, tail)
            result.low_water_mark = low_water
        return result

    def _link(self, cur: Cursor[Any], deliveries: Sequence[Delivery], low_water: int) -> None:
        """Record which position follows which, for ``advance``."""
        links = [(d.position, d.previous) for d in deliveries if d.position is not None and d.previous is not None]
        links = [(p, q) for p, q in links if p > low_water]
        if links:
            cur.execute(
                "INSERT INTO projection_chain (view, position, previous)"
                " SELECT %s, p, q FROM unnest(%b::bigint[], %b::bigint[]) AS l(p, q) ON CONFLICT DO NOTHING",
                (self.name, [p for p, _ in links], [q for _, q in links]),
            )

    def advance(self, conn: Connection[Any]) -> int:
        """Move the low-water mark along the chain of positions as far as it is unbroken.
        Its own short transaction, after the batches that linked the positions committed:
        workers on other partitions never wait for each other's batches, and a worker that
        dies before advancing leaves the links for the next advance."""
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lwm_lock,))
            # Each stored event names the one before it: the mark may move to the last
            # position before the first link whose predecessor has not arrived yet.
            row = cur.execute(self._select_advance, {"view": self.name, "lwm": LOW_WATER_MARK}).fetchone()
            low_water = int(_value(row, 0)) if row is not None else 0
            reached = _value(row, 1) if row is not None else None
            if reached is not None and int(reached) > low_water:
                low_water = int(reached)
                cur.execute(self._move_mark, ([LOW_WATER_MARK], [low_water], self.name, low_water,
                                              NOTIFY_CHANNEL, None, _mark_payload(self.name, low_water)))
        return low_water

    def _ask_enter(self, cur: Cursor[Any]) -> None:
        """Take this view's lock, shared with other appliers (each aggregate's rows are
        its own) and exclusive of a rebuild. A view being rebuilt is skipped, not waited
        for, so the other views of the same batch go on (``_entered`` reads the answer)."""
        cur.execute("SELECT pg_try_advisory_xact_lock_shared(%s)", (self.projection.lock_key(),))

    @staticmethod
    def _entered(cur: Cursor[Any]) -> bool:
        row = cur.fetchone()
        return bool(row is not None and _value(row, 0))

    # -- applying ---------------------------------------------------------------------------
    def _relevant(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        return [d for d in deliveries if d.event is None or self.projection.handles_event(d.event)]

    def _apply(self, cur: Cursor[Any], pipeline: Pipeline, deliveries: Sequence[Delivery],
               known: tuple[dict[UUID, int], set[UUID]] | None = None,
               tail: Callable[[Cursor[Any]], None] | None = None) -> BatchResult:
        """Apply a batch in pipeline mode; ``known``: the versions and parked aggregates,
        read already (of these deliveries' aggregates or more); ``tail``: the follower's own
        writes (offsets, links, mark), sent with the batch's and written again if the batch
        goes the careful way."""
        relevant = self._relevant(deliveries)
        if not relevant:
            if tail is not None:
                tail(cur)
                pipeline.sync()  # an error shows here, inside the caller's savepoint
            return BatchResult()
        prefetch = getattr(self.projection.privacy, "prefetch", None)
        if prefetch is not None:
            prefetch([vars(d.event) for d in relevant if d.event is not None])
        if known is None:
            known = self._versions_and_parked(cur, self._aggregates(relevant))
        versions, parked = dict(known[0]), known[1]
        before = dict(versions)
        cur.execute("SAVEPOINT batch")
        try:
            # The handlers' writes go to the server without a round trip each. The sync
            # waits for them all and raises the first error. (Sending runs of one statement
            # as executemany gained nothing.)
            result = self._run(cur, pipeline, relevant, versions, set(parked), careful=False)
            if self._rows is not None:
                self._rows.flush(cur)
            self._finish(cur, before, versions, tail)
            pipeline.sync()
        except Exception as error:  # one of the events fails this view: go through them one by one
            if self._rows is not None:
                self._rows.clear()
            if is_view_level(error):
                raise
            _settle(pipeline)
            cur.execute("ROLLBACK TO SAVEPOINT batch")
            versions = dict(before)
            result = self._run(cur, pipeline, relevant, versions, set(parked), careful=True)
            self._finish(cur, before, versions, tail)
            pipeline.sync()  # the follower's own writes failing again: the view fails as a whole
        return result

    def _finish(self, cur: Cursor[Any], before: dict[UUID, int], versions: dict[UUID, int],
                tail: Callable[[Cursor[Any]], None] | None) -> None:
        """The versions applied and the follower's own writes, then the batch's savepoint
        released: any of them failing rolls back to it like a handler's error."""
        changed = {k: v for k, v in versions.items() if before.get(k) != v}
        if changed:
            cur.execute(
                "INSERT INTO projection_versions (view, originator_id, version)"
                " SELECT %s, i, v FROM unnest(%b::uuid[], %b::bigint[]) AS x(i, v)"
                " ON CONFLICT (view, originator_id) DO UPDATE"
                " SET version = GREATEST(projection_versions.version, EXCLUDED.version)",
                (self.name, list(changed), list(changed.values())),
            )
        if tail is not None:
            tail(cur)
        cur.execute("RELEASE SAVEPOINT batch")

    def _run(self, cur: Cursor[Any], pipeline: Pipeline | None, deliveries: Sequence[Delivery],
             versions: dict[UUID, int], parked: set[UUID], *, careful: bool) -> BatchResult:
        result = BatchResult()
        for d in deliveries:
            if d.event is None:
                dead = self._dead_letter(cur, d, EVERY_VIEW, d.error or "cannot be decoded")
                result.dead_letters.extend(dead)
                if d.originator_id is not None:
                    parked.add(d.originator_id)
                continue
            aggregate, version = d.event.originator_id, d.event.originator_version
            if version <= versions.get(aggregate, 0):
                result.duplicates += 1
                continue
            if aggregate in parked:
                reason = "waits behind an earlier dead letter of the same aggregate"
                result.dead_letters.extend(self._dead_letter(cur, d, self.name, reason))
                continue
            if not careful:
                rows = self._rows
                if rows is None or not rows.add(self.projection, d.event):
                    if rows is not None and aggregate in rows.aggregates:
                        rows.flush(cur)  # this event's aggregate has a row waiting: it goes first
                    self.projection.apply(cur, d.event)
            else:
                error = self._apply_carefully(cur, pipeline, d)
                if error is not None:
                    result.dead_letters.extend(self._dead_letter(cur, d, self.name, error, attempts=self.attempts))
                    parked.add(aggregate)
                    continue
            versions[aggregate] = version
            result.applied += 1
        return result

    def _apply_carefully(self, cur: Cursor[Any], pipeline: Pipeline | None, d: Delivery) -> str | None:
        """Apply one event under a savepoint, retrying with backoff; the error if it never
        succeeds. In pipeline mode each try waits for its answer."""
        pause = self.backoff
        error: Exception | None = None
        for attempt in range(self.attempts):
            cur.execute("SAVEPOINT event")
            try:
                self.projection.apply(cur, d.event)
                if pipeline is not None:
                    pipeline.sync()
            except Exception as failure:  # the handler's failure: retried, then a dead letter
                if is_view_level(failure):
                    raise
                if pipeline is not None:
                    _settle(pipeline)
                cur.execute("ROLLBACK TO SAVEPOINT event")
                error = failure
                log.warning("view %s failed on %s v%s (attempt %d of %d): %s", self.name, d.event_type,
                            d.version, attempt + 1, self.attempts, type(failure).__name__)
                if attempt + 1 < self.attempts:
                    self.sleep(pause)
                    pause *= 2
                continue
            cur.execute("RELEASE SAVEPOINT event")
            return None
        assert error is not None
        return f"{type(error).__name__}: {error}"[:MAX_ERROR_TEXT]

    def _ask_versions(self, cur: Cursor[Any], ids: list[UUID]) -> bool:
        """Send the query for the versions and parked aggregates of ``ids`` (the answer is
        read by ``_versions_answer``); False if there are none to ask about."""
        if not ids:
            return False
        cur.execute(
            "SELECT originator_id, version FROM projection_versions"
            " WHERE view = %(view)s AND originator_id = ANY(%(ids)s)"
            " UNION ALL SELECT DISTINCT originator_id, NULL::bigint FROM projection_dead_letters"
            " WHERE resolved_at IS NULL AND view IN (%(view)s, %(every)s) AND originator_id = ANY(%(ids)s)",
            {"view": self.name, "every": EVERY_VIEW, "ids": ids},
        )
        return True

    @staticmethod
    def _versions_answer(cur: Cursor[Any], asked: bool) -> tuple[dict[UUID, int], set[UUID]]:
        """The versions this view applied, and the aggregates parked behind an unresolved
        dead letter (a parked aggregate's row has no version)."""
        if not asked:
            return {}, set()
        rows = cur.fetchall()
        versions = {_value(r, 0): int(_value(r, 1)) for r in rows if _value(r, 1) is not None}
        return versions, {_value(r, 0) for r in rows if _value(r, 1) is None}

    def _versions_and_parked(self, cur: Cursor[Any], ids: list[UUID]) -> tuple[dict[UUID, int], set[UUID]]:
        return self._versions_answer(cur, self._ask_versions(cur, ids))

    def _aggregates(self, deliveries: Sequence[Delivery]) -> list[UUID]:
        """The aggregates of the deliveries this view handles."""
        return list({d.originator_id for d in self._relevant(deliveries) if d.originator_id is not None})

    def _dead_letter(self, cur: Cursor[Any], d: Delivery, view: str, error: str, attempts: int = 1) -> list[int]:
        if view == EVERY_VIEW or d.originator_id is None or d.version is None:
            dedupe_key = d.source
        else:
            dedupe_key = f"{d.originator_id}:{d.version}"
        row = cur.execute(
            "INSERT INTO projection_dead_letters"
            " (view, dedupe_key, position, originator_id, version, event_type, source, payload, error, attempts)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (view, dedupe_key) DO UPDATE"
            # A letter a rebuild closed, failing again in that rebuild (or later), is open again:
            # its aggregate's later events must keep waiting behind it.
            " SET resolved_at = NULL, resolution = NULL, error = EXCLUDED.error, attempts = EXCLUDED.attempts,"
            " failed_at = now(), published_at = NULL WHERE projection_dead_letters.resolution = 'rebuilt'"
            " RETURNING id",
            (view, dedupe_key, d.position, d.originator_id, d.version, d.event_type[:200], d.source, d.payload,
             error[:MAX_ERROR_TEXT], attempts),
        ).fetchone()
        if row is None:
            return []
        log.error("dead letter #%s for view %s: %s v%s at %s", _value(row, 0), view, d.event_type, d.version, d.source)
        return [int(_value(row, 0))]

    # -- rebuild ----------------------------------------------------------------------------
    def rebuild(self, conn: Connection[Any], batches: Iterable[Sequence[Delivery]], head: int) -> int:
        """Drop the view's tables and build them again from the events alone, in one
        transaction, while every other writer of this view waits. ``batches`` yields the
        store's events in order up to ``head``, read after this call took the lock.
        Returns the low-water mark reached."""
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self.projection.lock_key(),))
            schema = _schema(conn)
            for table in self.projection.view_class.tables:
                cur.execute(SQL("DROP TABLE IF EXISTS {}.{} CASCADE").format(Identifier(schema), Identifier(table)))
            view = self.projection.view_class
            later = [s for s in view.ddl
                     if view.indexes_after_rebuild and s.lstrip().upper().startswith("CREATE INDEX")]
            for statement in view.ddl:
                if statement not in later:
                    cur.execute(statement)
            cur.execute(SQL("DELETE FROM {} WHERE application_name = %s").format(
                Identifier(self.projection.tracking_table())), (LOW_WATER_MARK,))
            for table in ("projection_versions", "projection_chain"):
                cur.execute(SQL("DELETE FROM {} WHERE view = %s").format(Identifier(table)), (self.name,))
            cur.execute("UPDATE projection_dead_letters SET resolved_at = now(), resolution = 'rebuilt'"
                        " WHERE view = %s AND resolved_at IS NULL", (self.name,))
            cur.execute("SELECT set_config('liudong.rebuilding', 'on', true)")
            self._rows = _RowBuffer() if self.projection.bulk_rows else None
            try:
                with conn.pipeline() as pipeline:
                    for batch in batches:
                        self._apply(cur, pipeline, batch)
            finally:
                self._rows = None
            cur.execute("SELECT set_config('liudong.rebuilding', 'off', true)")
            for statement in [*later, *view.after_rebuild]:
                cur.execute(statement)
            if head:
                cur.execute(self._upsert_tracking, ([LOW_WATER_MARK], [head]))
                notify_mark(cur, self.name, head)
        return head

    # -- dead letters -----------------------------------------------------------------------
    def retry(self, conn: Connection[Any], letter: dict[str, Any], event: Any) -> str:
        """Apply one dead letter's event (already decoded) to this view, and then the
        later dead letters of the same aggregate that waited behind it. Returns what
        happened: ``applied``, ``already applied`` or the error."""
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", (self.projection.lock_key(),))
            aggregate = event.originator_id
            versions, _ = self._versions_and_parked(cur, [aggregate])
            outcome = "already applied"
            if self.projection.handles_event(event) and event.originator_version > versions.get(aggregate, 0):
                delivery = Delivery(letter.get("position"), aggregate, event.originator_version, letter["event_type"],
                                    event)
                error = self._apply_carefully(cur, None, delivery)
                if error is not None:
                    cur.execute("UPDATE projection_dead_letters SET attempts = attempts + %s, error = %s,"
                                " failed_at = now() WHERE id = %s", (self.attempts, error, letter["id"]))
                    return error
                outcome = "applied"
                cur.execute(
                    "INSERT INTO projection_versions (view, originator_id, version) VALUES (%s, %s, %s)"
                    " ON CONFLICT (view, originator_id) DO UPDATE"
                    " SET version = GREATEST(projection_versions.version, EXCLUDED.version)",
                    (self.name, aggregate, event.originator_version),
                )
        return outcome


def hold_tracking(conn: Connection[Any], appliers: Iterable[ViewApplier], names: Iterable[str]) -> None:
    """Wait for, then hold to the end of the caller's transaction, each view's lock on the
    tracking rows its batch reads and moves (the Kafka partitions a worker's batch came from, or
    the mark of a reader of the store), before any view of the batch reads them. Two followers
    applying the same events (a worker dropped from its group mid-batch and the partition's new
    owner; two in-process projectors) take turns: the second reads what the first committed and
    skips it as duplicates (found by a review: both read the same offsets and versions, and the
    second's inserts failed as dead letters that parked the aggregates for good). Taken for all
    the batch's views at once, in one order (by key) whatever order the views are named in, and
    per schema (a rebuild into its own schema takes none of the live view's), so followers never
    wait for each other in a circle, and workers on other partitions never wait at all."""
    pairs = sorted({(applier.name, name) for applier in appliers for name in names})
    if not pairs:
        return
    conn.execute(
        "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended("
        "'liudong-tracking:' || current_schema() || ':' || v || ':' || n, 0) AS k"
        " FROM unnest(%s::text[], %s::text[]) AS t(v, n)) AS keys ORDER BY k",  # locked after sorting
        ([v for v, _ in pairs], [n for _, n in pairs]))


def _settle(pipeline: Pipeline) -> None:
    """After an error in pipeline mode: the server skips everything until a Sync, and psycopg
    may have raised the error early (from a later statement or a read), before any Sync was
    sent. One is sent now, and what it raises (the same error, or the statements it skipped)
    ignored, so the rollback that follows is not skipped too."""
    with contextlib.suppress(psycopg.Error):
        pipeline.sync()


class _RowBuffer:
    """The rows of a rebuild's batch whose handlers only insert one (``BulkRows``): inserted
    many in one statement at the end of the batch, or before a later event of the same
    aggregate (handlers may rely on their own aggregate's earlier events, never on others')."""

    def __init__(self) -> None:
        self.rows: dict[BulkRows, list[tuple[Any, ...]]] = {}
        self.aggregates: set[UUID] = set()

    def add(self, projection: SqlProjection, event: Any) -> bool:
        made = projection.bulk_row(event)
        if made is None:
            return False
        bulk, row = made
        self.rows.setdefault(bulk, []).append(row)
        self.aggregates.add(event.originator_id)
        return True

    def flush(self, cur: Cursor[Any]) -> None:
        for bulk, rows in self.rows.items():
            columns = [list(values) for values in zip(*rows, strict=True)]
            for i, (_, kind) in enumerate(bulk.columns):
                if kind.endswith("[]"):  # unnest cannot take arrays of arrays: each as its literal
                    columns[i] = [None if v is None else _array_literal(v) for v in columns[i]]
            cur.execute(_bulk_insert(bulk), columns)
        self.clear()

    def clear(self) -> None:
        self.rows.clear()
        self.aggregates.clear()


@functools.lru_cache(maxsize=64)
def _bulk_insert(bulk: BulkRows) -> Composed:
    arrays = [f"%b::{'text' if kind.endswith('[]') else kind}[]" for _, kind in bulk.columns]
    values = [f"u.c{i}::{kind}" if kind.endswith("[]") else f"u.c{i}" for i, (_, kind) in enumerate(bulk.columns)]
    return SQL(
        f"INSERT INTO {{}} ({', '.join('{}' for _ in bulk.columns)}) SELECT {', '.join(values)}"
        f" FROM unnest({', '.join(arrays)}) AS u({', '.join(f'c{i}' for i in range(len(bulk.columns)))})"
    ).format(Identifier(bulk.table), *(Identifier(name) for name, _ in bulk.columns))


def _array_literal(values: Sequence[Any]) -> str:
    """A one-dimensional PostgreSQL array literal of text values."""
    def quoted(value: Any) -> str:
        if value is None:
            return "NULL"
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "{" + ",".join(quoted(v) for v in values) + "}"


def _tracked(rows: Iterable[Any]) -> dict[str, int]:
    """Tracking rows (name, position) as a dict."""
    return {str(_value(r, 0)): int(_value(r, 1)) for r in rows}


def _mark_payload(view: str, mark: int) -> str:
    return f"{view}:{mark}"


def notify_mark(cur: Any, view: str, mark: int, schema: str | None = None) -> None:
    """Tell listeners a view's low-water mark moved: ``SCHEMA/VIEW:MARK`` (the schema, so a
    copy built beside the live views is never taken for them)."""
    cur.execute(f"SELECT {_NOTIFY}", (NOTIFY_CHANNEL, schema, _mark_payload(view, mark)))


def parse_mark(payload: str) -> tuple[str, str, int] | None:
    """(schema, view, mark) from a notification's payload; None if it is not one."""
    schema, _, rest = payload.partition("/")
    view, _, mark = rest.rpartition(":")
    try:
        return schema, view, int(mark)
    except ValueError:
        return None


def resolve_dead_letter(conn: Connection[Any], letter_id: int, resolution: str) -> None:
    conn.execute("UPDATE projection_dead_letters SET resolved_at = now(), resolution = %s WHERE id = %s",
                 (resolution, letter_id))


def open_dead_letters(conn: Connection[Any], *, view: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, view, position, originator_id, version, event_type, source, error, attempts, failed_at"
        " FROM projection_dead_letters WHERE resolved_at IS NULL" + (" AND view = %s" if view else "")
        + " ORDER BY id LIMIT %s",
        [view, limit] if view else [limit],
    ).fetchall()
    return [_row(r) for r in rows]


def record_status(conn: Connection[Any], view: str, worker: str, error_kind: str | None) -> None:
    """A view's health as its follower sees it: ``running`` or ``failing`` (with the kind
    of error, never its text), and a heartbeat."""
    state = "failing" if error_kind else "running"
    conn.execute(
        "INSERT INTO projection_status (view, state, worker, error_kind, failures, since, heartbeat_at)"
        " VALUES (%s, %s, %s, %s, %s, now(), now())"
        " ON CONFLICT (view) DO UPDATE SET worker = EXCLUDED.worker, heartbeat_at = now(),"
        " error_kind = EXCLUDED.error_kind,"
        " failures = CASE WHEN EXCLUDED.state = 'failing' THEN projection_status.failures + 1 ELSE 0 END,"
        " since = CASE WHEN projection_status.state = EXCLUDED.state THEN projection_status.since ELSE now() END,"
        " state = EXCLUDED.state",
        (view, state, worker, error_kind, 1 if error_kind else 0),
    )


def record_heartbeat(conn: Connection[Any], view: str, worker: str, failing: bool) -> None:
    """A follower's periodic word on a view: a failing view keeps the kind of error its
    failure recorded (and its count of failures); a healthy one is ``running``."""
    if not failing:
        record_status(conn, view, worker, None)
        return
    conn.execute(
        "INSERT INTO projection_status (view, state, worker, error_kind, failures, since, heartbeat_at)"
        " VALUES (%s, 'failing', %s, 'retrying', 1, now(), now())"
        " ON CONFLICT (view) DO UPDATE SET worker = EXCLUDED.worker, heartbeat_at = now(),"
        " error_kind = CASE WHEN projection_status.state = 'failing'"
        " THEN coalesce(projection_status.error_kind, EXCLUDED.error_kind) ELSE EXCLUDED.error_kind END,"
        " failures = CASE WHEN projection_status.state = 'failing' THEN projection_status.failures ELSE 1 END,"
        " since = CASE WHEN projection_status.state = 'failing' THEN projection_status.since ELSE now() END,"
        " state = 'failing'",
        (view, worker),
    )


def _schema(conn: Connection[Any]) -> str:
    """The schema new tables go to: a view is only ever dropped there."""
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(_value(row, 0))


def _value(row: Any, index: int) -> Any:
    """A column of a row fetched as a tuple or as a dict."""
    if isinstance(row, dict):
        return list(row.values())[index]
    return row[index]


def _row(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return dict(row)
    return {str(i): v for i, v in enumerate(row)}
