"""Test data: valid identity numbers and request bodies."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

from domain.identity import check_character

_rng = random.Random()


def id_number(rng: random.Random | None = None, *, birth: date | None = None, male: bool | None = None) -> str:
    """A random identity number that passes GB 11643 validation."""
    rng = rng or _rng
    birth = birth or date(rng.randint(1960, 2005), rng.randint(1, 12), rng.randint(1, 28))
    seq = rng.randint(0, 999)
    if male is not None and (seq % 2 == 1) != male:
        seq = (seq + 1) % 1000
    first17 = f"{rng.randint(110000, 659999)}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Set by the session's services fixture: defines a new area in the register.
AREA_MAKER: Callable[[str], str] | None = None


def unique_area(prefix: str = "Area") -> str:
    """The code of a new area of the register, so a test's records are its own."""
    assert AREA_MAKER is not None, "needs the services fixture"
    return AREA_MAKER(prefix)


def site_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": unique("Ginkgo"),
        "area": "xinqi",
        "address": "1 Ginkgo Road",
        "operator": {"type": "village_cooperative", "name": "Ginkgo Village Cooperative"},
        "capacity": 10,
        "facilities": ["kindergarten", "school"],
    }
    body.update(overrides)
    return body


def resident_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id_number": id_number(),
        "name": unique("Li"),
        "phone": "13800138000",
        "hometown": "Anhui",
        "employer": "Hengli Textiles",
        "area": "xinqi",
        "registered_on": "2026-03-01",
    }
    body.update(overrides)
    return body


# Rows of a view that say nothing and that a rebuild does not write: a count that went back to
# zero (the live residents view keeps the row; a rebuild counts what is there).
SILENT_ROWS = {"residents_counts": "n <> 0"}


def view_rows_sql(table: str, schema: str | None = None) -> str:
    """``SELECT *`` of a view's table, as two copies of a view are compared."""
    name = f'"{schema}"."{table}"' if schema else table
    where = SILENT_ROWS.get(table)
    return f"SELECT * FROM {name}" + (f" WHERE {where}" if where else "")
