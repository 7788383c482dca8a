"""Who may use the API: keys issued to a user with a role, the areas they act in and their
scopes, and revoked when they leave or a key leaks. Only a hash of the key is recorded."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.common import InvalidValue, Role, RuleViolated, Stamp

# Who the office's own processes act as: no key may put its actions under that name.
RESERVED_USER_IDS = frozenset({"system"})


class Scope(StrEnum):
    PII = "pii"  # an api_consumer key with it sees personal fields unmasked


class ApiKey(Aggregate):
    @classmethod
    def issue(cls, *, user_id: str, role: str, areas: list[str], scopes: list[str], key_hash: str,
              rotated_from: UUID | None = None, stamp: Stamp) -> ApiKey:
        if not user_id.strip() or len(user_id) > 100 or any(unicodedata.category(c) in ("Cc", "Cf") for c in user_id):
            raise InvalidValue("user_id", "a user id is 1 to 100 characters, none of them invisible", rule="user_id")
        if user_id.strip().casefold() in RESERVED_USER_IDS:
            raise InvalidValue("user_id", f"{user_id.strip()!r} is the office's own actor (its sweeps and imports): "
                               "no key acts under it", rule="user_id_reserved")
        try:
            parsed = Role(role)
        except ValueError:
            parsed = Role.SYSTEM
        if parsed is Role.SYSTEM:
            raise InvalidValue("role", f"unknown role {role!r}", rule="role_unknown")
        for scope in scopes:
            if scope not in {s.value for s in Scope}:
                raise InvalidValue("scope", f"unknown scope {scope!r}", rule="scope_unknown")
        key: ApiKey = cls(user_id=user_id.strip(), role=parsed.value, areas=sorted(set(areas)),
                          scopes=sorted(set(scopes)), key_hash=key_hash, rotated_from=rotated_from,
                          **stamp.event_fields())
        return key

    @event("Issued")
    def __init__(self, *, user_id: str, role: str, areas: list[str], scopes: list[str], key_hash: str,
                 rotated_from: UUID | None, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """An API key was issued to a user with a role, areas and scopes; only its hash is recorded."""
        self.user_id = user_id
        self.role = role
        self.areas = list(areas)
        self.scopes = list(scopes)
        self.key_hash = key_hash
        self.rotated_from = rotated_from
        self.revoked = False

    def revoke(self, *, reason: str, stamp: Stamp) -> None:
        if self.revoked:
            raise RuleViolated(f"key {self.id} is already revoked", rule="key_revoked")
        self._revoked(reason=reason, **stamp.event_fields())

    @event("Revoked")
    def _revoked(self, *, reason: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The API key was revoked: it is refused from then on."""
        self.revoked = True
