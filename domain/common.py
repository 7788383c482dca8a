"""Vocabulary shared by every aggregate: who acted, when, and the errors rules raise."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

# The office keeps its calendar in China Standard Time: "today" for an effective
# date is the office's today, whatever the server's zone.
OFFICE_TZ = ZoneInfo("Asia/Shanghai")

# What a personal field reads once it is erased (its key destroyed); the API shows it as
# [已删除] or [erased] by the reader's language.
ERASED = "[erased]"


def folded(text: str) -> str:
    """Text compared for who it names: NFKC, case-folded, without whitespace (a name typed
    as "Li  Wei", "li wei" or in full-width letters is the same name)."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def needles(names: list[str]) -> list[str]:
    """``names`` as ``mentions`` looks for them: folded; those shorter than two characters,
    and erased ones, name nobody."""
    return [f for f in (folded(n) for n in names if n and n != ERASED) if len(f) >= 2]


def mentions(text: str | None, names: list[str]) -> bool:
    """Whether ``text`` spells out any of ``names``."""
    if not text:
        return False
    haystack = folded(text)
    return any(needle in haystack for needle in needles(names))


class Role(StrEnum):
    CASEWORKER = "caseworker"
    SUPERVISOR = "supervisor"
    FINANCE = "finance"
    AUDITOR = "auditor"
    API_CONSUMER = "api_consumer"
    ADMIN = "admin"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    """Who issued a command: the user id recorded on every event, and their role."""

    user_id: str
    role: Role


@dataclass(frozen=True)
class Stamp:
    """Who acted and when the office recorded it; passed into every command.

    ``recorded_at`` comes from the caller's clock, never from inside the domain,
    so tests control time.
    """

    actor: Actor
    recorded_at: datetime

    def __post_init__(self) -> None:
        if self.recorded_at.tzinfo is None:
            raise ValueError("recorded_at must be timezone-aware")

    @property
    def today(self) -> date:
        return self.recorded_at.astimezone(OFFICE_TZ).date()

    def event_fields(self) -> dict[str, Any]:
        return {
            "actor_id": self.actor.user_id,
            "actor_role": str(self.actor.role),
            "recorded_at": self.recorded_at,
        }


class DomainError(Exception):
    """A command was refused. ``rule`` is a stable machine-readable name."""

    rule: str = "domain_error"

    def __init__(self, message: str, *, rule: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if rule is not None:
            self.rule = rule
        self.details: dict[str, Any] = details


class InvalidValue(DomainError):
    """A value is malformed on its own (maps to 422). ``field`` names it."""

    rule = "invalid_value"

    def __init__(self, field_name: str, message: str, *, rule: str | None = None, **details: Any) -> None:
        super().__init__(message, rule=rule, field=field_name, **details)
        self.field = field_name


class UnknownPart(DomainError):
    """A part of an aggregate named in the request's path does not exist (maps to 404)."""

    rule = "not_found"


class RuleViolated(DomainError):
    """A valid command conflicts with the current state of the world (maps to 409)."""

    rule = "rule_violated"


def check_distinct_residents(entries: Iterable[Mapping[str, Any]], field_name: str, *, rule: str) -> None:
    """One resident named twice in a list of people (a committee's members, an election's
    candidates, a dispute's parties) would count twice: refused, naming the second entry."""
    seen: set[str] = set()
    for n, entry in enumerate(entries):
        resident = entry.get("resident_id")
        if resident is None:
            continue
        if str(resident) in seen:
            raise InvalidValue(f"{field_name}.{n}.resident_id", f"resident {resident} is named twice in {field_name}",
                               rule=rule, resident_id=str(resident))
        seen.add(str(resident))


# A day as the office writes it, and as the API, the pages and the imports take it: YYYY-MM-DD
# (Python 3.11's fromisoformat alone also reads 20260501 and 2026-W18-5).
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# The years a day may name: an office's records, a resident's birth, a permit's validity (found by
# a review: 0001-01-01 passed the format and failed the arithmetic, twelve months before or a time
# zone's offset, with a 500).
FIRST_YEAR, LAST_YEAR = 1900, 2999


def iso_day(text: str | None) -> date | None:
    """The day ``text`` writes as YYYY-MM-DD (from 1900 to 2999), or None when it writes none."""
    if not text or not ISO_DAY.fullmatch(text) or not FIRST_YEAR <= int(text[:4]) <= LAST_YEAR:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


# The office's records begin in the 1990s (temporary residence permits, 暂住证, from 1995): a day
# before this is a typing error, and a view counting every month since it would be useless.
EARLIEST_EFFECTIVE = date(1990, 1, 1)


def check_effective_date(
    effective_date: date,
    stamp: Stamp,
    *,
    earliest: date | None = None,
    earliest_rule: str = "effective_date_before_registration",
    field_name: str = "effective_date",
) -> None:
    """Effective dates may lie in the past (late reports are normal) but never in
    the future, nor before ``earliest`` (the resident's registration or last change)."""
    if effective_date > stamp.today:
        raise InvalidValue(
            field_name,
            f"{field_name} {effective_date.isoformat()} is after today "
            f"({stamp.today.isoformat()}); effective dates are never in the future",
            rule="effective_date_in_future",
        )
    if effective_date < EARLIEST_EFFECTIVE:  # found by a review: a dispute of 1800 and beds from year 202
        raise InvalidValue(
            field_name,
            f"{field_name} {effective_date.isoformat()} is before {EARLIEST_EFFECTIVE.isoformat()}, earlier than "
            "anything the office records",
            rule="effective_date_too_early",
            earliest=EARLIEST_EFFECTIVE.isoformat(),
        )
    if earliest is not None and effective_date < earliest:
        raise RuleViolated(
            f"{field_name} {effective_date.isoformat()} is before {earliest.isoformat()}",
            rule=earliest_rule,
            earliest=earliest.isoformat(),
            field=field_name,  # the date at fault, so a form ties the refusal to it
        )
