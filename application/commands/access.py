"""Use cases: API keys (admins issue, rotate and revoke them; so does the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.access import current_scope
from application.keys import new_key, register_rows
from application.store import (
    AreaNotAllowed,
    CommandResult,
    IdempotencyClaim,
    NotFound,
    OfficeApplication,
    PreconditionFailed,
)
from domain.access import ApiKey
from domain.common import Role, Stamp


def require_role_in_scope(role: str) -> None:
    """An auditor reads every area: only a district-wide admin makes one."""
    if role == Role.AUDITOR.value and current_scope() is not None:
        raise AreaNotAllowed("role", "district")


class KeyCommands(OfficeApplication):
    def issue_key(self, *, user_id: str, role: str, areas: list[str], scopes: list[str], stamp: Stamp,
                  idempotency: IdempotencyClaim | None = None) -> tuple[CommandResult, str]:
        """Issue a key; the key itself is returned once and never stored."""
        codes = [self.areas.resolve(a, "areas") for a in areas]
        self.require_areas(codes, "areas")  # an area-bound admin issues keys for its own areas only
        require_role_in_scope(role)
        self.require_name_in_scope(user_id.strip())
        key, digest = new_key()
        issued: list[ApiKey] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            record = ApiKey.issue(user_id=user_id, role=role, areas=codes, scopes=scopes, key_hash=digest,
                                  stamp=stamp)
            issued[:] = [record]
            return record, [record]

        # The key is never part of a stored answer (an Idempotency-Key replay omits it).
        result = self._execute(decide, idempotency=idempotency, side_effects=lambda: register_rows(issued[0]))
        return result, key

    def require_name_in_scope(self, user_id: str) -> None:
        """An area-bound admin may not issue a key under the name of someone who acts beyond
        its areas (a district-wide supervisor, another area's caseworker): the audit trail
        would show that person's name on what the key does."""
        if current_scope() is None:
            return
        with self.connection() as conn:  # names told apart by case only are one person's here
            rows = conn.execute("SELECT areas FROM api_keys WHERE lower(user_id) = lower(%s) UNION ALL"
                                " SELECT areas FROM staff_users WHERE lower(user_id) = lower(%s)",
                                (user_id, user_id)).fetchall()
        for row in rows:
            self.require_areas(list(row["areas"]), "user_id")

    def _key_in_scope(self, key_id: UUID) -> ApiKey:
        """A key an area-bound admin may manage: one bound to areas all within its own, and
        not an auditor's (others, district-wide keys included, are not found)."""
        record = self.load(ApiKey, key_id)
        try:
            self.require_areas(record.areas, "key_id")
            # An auditor's key reads every area whatever areas it names (found by a review: an
            # area-bound admin rotated one and held an all-area secret).
            require_role_in_scope(record.role)
        except AreaNotAllowed:
            raise NotFound("ApiKey", key_id) from None
        return record

    def revoke_key(self, key_id: UUID, *, reason: str, stamp: Stamp, expected_version: int | None = None,
                   idempotency: IdempotencyClaim | None = None) -> CommandResult:
        revoked: list[ApiKey] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            record = self._key_in_scope(key_id)
            if expected_version is not None and record.version != expected_version:
                raise PreconditionFailed(expected_version, record.version)
            record.revoke(reason=reason, stamp=stamp)
            revoked[:] = [record]
            return record, [record]

        return self._execute(decide, idempotency=idempotency, side_effects=lambda: register_rows(revoked[0]))

    def rotate_key(self, key_id: UUID, *, stamp: Stamp,
                   idempotency: IdempotencyClaim | None = None) -> tuple[CommandResult, str]:
        """A new key for the same user, role, areas and scopes; the old one is revoked in
        the same transaction."""
        key, digest = new_key()
        changed: list[ApiKey] = []

        def decide() -> tuple[Aggregate, Sequence[Aggregate]]:
            old = self._key_in_scope(key_id)
            self.require_name_in_scope(old.user_id)  # the new secret acts as that person: as for a new key
            old.revoke(reason="rotated", stamp=stamp)
            new = ApiKey.issue(user_id=old.user_id, role=old.role, areas=old.areas, scopes=old.scopes,
                               key_hash=digest, rotated_from=old.id, stamp=stamp)
            changed[:] = [new, old]
            return new, [new, old]

        result = self._execute(decide, idempotency=idempotency,
                               side_effects=lambda: [row for k in changed for row in register_rows(k)])
        return result, key
