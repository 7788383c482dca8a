"""Keyset pagination: ``next`` is an opaque cursor naming the last row returned."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    next_cursor: str | None
    total_estimated: bool = False  # total is the planner's estimate, not a count


EXACT_UP_TO = 1_000  # totals up to this are counted; above it, estimated


def count_rows(conn: Any, from_where: str, params: Any) -> tuple[int, bool]:
    """How many rows ``SELECT 1 FROM {from_where}`` gives: counted exactly up to
    ``EXACT_UP_TO`` (a bounded scan of an index), above that the planner's estimate, never
    below what was counted, so that no list pays for a full count of 260,000 rows per page."""
    row = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {from_where} LIMIT {EXACT_UP_TO + 1}) AS s",
                       params).fetchone()
    counted = int(first_value(row))
    if counted <= EXACT_UP_TO:
        return counted, False
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {from_where}", params).fetchone()
    estimate = int(first_value(plan)[0]["Plan"]["Plan Rows"])
    return max(estimate, counted), True


def first_value(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


class BadCursor(ValueError):
    pass


def encode_cursor(*values: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> list[str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise BadCursor("cursor is not one this service issued") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BadCursor("cursor is not one this service issued")
    return values


def decode_keyset(token: str, parse_key: Callable[[str], Any] = str) -> list[Any]:
    """The sort key and id of the last row a page showed, parsed for use as query parameters."""
    try:
        key, last_id = decode_cursor(token)
        return [parse_key(key), UUID(last_id)]
    except ValueError:
        raise BadCursor("cursor is not one this service issued") from None


def page_of(rows: list[dict[str, Any]], key: Callable[[dict[str, Any]], tuple[str, ...]], limit: int,
            cursor: str | None, newest_first: bool = False) -> Page:
    """A page of ``rows`` in ``key`` order (descending with ``newest_first``) for a list that is
    read whole (areas, keys, a district's statistics: tens to thousands of rows); ``next`` names
    the last row's key."""
    ordered = sorted(rows, key=key, reverse=newest_first)
    if cursor:
        after = tuple(decode_cursor(cursor))
        if ordered and len(after) != len(key(ordered[0])):
            raise BadCursor("cursor is not one this service issued")
        ordered = [r for r in ordered if (key(r) < after if newest_first else key(r) > after)]
    shown = ordered[:limit]
    next_cursor = encode_cursor(*key(shown[-1])) if len(ordered) > limit and shown else None
    return Page(items=shown, total=len(rows), next_cursor=next_cursor)


def place_clauses(site_id: Any, area: str | None, areas: list[str] | None, alias: str) -> tuple[list[str], list[Any]]:
    """Conditions on a view's ``site_id`` and ``area`` (``areas``: the caller's, None for all)."""
    clauses: list[str] = []
    params: list[Any] = []
    if site_id is not None:
        clauses.append(f"{alias}.site_id = %s")
        params.append(site_id)
    if area is not None:
        clauses.append(f"{alias}.area = %s")
        params.append(area)
    if areas is not None:
        clauses.append(f"{alias}.area = ANY(%s)")
        params.append(areas)
    return clauses, params
