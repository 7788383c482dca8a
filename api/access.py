"""Who may call which route, and how areas limit it: one rule per route, declared beside
the route with ``@access``. The role check itself is the route's dependency; the area
check is the application's (``application.access``). The table-driven test walks the
app's routes and fails for any route without a rule, then checks each rule holds for
every role, for a key of the record's area, of another area, and district-wide."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from domain.common import Role


class AreaRule(StrEnum):
    OBJECT = "object"  # one record named in the path: outside the caller's areas it is not found (404)
    LIST = "list"  # a list: filtered to the caller's areas
    CREATE = "create"  # a new record whose area comes from the body: outside the caller's areas, 403
    REFERENCE = "reference"  # a new record for another one the body names (a site): outside, an unknown one (422)
    DISTRICT = "district"  # district-wide records: area-bound keys may read, not write (403)
    NONE = "none"  # no area (health, reference data, keys)


STAFF = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN})
SUPERVISORS = frozenset({Role.SUPERVISOR, Role.ADMIN})
VERIFIERS = frozenset({Role.SUPERVISOR})  # a reward's outcome: a supervisor, not an admin
FINANCE = frozenset({Role.FINANCE})
ADMINS = frozenset({Role.ADMIN})
READERS = frozenset(r for r in Role if r is not Role.SYSTEM)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    area: AreaRule
    public: bool = False  # no key needed at all

    @property
    def writes(self) -> bool:
        return not self.roles >= READERS


F = TypeVar("F", bound=Callable[..., Any])


def access(roles: frozenset[Role], area: AreaRule, *, public: bool = False) -> Callable[[F], F]:
    def mark(endpoint: F) -> F:
        endpoint.__access__ = Rule(roles, area, public)  # type: ignore[attr-defined]
        return endpoint

    return mark


def rule_of(endpoint: Any) -> Rule | None:
    rule = getattr(endpoint, "__access__", None)
    return rule if isinstance(rule, Rule) else None
