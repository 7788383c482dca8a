"""API keys: random tokens, stored only as SHA-256 hashes; each names a user and a role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from domain.common import Actor, Role

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " key_hash text PRIMARY KEY,"
    " user_id text NOT NULL,"
    " role text NOT NULL,"
    " areas text[] NOT NULL DEFAULT '{}',"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " revoked_at timestamptz)",
    "CREATE INDEX IF NOT EXISTS api_keys_user_idx ON api_keys (user_id)",
]

HUMAN_ROLES = [r for r in Role if r is not Role.SYSTEM]


@dataclass(frozen=True)
class Principal:
    actor: Actor
    areas: tuple[str, ...]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(pool: ConnectionPool[Any], *, user_id: str, role: Role, areas: list[str]) -> str:
    """Store a new key and return it; only its hash is kept, so it is shown once."""
    if role is Role.SYSTEM:
        raise ValueError("the system role is not given to keys")
    key = "ld_" + secrets.token_urlsafe(32)
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO api_keys (key_hash, user_id, role, areas) VALUES (%s, %s, %s, %s)",
            (hash_key(key), user_id, role.value, areas),
        )
    return key


def revoke_user_keys(pool: ConnectionPool[Any], user_id: str) -> int:
    with pool.connection() as conn:
        cur = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
        )
        return int(cur.rowcount)


def authenticate(pool: ConnectionPool[Any], key: str) -> Principal | None:
    with pool.connection() as conn:
        row: DictRow | None = conn.execute(
            "SELECT user_id, role, areas FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (hash_key(key),),
        ).fetchone()
    if row is None:
        return None
    return Principal(actor=Actor(user_id=row["user_id"], role=Role(row["role"])), areas=tuple(row["areas"]))


def user_roles(pool: ConnectionPool[Any], user_id: str) -> set[Role]:
    """The roles of a user's active keys (empty for an unknown user)."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT DISTINCT role FROM api_keys WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
        ).fetchall()
    return {Role(row["role"]) for row in rows}
