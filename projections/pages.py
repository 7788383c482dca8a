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
