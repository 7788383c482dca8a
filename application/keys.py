"""API keys and bearer tokens: who a request comes from.

Keys are random tokens, issued, rotated and revoked as events (``domain.access.ApiKey``);
the register table ``api_keys`` (only SHA-256 hashes) is written in the same transaction.
A process remembers a key for at most ``CACHE_SECONDS``, so a revoked key fails within
that time on every process. Offices with an identity provider send OAuth2 bearer tokens
(JWT, RS256 with keys from a JWKS file or HS256 with a shared secret), checked for
issuer, audience and expiry; their ``sub``, ``role``, ``areas`` and ``scope`` claims map to
a user, role, areas and scopes like a key's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from psycopg_pool import ConnectionPool

from application.access import Principal
from application.areas import AreaDirectory
from domain.access import RESERVED_USER_IDS, ApiKey, Scope
from domain.common import Actor, Role

log = logging.getLogger(__name__)

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS api_keys ("
    " key_hash text PRIMARY KEY,"
    " user_id text NOT NULL,"
    " role text NOT NULL,"
    " areas text[] NOT NULL DEFAULT '{}',"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " revoked_at timestamptz)",
    "CREATE INDEX IF NOT EXISTS api_keys_user_idx ON api_keys (user_id)",
    # Added when keys became events; rows made before keep working, without a key id.
    "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS key_id uuid",
    "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS scopes text[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rotated_from uuid",
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_key_id_idx ON api_keys (key_id)",
]
NOTIFY_CHANNEL = "liudong_keys"
CACHE_SECONDS = 0.5
HUMAN_ROLES = [r for r in Role if r is not Role.SYSTEM]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A new key and its hash; only the hash is ever stored."""
    key = "ld_" + secrets.token_urlsafe(32)
    return key, hash_key(key)


def register_rows(key: ApiKey) -> list[tuple[str, Sequence[Any]]]:
    """The register row of a key, as SQL to run in the transaction of its events."""
    return [(
        "INSERT INTO api_keys (key_hash, user_id, role, areas, key_id, scopes, rotated_from, revoked_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)"
        " ON CONFLICT (key_hash) DO UPDATE SET revoked_at = coalesce(api_keys.revoked_at, EXCLUDED.revoked_at)",
        (key.key_hash, key.user_id, key.role, key.areas, key.id, key.scopes, key.rotated_from, key.revoked),
    ), (f"NOTIFY {NOTIFY_CHANNEL}", ())]


def list_keys(pool: ConnectionPool[Any], user_id: str | None = None,
              within: list[str] | None = None) -> list[dict[str, Any]]:
    """Keys, never the keys themselves; ``within`` (an area-bound admin's areas) keeps
    only keys bound to those areas."""
    where: list[str] = []
    params: list[Any] = []
    if user_id:
        where.append("user_id = %s")
        params.append(user_id)
    if within is not None:  # an auditor's key reads every area, whatever areas it names
        where.append("cardinality(areas) > 0 AND areas <@ %s::text[] AND role <> 'auditor'")
        params.append(within)
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT key_id, user_id, role, areas, scopes, created_at, revoked_at, rotated_from FROM api_keys"
            + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created_at, key_id",
            params,
        ).fetchall()
    return [dict(r) for r in rows]


def user_roles(pool: ConnectionPool[Any], user_id: str) -> set[Role]:
    """The roles of a user's active keys (empty for an unknown user)."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT DISTINCT role FROM api_keys WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
        ).fetchall()
    return {Role(row["role"]) for row in rows}


def may_take_cases(pool: ConnectionPool[Any], user_id: str) -> bool:
    """Whether a case may be assigned to ``user_id``: a caseworker or supervisor by an active
    key or a web account, and not a disabled web account (a leaver takes no case whatever keys
    the name still has). The API and the pages ask the same (found by a review: the API took
    only key holders, the pages also web accounts, and each judged a leaver differently)."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT role, disabled_at IS NOT NULL AS disabled FROM staff_users WHERE user_id = %s"
            " UNION ALL SELECT role, false FROM api_keys WHERE user_id = %s AND revoked_at IS NULL",
            (user_id, user_id)).fetchall()
    if any(row["disabled"] for row in rows):
        return False
    return any(row["role"] in (Role.CASEWORKER.value, Role.SUPERVISOR.value) for row in rows)


