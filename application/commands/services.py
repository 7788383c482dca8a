"""Use cases: services to residents (服务为先): dependants, school places, services delivered.
Each is recorded on the resident."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.common import Stamp
from domain.residents import Resident


class ServiceCommands(OfficeApplication):
    def _service_command(
        self, resident_id: UUID, act: Callable[[Resident], None], expected_version: int | None,
        idempotency: IdempotencyClaim | None, details: Callable[[], dict[str, Any]] | None = None,
    ) -> CommandResult:
        def decide() -> tuple[Aggregate, list[Aggregate]]:
            resident = self.load_current(Resident, resident_id, expected_version)
            act(resident)
            return resident, [resident]

        return self._execute(decide, idempotency=idempotency, details=details)

    def record_dependant(
        self, resident_id: UUID, *, name: str, birth_year: int, relation: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        recorded: dict[str, Any] = {}

        def act(resident: Resident) -> None:
            recorded["dependant_id"] = resident.record_dependant(name=name, birth_year=birth_year, relation=relation,
                                                                 stamp=stamp)

        return self._service_command(resident_id, act, expected_version, idempotency, details=lambda: recorded)

    def request_school_place(
        self, resident_id: UUID, *, dependant_id: str, school: str, requested_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._service_command(resident_id, lambda r: r.request_school_place(
            dependant_id=dependant_id, school=school, requested_on=requested_on, stamp=stamp),
            expected_version, idempotency)

    def place_at_school(
        self, resident_id: UUID, *, dependant_id: str, school: str, placed_on: date, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._service_command(resident_id, lambda r: r.place_at_school(
            dependant_id=dependant_id, school=school, placed_on=placed_on, stamp=stamp), expected_version, idempotency)

    def refuse_school_place(
        self, resident_id: UUID, *, dependant_id: str, school: str, refused_on: date, reason: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._service_command(resident_id, lambda r: r.refuse_school_place(
            dependant_id=dependant_id, school=school, refused_on=refused_on, reason=reason, stamp=stamp),
            expected_version, idempotency)

    def deliver_service(
        self, resident_id: UUID, *, kind: str, delivered_on: date, provider: str, stamp: Stamp,
        expected_version: int | None = None, idempotency: IdempotencyClaim | None = None,
    ) -> CommandResult:
        return self._service_command(resident_id, lambda r: r.deliver_service(
            kind=kind, delivered_on=delivered_on, provider=provider, stamp=stamp), expected_version, idempotency)
