"""The area register: every ``area`` a record names must be one of these. The register
table is written in the same transaction as the areas' events, so it is never behind."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domain.areas import Area
from domain.common import InvalidValue

SEED_FILE = Path(__file__).parent / "data" / "areas.toml"
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS areas ("
    " code text PRIMARY KEY, name_zh text NOT NULL, name_en text NOT NULL, level text NOT NULL,"
    " parent_code text, version integer NOT NULL)",
]
NOTIFY_CHANNEL = "liudong_areas"


@dataclass(frozen=True)
class AreaRecord:
    code: str
    name_zh: str
    name_en: str
    level: str
    parent_code: str | None
    version: int


def register_rows(area: Area) -> list[tuple[str, Sequence[Any]]]:
    """The register row of an area, as SQL to run in the transaction of its events."""
    return [(
        "INSERT INTO areas (code, name_zh, name_en, level, parent_code, version) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (code) DO UPDATE SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,"
        " level = EXCLUDED.level, parent_code = EXCLUDED.parent_code, version = EXCLUDED.version",
        (area.code, area.name_zh, area.name_en, area.level, area.parent_code, area.version),
    ), (f"NOTIFY {NOTIFY_CHANNEL}", ())]


def seed_areas() -> list[dict[str, Any]]:
    with SEED_FILE.open("rb") as f:
        return list(tomllib.load(f)["area"])


class AreaDirectory:
    """The register as this process sees it: cached for a few seconds, read again on a
    miss, so an area defined by another process is known at once."""

    def __init__(self, connect: Callable[[], AbstractContextManager[Any]], ttl: float = 5.0) -> None:
        self.connect = connect
        self.ttl = ttl
        self._areas: dict[str, AreaRecord] = {}
        self._loaded = float("-inf")  # never loaded (the monotonic clock may start near zero)
        self._lock = threading.Lock()

    def refresh(self) -> dict[str, AreaRecord]:
        with self.connect() as conn:
            rows = conn.execute("SELECT code, name_zh, name_en, level, parent_code, version FROM areas").fetchall()
        areas = {}
        for row in rows:
            values = list(row.values()) if isinstance(row, dict) else list(row)
            areas[values[0]] = AreaRecord(*values)
        with self._lock:
            self._areas, self._loaded = areas, time.monotonic()
        return areas

    def all(self) -> dict[str, AreaRecord]:
        with self._lock:
            fresh = time.monotonic() - self._loaded < self.ttl
            areas = self._areas
        return areas if fresh else self.refresh()

    def get(self, code: str) -> AreaRecord | None:
        area = self.all().get(code)
        return area if area is not None else self.refresh().get(code)

    def resolve(self, value: str, field_name: str = "area") -> str:
        """The code of the area a request names by its code, Chinese or English name."""
        wanted = value.strip()
        for attempt in range(2):
            areas = self.all() if attempt == 0 else self.refresh()
            if wanted in areas:
                return wanted
            folded = wanted.casefold()
            for area in areas.values():
                if wanted == area.name_zh or folded == area.name_en.casefold():
                    return area.code
        raise InvalidValue(field_name, f"unknown area {value!r}: name one from GET /areas (code, Chinese or "
                           "English name)", rule="unknown_area")

    def within(self, codes: Sequence[str]) -> frozenset[str]:
        """The areas and every area under them."""
        areas = self.all()
        result = set(codes)
        changed = True
        while changed:
            changed = False
            for area in areas.values():
                if area.parent_code in result and area.code not in result:
                    result.add(area.code)
                    changed = True
        return frozenset(result)