class TokenRules:
    """How bearer tokens are checked (from settings): issuer, audience, and either a
    JWKS file of RS256 public keys or an HS256 secret."""

    def __init__(self, *, issuer: str | None, audience: str | None, jwks_file: Path | None,
                 hs256_secret: str | None, leeway: float = 30.0) -> None:
        self.issuer = issuer
        self.audience = audience
        self.hs256_secret = hs256_secret
        self.leeway = leeway
        self.jwks = jwt.PyJWKSet.from_json(jwks_file.read_text()) if jwks_file is not None else None

    @property
    def enabled(self) -> bool:
        return bool(self.issuer and self.audience and (self.jwks or self.hs256_secret))

    def claims(self, token: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") == "RS256" and self.jwks is not None:
                key: Any = next((k.key for k in self.jwks.keys if k.key_id == header.get("kid")), None)
                if key is None:
                    return None
            elif header.get("alg") == "HS256" and self.hs256_secret:
                key = self.hs256_secret
            else:
                return None
            return dict(jwt.decode(token, key, algorithms=[header["alg"]], audience=self.audience,
                                   issuer=self.issuer, leeway=self.leeway,
                                   options={"require": ["exp", "iss", "aud", "sub"]}))
        except (jwt.PyJWTError, ValueError, KeyError):
            return None


class Authenticator:
    """Turns a bearer credential into a principal, or None."""

    def __init__(self, pool: ConnectionPool[Any], areas: AreaDirectory, tokens: TokenRules,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.pool = pool
        self.areas = areas
        self.tokens = tokens
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()

    def cached(self, credential: str) -> tuple[bool, Principal | None]:
        """``(True, principal-or-None)`` when the answer for an API key is at hand without
        the database (a key seen within the cache time), else ``(False, None)``: for callers
        on an event loop, which then send ``authenticate`` to a thread."""
        if credential.count(".") == 2 and not credential.startswith("ld_"):
            return False, None
        with self._lock:
            cached = self._cache.get(hash_key(credential))
        if cached is not None and cached[1] > time.monotonic():
            return True, cached[0]
        return False, None

    def authenticate(self, credential: str) -> Principal | None:
        if credential.count(".") == 2 and not credential.startswith("ld_"):
            return self._token(credential)
        known, principal = self.cached(credential)
        if known:
            return principal
        digest = hash_key(credential)
        now = time.monotonic()
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT user_id, role, areas, scopes, key_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
                (digest,),
            ).fetchone()
        if row is not None:
            principal = self._principal(row["user_id"], row["role"], list(row["areas"]), list(row["scopes"] or []),
                                        str(row["key_id"]) if row["key_id"] else None)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, now + self.cache_seconds)
        return principal

    def _token(self, token: str) -> Principal | None:
        claims = self.tokens.claims(token)
        if claims is None:
            return None
        try:
            role = Role(str(claims.get("role", "")))
            areas = claims.get("areas") or []
            if role is Role.SYSTEM or not isinstance(areas, list) or not all(isinstance(a, str) for a in areas):
                return None
            if str(claims["sub"]).strip().casefold() in RESERVED_USER_IDS:  # the office's own actor
                return None
            codes = [self.areas.resolve(a) for a in areas]
        except (ValueError, LookupError):
            return None
        except Exception as error:  # an unknown area: the token names places this office does not have
            log.info("token refused: %s", type(error).__name__)
            return None
        scopes = [s for s in str(claims.get("scope", "")).split() if s in {x.value for x in Scope}]
        return self._principal(str(claims["sub"])[:100], role.value, codes, scopes, None)

    def _principal(self, user_id: str, role: str, areas: list[str], scopes: list[str],
                   key_id: str | None) -> Principal:
        # Auditors read every area (and change nothing); other keys see their areas and the
        # villages under them.
        visible = self.areas.within(areas) if areas and Role(role) is not Role.AUDITOR else None
        return Principal(actor=Actor(user_id, Role(role)), areas=tuple(areas), scopes=frozenset(scopes),
                         key_id=key_id, visible=visible)

    def principal_for(self, user_id: str, role: str, areas: list[str]) -> Principal:
        """The principal of a signed-in staff account (application.users): as a key with
        the same user id, role and areas."""
        return self._principal(user_id, role, areas, [], None)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()


def jwks_document(public_keys: dict[str, Any]) -> str:
    """A JWKS file for the given RS256 public keys (kid -> key); used by tests and docs."""
    from jwt.algorithms import RSAAlgorithm

    keys = []
    for kid, key in public_keys.items():
        jwk = json.loads(RSAAlgorithm.to_jwk(key))
        jwk.update(kid=kid, alg="RS256", use="sig")
        keys.append(jwk)
    return json.dumps({"keys": keys})
