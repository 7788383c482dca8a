"""Use cases: the area register (admins define and rename areas)."""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from application.areas import register_rows
from application.store import CommandResult, IdempotencyClaim, OfficeApplication
from domain.areas import Area, area_id
from domain.common import RuleViolated, Stamp


class AreaCommands(OfficeApplication):
    def define_area(self, *, code: str, name_zh: str, name_en: str, level: str, parent: str | None,
                    stamp: Stamp, idempotency: IdempotencyClaim | None = None) -> CommandResult:
        self.require_district("code")  # the area register is the district's
        defined: list[Area] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            defined.clear()
            try:
                self.repository.get(area_id(code))
            except AggregateNotFoundError:
                pass
            else:
                raise RuleViolated(f"area {code} is already defined", rule="area_exists", code=code)
            parent_area = self.load(Area, area_id(parent), field_name="parent") if parent else None
            area = Area.define(code=code, name_zh=name_zh, name_en=name_en, level=level, parent=parent_area,
                               stamp=stamp)
            defined.append(area)
            return area, [area]

        return self._execute(decide, idempotency=idempotency, side_effects=lambda: register_rows(defined[0]))

    def rename_area(self, code: str, *, name_zh: str, name_en: str, stamp: Stamp,
                    expected_version: int | None = None, idempotency: IdempotencyClaim | None = None) -> CommandResult:
        self.require_district("code")
        renamed: list[Area] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            area = self.load_current(Area, area_id(code), expected_version)
            area.rename(name_zh=name_zh, name_en=name_en, stamp=stamp)
            renamed[:] = [area]
            return area, [area]

        return self._execute(decide, idempotency=idempotency, side_effects=lambda: register_rows(renamed[0]))
