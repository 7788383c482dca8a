"""Who is acting and where: the principal behind a request (from an API key or a token)
and the areas they may see. A key bound to areas acts and reads only there (and in the
villages under them); a key without areas is district-wide."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from domain.access import Scope
from domain.active_members import ActiveMember
from domain.cobuilding import Pairing
from domain.committees import ManagementCommittee
from domain.common import Actor, Role
from domain.disputes import DisputeCase
from domain.operators import Operator
from domain.residents import Resident
from domain.sites import HousingSite
from domain.subsidies import SubsidyApplication


@dataclass(frozen=True)
class Principal:
    actor: Actor
    areas: tuple[str, ...] = ()  # as given to the key or token; empty: district-wide
    scopes: frozenset[str] = frozenset()
    key_id: str | None = None
    visible: frozenset[str] | None = field(default=None, compare=False)  # areas plus those under them

    @property
    def district_wide(self) -> bool:
        return not self.areas

    @property
    def sees_personal_data(self) -> bool:
        """Staff see personal fields; an api_consumer only with the pii scope."""
        return self.actor.role is not Role.API_CONSUMER or Scope.PII in self.scopes

    def area_filter(self) -> list[str] | None:
        """For list queries: the areas to keep, or None for all."""
        return None if self.visible is None else sorted(self.visible)


@dataclass(frozen=True)
class AreaScope:
    """The areas a request may touch; ``None`` (no scope set) means everywhere."""

    codes: frozenset[str]

    def allows(self, area: str | None) -> bool:
        return area is None or area in self.codes


_SCOPE: ContextVar[AreaScope | None] = ContextVar("liudong_area_scope", default=None)


def current_scope() -> AreaScope | None:
    return _SCOPE.get()


@contextmanager
def acting_in(visible: frozenset[str] | None) -> Iterator[None]:
    """Run use cases limited to these areas (None: the whole district)."""
    token = _SCOPE.set(AreaScope(visible) if visible is not None else None)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def area_of(aggregate: Any) -> str | None:
    """The area an aggregate belongs to for access control (None: district-wide)."""
    if isinstance(aggregate, ActiveMember):
        return str(aggregate.area)
    if isinstance(aggregate, Resident | HousingSite | DisputeCase | ManagementCommittee | Operator):
        return str(aggregate.area)
    if isinstance(aggregate, SubsidyApplication | Pairing):
        return str(aggregate.site_area)
    return None
