"""The event store and the use cases: one eventsourcing ``Application`` whose
commands load aggregates, apply a domain command and save every changed aggregate
in one PostgreSQL transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

import psycopg.errors
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    RecordConflictError,
    StoredEvent,
    Transcoding,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

from domain.common import Stamp
from domain.identity import IdentityNumber
from domain.residents import IdentityNumberClaim, Resident, claim_id, duplicate_identity_number
from domain.sites import HousingSite

IDEMPOTENCY_TABLE = "liudong_idempotency"


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class CommandResult:
    """What a command returns: the aggregate it acted on, its new version, and the
    global position of the last event it stored (for read-your-writes)."""

    id: UUID
    version: int
    position: int


@dataclass
class IdempotencyClaim:
    """Recorded with a command's events, in the same transaction, so a retried
    request finds the first response and never stores the events twice."""

    actor_id: str
    key: str
    fingerprint: str
    render: Callable[[CommandResult], tuple[int, dict[str, Any], str | None]]
    target: tuple[UUID, int] | None = field(default=None)


class IdempotencyKeyTaken(Exception):
    """Another request with the same Idempotency-Key committed first."""


class NotFound(Exception):
    def __init__(self, kind: str, aggregate_id: UUID | str, field_name: str | None = None) -> None:
        super().__init__(f"{kind} {aggregate_id} not found")
        self.kind = kind
        self.aggregate_id = str(aggregate_id)
        self.field = field_name


class PreconditionFailed(Exception):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"If-Match names version {expected}, but the current version is {actual}")
        self.expected = expected
        self.actual = actual


class TooMuchContention(Exception):
    """A command kept losing races for the same aggregates; the client may retry."""


class LiudongRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, with two changes: the insert function locks the
    events table, so notification ids are committed in the order they are issued
    (followers never skip an id that commits late); and an idempotency record, when
    given, is written in the same transaction as the events."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION "
            "{schema}.{insert_events}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint "
            "LANGUAGE plpgsql "
            "AS "
            "$BODY$"
            "BEGIN"
            "    SET LOCAL lock_timeout = '{lock_timeout}s';"
            "    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
            "    NOTIFY {channel};"
            "    RETURN QUERY"
            "    INSERT INTO {schema}.{table} AS t ("
            "    originator_id, originator_version, topic, state)"
            "    SELECT originator_id, originator_version, topic, state"
            "    FROM unnest(events)"
            "    RETURNING notification_id;"
            "END;"
            "$BODY$"
        ).format(
            insert_events=Identifier(self.pg_function_name_insert_events),
            lock_timeout=self.datastore.lock_timeout,
            channel=Identifier(self.channel_name),
            event=Identifier(self.stored_event_type_name),
            schema=schema,
            table=Identifier(self.events_table_name),
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
                " actor_id text NOT NULL,"
                " key text NOT NULL,"
                " fingerprint text NOT NULL,"
                " status integer NOT NULL,"
                " body jsonb NOT NULL,"
                " location text,"
                " created_at timestamptz NOT NULL DEFAULT now(),"
                " CONSTRAINT liudong_idempotency_pkey PRIMARY KEY (actor_id, key))"
            ).format(schema=schema, table=Identifier(IDEMPOTENCY_TABLE))
        )
        self._insert_claim = SQL(
            "INSERT INTO {schema}.{table} (actor_id, key, fingerprint, status, body, location) "
            "VALUES (%s, %s, %s, %s, %s, %s)"
        ).format(schema=schema, table=Identifier(IDEMPOTENCY_TABLE))

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        claim: IdempotencyClaim | None = kwargs.get("idempotency")
        if claim is None:
            return list(super().insert_events(stored_events) or [])
        rows = [
            self.construct_pg_stored_event(
                originator_id=e.originator_id,
                originator_version=e.originator_version,
                topic=e.topic,
                state=e.state,
            )
            for e in stored_events
        ]
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute(self.sql_invoke_pg_function_insert_events, (rows,), prepare=True)
            ids = [r[self.pg_function_name_insert_events] for r in curs.fetchall()]
            assert claim.target is not None
            result = CommandResult(id=claim.target[0], version=claim.target[1], position=max(ids))
            status, body, location = claim.render(result)
            curs.execute(
                self._insert_claim,
                (claim.actor_id, claim.key, claim.fingerprint, status, json.dumps(body), location),
            )
        return ids


A = TypeVar("A", bound=Aggregate)


class Liudong(Application[UUID]):
    """The office's use cases. Every command takes a ``Stamp`` (who, and the
    caller's clock) and returns a ``CommandResult``."""

    name = "Liudong"
    command_retries = 30

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- plumbing -----------------------------------------------------------
    def load(self, kind: type[A], aggregate_id: UUID, field_name: str | None = None) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(_kind_name(kind), aggregate_id, field_name) from None
        if not isinstance(aggregate, kind):
            raise NotFound(_kind_name(kind), aggregate_id, field_name)
        return aggregate

    def load_current(self, kind: type[A], aggregate_id: UUID, expected_version: int | None) -> A:
        """Load the aggregate a command acts on; a stale If-Match version is refused
        before any rule is checked."""
        aggregate = self.load(kind, aggregate_id)
        if expected_version is not None and aggregate.version != expected_version:
            raise PreconditionFailed(expected_version, aggregate.version)
        return aggregate

    def _execute(
        self,
        decide: Callable[[], tuple[Aggregate, Sequence[Aggregate | None]]],
        *,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        """Run ``decide`` (load, check, act) and save what it changed atomically.
        A write that loses a race for an aggregate's next version is decided again
        on fresh state, so rules are always checked against what was committed."""
        for _ in range(self.command_retries):
            target, changed = decide()
            if idempotency is not None:
                idempotency.target = (target.id, target.version)
            try:
                recordings = self.save(*changed, idempotency=idempotency)
            except IntegrityError as error:
                if _violates(error, "liudong_idempotency_pkey"):
                    raise IdempotencyKeyTaken() from error
                continue
            except RecordConflictError:
                continue
            position = max(r.notification.id for r in recordings) if recordings else 0
            return CommandResult(id=target.id, version=target.version, position=position)
        raise TooMuchContention("too many concurrent changes to the same records; retry the request")

    # -- housing sites ------------------------------------------------------
    def register_site(
        self,
        *,
        name: str,
        area: str,
        address: str,
        operator_type: str,
        operator_name: str,
        capacity: int,
        facilities: list[str],
        stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            site = HousingSite.register(
                name=name,
                area=area,
                address=address,
                operator_type=operator_type,
                operator_name=operator_name,
                capacity=capacity,
                facilities=facilities,
                stamp=stamp,
            )
            return site, [site]

        return self._execute(decide, idempotency=idempotency)

    def _site_command(
        self,
        site_id: UUID,
        act: Callable[[HousingSite], None],
        expected_version: int | None,
        idempotency: IdempotencyClaim | None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            site = self.load_current(HousingSite, site_id, expected_version)
            act(site)
            return site, [site]

        return self._execute(decide, idempotency=idempotency)

    def change_site_capacity(
        self, site_id: UUID, capacity: int, stamp: Stamp, *, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(site_id, lambda s: s.change_capacity(capacity, stamp), expected_version, idempotency)

    def change_site_facilities(
        self, site_id: UUID, facilities: list[str], stamp: Stamp, *, expected_version: int | None = None,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(
            site_id, lambda s: s.change_facilities(facilities, stamp), expected_version, idempotency
        )

    def establish_community_committee(
        self, site_id: UUID, established_on: date, members: list[dict[str, Any]], stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(
            site_id,
            lambda s: s.establish_community_committee(established_on=established_on, members=members, stamp=stamp),
            expected_version,
            idempotency,
        )

    def close_site(
        self, site_id: UUID, closed_on: date, reason: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._site_command(
            site_id, lambda s: s.close(closed_on=closed_on, reason=reason, stamp=stamp), expected_version, idempotency
        )

    # -- residents ----------------------------------------------------------
    def register_resident(
        self,
        *,
        id_number: IdentityNumber,
        name: str,
        phone: str,
        hometown: str,
        employer: str | None,
        area: str,
        registered_on: date,
        stamp: Stamp,
        idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        attempts = 0

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # The first attempt relies on the claim's unique key; a conflict
                # brings us here to name the resident who holds the number.
                self._check_identity_number_free(id_number)
            resident = Resident.register(
                id_number=id_number,
                name=name,
                phone=phone,
                hometown=hometown,
                employer=employer,
                area=area,
                registered_on=registered_on,
                stamp=stamp,
            )
            claim = IdentityNumberClaim(
                id_number=id_number.value, resident_id=resident.id, recorded_at=stamp.recorded_at
            )
            return resident, [resident, claim]

        return self._execute(decide, idempotency=idempotency)

    def _check_identity_number_free(self, id_number: IdentityNumber) -> None:
        try:
            claim: Aggregate = self.repository.get(claim_id(id_number.value))
        except AggregateNotFoundError:
            return
        assert isinstance(claim, IdentityNumberClaim)
        raise duplicate_identity_number(claim.resident_id)

    def _current_site(self, resident: Resident) -> HousingSite | None:
        if resident.site_id is None:
            return None
        return self.load(HousingSite, resident.site_id)

    def move_resident_into_site(
        self, resident_id: UUID, site_id: UUID, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate | None]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            site = self.load(HousingSite, site_id, field_name="site_id")
            previous = self._current_site(resident)
            resident.move_into_site(site, effective_date, stamp, previous_site=previous)
            return resident, [resident, site, previous]

        return self._execute(decide, idempotency=idempotency)

    def move_resident_to_private_housing(
        self, resident_id: UUID, area: str, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate | None]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            previous = self._current_site(resident)
            resident.move_to_private_housing(
                area=area, effective_date=effective_date, stamp=stamp, previous_site=previous
            )
            return resident, [resident, previous]

        return self._execute(decide, idempotency=idempotency)

    def record_departure(
        self, resident_id: UUID, effective_date: date, reason: str, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate | None]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            previous = self._current_site(resident)
            resident.depart(effective_date=effective_date, reason=reason, stamp=stamp, previous_site=previous)
            return resident, [resident, previous]

        return self._execute(decide, idempotency=idempotency)

    def record_return(
        self, resident_id: UUID, area: str, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            resident.return_to_district(area=area, effective_date=effective_date, stamp=stamp)
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency)

    def change_employer(
        self, resident_id: UUID, employer: str | None, effective_date: date, stamp: Stamp, *,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            resident.change_employer(employer=employer, effective_date=effective_date, stamp=stamp)
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency)


def _kind_name(kind: type[Aggregate]) -> str:
    return {"HousingSite": "housing site", "Resident": "resident"}.get(kind.__name__, kind.__name__)


def _violates(error: BaseException, constraint: str) -> bool:
    cause = error.__cause__
    return isinstance(cause, psycopg.errors.UniqueViolation) and cause.diag.constraint_name == constraint
