"""The district's areas (街道 / 镇 / 乡 and the villages under them) as reference data: a
managed list every record's ``area`` must name, so statistics are never split by a typo."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.common import InvalidValue, RuleViolated, Stamp

CODE = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
_AREA_NAMESPACE = uuid5(NAMESPACE_URL, "urn:liudong:area")


class AreaLevel(StrEnum):
    STREET_OFFICE = "street_office"  # 街道
    TOWN = "town"  # 镇
    TOWNSHIP = "township"  # 乡
    VILLAGE = "village"  # 村, under one of the above


def area_id(code: str) -> UUID:
    """One aggregate per code: two admins defining the same code race for it."""
    return uuid5(_AREA_NAMESPACE, code)


def check_names(name_zh: str, name_en: str) -> None:
    for field_name, value in (("name_zh", name_zh), ("name_en", name_en)):
        if not value.strip() or len(value) > 100:
            raise InvalidValue(field_name, f"{field_name} must be 1 to 100 characters", rule="area_name")


class Area(Aggregate):
    """An administrative area of the district. Villages lie under a street office, town or
    township; the others lie directly under the district."""

    @staticmethod
    def create_id(code: str) -> UUID:
        return area_id(code)

    @classmethod
    def define(
        cls, *, code: str, name_zh: str, name_en: str, level: str, parent: Area | None, stamp: Stamp
    ) -> Area:
        if not CODE.match(code):
            raise InvalidValue("code", "an area code is 2 to 40 lower-case letters, digits or hyphens, "
                               "starting with a letter", rule="area_code")
        check_names(name_zh, name_en)
        try:
            parsed = AreaLevel(level)
        except ValueError:
            raise InvalidValue("level", f"unknown level {level!r}; one of: {', '.join(AreaLevel)}",
                               rule="area_level") from None
        if parsed is AreaLevel.VILLAGE:
            if parent is None:
                raise InvalidValue("parent", "a village lies under a street office, town or township",
                                   rule="village_without_parent")
            if parent.level == AreaLevel.VILLAGE:
                raise RuleViolated("a village cannot lie under another village", rule="village_under_village")
        elif parent is not None:
            raise InvalidValue("parent", "only villages lie under another area", rule="parent_not_allowed")
        area: Area = cls(code=code, name_zh=name_zh.strip(), name_en=name_en.strip(), level=parsed.value,
                         parent_code=parent.code if parent else None, **stamp.event_fields())
        return area

    @event("Defined")
    def __init__(self, *, code: str, name_zh: str, name_en: str, level: str, parent_code: str | None,
                 actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """An area was added to the register: its code, Chinese and English names, level and parent."""
        self.code = code
        self.name_zh = name_zh
        self.name_en = name_en
        self.level = level
        self.parent_code = parent_code

    def rename(self, *, name_zh: str, name_en: str, stamp: Stamp) -> None:
        check_names(name_zh, name_en)
        if (name_zh.strip(), name_en.strip()) == (self.name_zh, self.name_en):
            return
        self._renamed(name_zh=name_zh.strip(), name_en=name_en.strip(), **stamp.event_fields())

    @event("Renamed")
    def _renamed(self, *, name_zh: str, name_en: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """An area's Chinese and English names changed; its code stays."""
        self.name_zh = name_zh
        self.name_en = name_en
