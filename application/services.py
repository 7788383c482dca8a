"""The composition root: one place that builds the database, the application, the
read-side connection pool and, in the embedded default, the projector process; and
closes them. The API and the CLI build their services here."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from application.areas import seed_areas
from application.chain import start_chainer
from application.database import Database, open_database
from application.keys import Authenticator, TokenRules
from application.office import Liudong
from application.projecting import ProjectorProcess, rebuild
from application.settings import Settings
from application.store import IDEMPOTENCY_TABLE, GroupCommit
from application.users import UserStore
from domain.common import ERASED, Actor, DomainError, Role, Stamp
from domain.operators import Operator
from projections.base import SqlProjection
from projections.disputes import overdue_open_cases
from projections.engine import LOW_WATER_MARK, ViewApplier, ensure_engine_schema, schema_mark, set_schema_mark
from projections.registry import PROJECTIONS

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
    projector: ProjectorProcess | None = None
    projections: dict[str, type[SqlProjection]] = field(default_factory=lambda: dict(PROJECTIONS))
    _stopping: threading.Event = field(default_factory=threading.Event)
    _sweeper: threading.Thread | None = None
    _chainer: threading.Thread | None = None
    owns_database: bool = False
    authenticator: Authenticator = field(default=None)  # type: ignore[assignment]
    users: UserStore = field(default=None)  # type: ignore[assignment]

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        run_projections: bool | None = None,
        database: Database | None = None,
    ) -> Services:
        owns_database = database is None
        database = database or open_database(settings)
        master_key = settings.master_key()
        env = database.eventsourcing_env(settings.pool_size, master_key=master_key)
        with schema_lock(database) as current:
            app = Liudong(env=env if not current else {**env, "CREATE_TABLE": "no"})
            if not current:
                mark_store_schema(database)
        app.command_retries = settings.command_retries
        app.recorder.group_commit = GroupCommit() if settings.group_commit else None  # type: ignore[attr-defined]
        app.sla = settings.sla_policy()
        app.SUBSIDY_TWO_APPROVALS_THRESHOLD = settings.subsidy_two_approvals_threshold
        pool: ConnectionPool[Any] = ConnectionPool(
            database.dsn,
            min_size=1,
            max_size=settings.pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            open=True,
        )
        services = cls(settings=settings, database=database, app=app, pool=pool, clock=clock,
                       owns_database=owns_database)
        with app.connection() as conn:
            app.vault.check_master_key(conn)
        services.ensure_schema()
        services.seed_areas()
        services.users = UserStore(pool)
        services.authenticator = Authenticator(pool, app.areas, TokenRules(
            issuer=settings.jwt_issuer, audience=settings.jwt_audience, jwks_file=settings.jwt_jwks_file,
            hs256_secret=settings.jwt_hs256_secret.get_secret_value() if settings.jwt_hs256_secret else None))
        wanted = settings.run_projections if run_projections is None else run_projections
        if wanted and not settings.distributed:
            # Without Kafka this process keeps the views (a child process follows the store).
            services.projector = ProjectorProcess(
                database.dsn, services.projections, log_level=settings.log_level,
                options={"batch_size": settings.projection_batch_size, "attempts": settings.projection_attempts,
                         "backoff": settings.projection_retry_backoff, "master_key": master_key},
            )
            services.projector.start()
        if wanted and settings.chain_events:
            # The chain over the events: one chainer among all processes (the others stand by).
            services._chainer = start_chainer(
                database.dsn, checkpoint_every=settings.checkpoint_every_events,
                checkpoint_seconds=settings.checkpoint_interval_seconds,
                signing_key=settings.audit_signing_key(), stopping=services._stopping)
        if wanted and settings.sweep_interval_seconds:
            services._sweeper = threading.Thread(target=services._sweep_periodically, name="sweeper", daemon=True)
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

    def reward_sweep(self) -> int:
        """Lapse each reward in lieu not verified by its deadline, releasing its budget;
        returns how many lapsed."""
        stamp = self.system_stamp()
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT application_id AS id FROM subsidy_applications WHERE status = 'approved'"
                " AND outcome_verified_on IS NULL AND target_due IS NOT NULL AND target_due < %s", (stamp.today,)
            ).fetchall()
        return self.app.lapse_overdue_rewards([r["id"] for r in rows], stamp)

    def seat_sweep(self) -> int:
        """Reconcile committee seats with their members' residence (vacancies for
        departures recorded before seats were events, or by an import); returns how many
        committees changed."""
        stamp = self.system_stamp()
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT DISTINCT committee_id AS id FROM committee_members"
                                " WHERE resident_id IS NOT NULL").fetchall()
        return self.app.reconcile_committee_seats([r["id"] for r in rows], stamp)

    def active_member_sweep(self) -> int:
        """Lose each active member whose resident has departed without it reaching them (an
        import of moves, or a departure racing the identification); returns how many."""
        stamp = self.system_stamp()
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT a.id FROM active_members a JOIN residents r ON r.id = a.resident_id"
                                " WHERE a.lost_on IS NULL AND r.status = 'departed'").fetchall()
        return self.app.lose_departed_active_members([r["id"] for r in rows], stamp)

    def meeting_sweep(self) -> int:
        """Record each past month a management committee held no meeting, once; returns
        how many months were recorded."""
        stamp = self.system_stamp()
        with self.pool.connection() as conn:
            rows = conn.execute("SELECT id FROM committees").fetchall()
        return self.app.record_missed_meetings([r["id"] for r in rows], stamp)

    def _years_ago(self, years: int) -> date:
        today = self.today()
        try:
            return today.replace(year=today.year - years)
        except ValueError:  # 29 February
            return today.replace(year=today.year - years, day=28)

    def retention_due(self) -> list[dict[str, Any]]:
        """Residents whose personal data is past its retention: departed more than the
        retention period ago (by effective date), not erased, and not a party to an open
        dispute (a legal hold while the case is worked)."""
        years = self.settings.retention_years_after_departure
        if not years:
            return []
        cutoff = self._years_ago(years)
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT r.id, r.since AS departed_on FROM residents r WHERE r.status = 'departed' AND r.since < %s"
                " AND r.name_masked <> %s AND NOT EXISTS (SELECT 1 FROM case_details c"
                " WHERE c.status <> 'closed' AND c.party_resident_ids @> ARRAY[r.id]) ORDER BY r.since, r.id",
                (cutoff, ERASED),
            ).fetchall()
        return [dict(r) for r in rows]

    def retention_sweep(self) -> int:
        """Erase the personal data of every resident past retention (the system actor,
        legal basis retention_expired); returns how many were erased."""
        stamp = self.system_stamp()
        erased = 0
        years = self.settings.retention_years_after_departure
        cutoff = self._years_ago(years) if years else None
        for row in self.retention_due():
            try:  # the listing is the views'; each erasure judges the records again
                self.app.erase_resident(row["id"], legal_basis="retention_expired",
                                        note=f"retention ended: departed {row['departed_on']}", stamp=stamp,
                                        retention_cutoff=cutoff)
            except DomainError as error:  # erased, back, or a party to an open case meanwhile
                log.info("retention sweep skipped a resident: %s", error.rule)
                continue
            erased += 1
        return erased

    def contact_retention_sweep(self) -> int:
        """Erase every operator's former contact persons replaced longer ago than their
        retention (the system actor, legal basis retention_expired); returns for how many
        operators. The current contact stays."""
        years = self.settings.former_contact_retention_years
        if not years:
            return 0
        cutoff, stamp, erased = self._years_ago(years), self.system_stamp(), 0
        with self.pool.connection() as conn:
            ids = [r["id"] for r in conn.execute("SELECT operator_id AS id FROM operators ORDER BY operator_id")]
        for operator_id in ids:
            if not self.app.load(Operator, operator_id).former_contacts_due(cutoff):
                continue
            try:
                self.app.erase_former_operator_contacts(operator_id, replaced_before=cutoff, stamp=stamp)
            except DomainError as error:  # erased meanwhile by someone else
                log.info("retention sweep skipped an operator: %s", error.rule)
                continue
            erased += 1
        return erased

    def seed_areas(self) -> int:
        """Define the areas of the shipped data file that the register lacks."""
        existing = self.app.areas.refresh()
        defined = 0
        for area in seed_areas():
            if area["code"] in existing:
                continue
            try:
                self.app.define_area(code=area["code"], name_zh=area["name_zh"], name_en=area["name_en"],
                                     level=area["level"], parent=area.get("parent"), stamp=self.system_stamp())
            except DomainError as error:  # another process seeded it first
                if error.rule != "area_exists":
                    raise
            else:
                defined += 1
        return defined

    def _sweep_periodically(self) -> None:
        while not self._stopping.wait(self.settings.sweep_interval_seconds):
            for sweep in (self.sla_sweep, self.permit_sweep, self.reward_sweep, self.seat_sweep, self.meeting_sweep,
                          self.active_member_sweep, self.retention_sweep, self.contact_retention_sweep,
                          self.purge_expired_idempotency_keys):
                try:
                    count = sweep()
                except Exception as error:  # retried at the next interval; the kind of error is logged
                    log.error("%s failed: %s", sweep.__name__, type(error).__name__)
                else:
                    log.info("%s: %d", sweep.__name__, count)

    def ensure_schema(self) -> None:
        """The views' tables where missing (a fresh database). A view built by another
        version is left to its follower: this process (an API process, a command such as
        ``projections status``) does not drop a view that workers are keeping (found by a
        review: a read-only command dropped a live view under running workers)."""
        with self.pool.connection() as conn:
            ensure_engine_schema(conn)
            for cls in self.projections.values():
                ViewApplier(cls, privacy=self.app.vault).ensure_schema(conn, rebuild=False)

    def close(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join()
        if self._chainer is not None:
            self._chainer.join(10)
        if self.projector is not None:
            self.projector.stop()
        self.pool.close()
        self.app.close()
        if self.owns_database:
            self.database.close()

    # -- read side ----------------------------------------------------------
    def positions(self) -> dict[str, int]:
        """Each view's low-water mark: every event up to it has been applied."""
        result: dict[str, int] = {}
        with self.pool.connection() as conn:
            for name, cls in self.projections.items():
                result[name] = self._mark(conn, cls)
        return result

    @staticmethod
    def _mark(conn: Any, cls: type[SqlProjection]) -> int:
        row = conn.execute(
            f'SELECT notification_id AS n FROM "{cls.tracking_table()}" WHERE application_name = %s',
            (LOW_WATER_MARK,),
        ).fetchone()
        return int(row["n"]) if row and row["n"] is not None else 0

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def view_status(self) -> dict[str, dict[str, Any]]:
        """What each view's follower last reported (``projection_status``)."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT view, state, worker, error_kind, failures, since, heartbeat_at,"
                " extract(epoch FROM now() - heartbeat_at) AS silent_for FROM projection_status"
            ).fetchall()
            letters = conn.execute(
                "SELECT view, count(*) AS n FROM projection_dead_letters WHERE resolved_at IS NULL GROUP BY view"
            ).fetchall()
        dead = {r["view"]: int(r["n"]) for r in letters}
        result = {r["view"]: {**r, "dead_letters": dead.get(r["view"], 0) + dead.get("*", 0)} for r in rows}
        for name in self.projections:
            result.setdefault(name, {"view": name, "state": "unknown", "dead_letters": dead.get(name, 0)})
        return result

    def wait_for(self, projection: str, position: int, timeout: float) -> bool:
        """Block until ``projection`` has dealt with every event up to ``position``, up to
        ``timeout`` seconds."""
        cls = self.projections[projection]
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            with self.pool.connection() as conn:
                if self._mark(conn, cls) >= position:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def rebuild(self, name: str, progress: Callable[[int, int], None] | None = None) -> int:
        return rebuild(self.database.dsn, self.projections[name], master_key=self.settings.master_key(),
                       progress=progress)

    def purge_expired_idempotency_keys(self) -> int:
        """Forget Idempotency-Keys older than their time to live (run with the sweeps)."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                f"DELETE FROM {IDEMPOTENCY_TABLE} WHERE created_at < now() - make_interval(hours => %s)",
                (self.settings.idempotency_ttl_hours,),
            )
            return int(cur.rowcount)




# Raise when the event store's DDL (application.store, privacy, areas, keys, users) changes.
STORE_SCHEMA_VERSION = 10  # 10: pii_texts


@contextlib.contextmanager
def schema_lock(database: Database) -> Iterator[bool]:
    """One process at a time creates the event store's tables and functions: several
    starting together (API, relay, workers) would otherwise collide on CREATE OR REPLACE.
    Yields whether the schema is current already (then no DDL runs: its table locks would
    make writers wait, and could deadlock with them)."""
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        if schema_mark(conn, "store") == STORE_SCHEMA_VERSION:
            yield True
            return
        conn.execute("SELECT pg_advisory_lock(%s)", (zlib.crc32(b"liudong-event-store-schema"),))
        try:
            yield schema_mark(conn, "store") == STORE_SCHEMA_VERSION
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (zlib.crc32(b"liudong-event-store-schema"),))


def mark_store_schema(database: Database) -> None:
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        set_schema_mark(conn, "store", STORE_SCHEMA_VERSION)


def ensure_event_store(database: Database, master_key: bytes) -> None:
    """Create the event store's tables and functions if missing (a relay or a worker may
    start before any API process has)."""
    with schema_lock(database) as current:
        if not current:
            Liudong(env={**database.eventsourcing_env(1, master_key=master_key), "POSTGRES_MAX_OVERFLOW": "0"}).close()
            mark_store_schema(database)
