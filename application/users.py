"""Staff accounts for the web application: a name, a role and areas (the same user ids,
roles and areas as API keys), a password hashed with argon2, and browser sessions.

Five wrong passwords in a row lock an account for fifteen minutes. A session is a random
token in an HttpOnly cookie; only its SHA-256 is stored, with the CSRF token every form of
the session carries. Accounts and sessions are operational records, not events: what a
signed-in user does goes through the same use cases as the API and is stored as events
with that user as the actor."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from psycopg_pool import ConnectionPool

from domain.access import RESERVED_USER_IDS
from domain.common import InvalidValue, Role, RuleViolated

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS staff_users ("
    " user_id text PRIMARY KEY,"
    " role text NOT NULL,"
    " areas text[] NOT NULL DEFAULT '{}',"
    " password_hash text NOT NULL,"
    " failed_attempts integer NOT NULL DEFAULT 0,"
    " locked_until timestamptz,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " created_by text NOT NULL,"
    " disabled_at timestamptz)",
    "CREATE TABLE IF NOT EXISTS web_sessions ("
    " token_hash text PRIMARY KEY,"
    " user_id text NOT NULL REFERENCES staff_users (user_id),"
    " csrf text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " expires_at timestamptz NOT NULL)",
    "CREATE INDEX IF NOT EXISTS web_sessions_user_idx ON web_sessions (user_id)",
    # Wrong passwords for names that are no account, counted and locked alike: the answer to
    # a sixth try must not tell whether the account exists.
    "CREATE TABLE IF NOT EXISTS sign_in_unknown ("
    " user_id text PRIMARY KEY, failed_attempts integer NOT NULL, locked_until timestamptz,"
    " last_at timestamptz NOT NULL)",
]

MAX_FAILURES = 5
LOCK_MINUTES = 15
SESSION_HOURS = 12
USERNAME = re.compile(r"^[A-Za-z0-9._@-]{2,64}$")
WEB_ROLES = [r for r in Role if r not in (Role.SYSTEM, Role.API_CONSUMER)]
_hasher = PasswordHasher()


@dataclass(frozen=True)
class StaffUser:
    user_id: str
    role: Role
    areas: tuple[str, ...]


@dataclass(frozen=True)
class Session:
    user: StaffUser
    csrf: str


class SignInRefused(Exception):
    """A sign-in that did not succeed: ``reason`` is ``invalid`` or ``locked``."""

    def __init__(self, reason: str, locked_until: datetime | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.locked_until = locked_until


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_password(password: str) -> None:
    if len(password) < 10:
        raise InvalidValue("password", "a password has at least 10 characters", rule="password_too_short")
    if len(password) > 200:
        raise InvalidValue("password", "a password has at most 200 characters", rule="password_too_long")


def _verified(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class UserStore:
    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self.pool = pool

    def create(self, *, user_id: str, role: str, areas: list[str], password: str, created_by: str) -> StaffUser:
        if not USERNAME.match(user_id):
            raise InvalidValue("username", "a user name is 2 to 64 letters, digits or . _ @ -", rule="username")
        if user_id.casefold() in RESERVED_USER_IDS:
            raise InvalidValue("username", f"{user_id!r} is the office's own actor (its sweeps and imports): "
                               "nobody signs in as it", rule="user_id_reserved")
        try:
            staff_role = Role(role)
        except ValueError:
            raise InvalidValue("role", f"unknown role {role!r}", rule="role_unknown") from None
        if staff_role not in WEB_ROLES:
            raise InvalidValue("role", f"role {role} does not sign in to the web application (it uses API keys)",
                               rule="role_not_for_web")
        check_password(password)
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO staff_users (user_id, role, areas, password_hash, created_by) VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
                (user_id, staff_role.value, list(areas), _hasher.hash(password), created_by),
            ).fetchone()
        if row is None:
            raise RuleViolated(f"a user named {user_id} exists already", rule="user_exists")
        return StaffUser(user_id, staff_role, tuple(areas))

    def set_password(self, user_id: str, password: str) -> None:
        """A new password (the lockout cleared and every session ended)."""
        check_password(password)
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute("UPDATE staff_users SET password_hash = %s, failed_attempts = 0, locked_until = NULL"
                               " WHERE user_id = %s RETURNING user_id", (_hasher.hash(password), user_id)).fetchone()
            conn.execute("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))
        if row is None:
            raise InvalidValue("username", f"no account named {user_id}", rule="user_unknown")

    def disable(self, user_id: str) -> bool:
        """The account signs in no more and its sessions end now (found by a review: a leaver kept
        their account for good and a live session for hours). Returns False if it was disabled."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute("SELECT disabled_at FROM staff_users WHERE user_id = %s FOR UPDATE",
                               (user_id,)).fetchone()
            if row is None:
                raise InvalidValue("username", f"no account named {user_id}", rule="user_unknown")
            conn.execute("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))
            if row["disabled_at"] is not None:
                return False
            conn.execute("UPDATE staff_users SET disabled_at = now() WHERE user_id = %s", (user_id,))
        return True

    def enable(self, user_id: str) -> bool:
        """A disabled account signs in again (with its password). Returns False if it was enabled."""
        with self.pool.connection() as conn:
            row = conn.execute("UPDATE staff_users SET disabled_at = NULL, failed_attempts = 0, locked_until = NULL"
                               " WHERE user_id = %s RETURNING (SELECT disabled_at FROM staff_users"
                               " WHERE user_id = %s) AS was", (user_id, user_id)).fetchone()
        if row is None:
            raise InvalidValue("username", f"no account named {user_id}", rule="user_unknown")
        return row["was"] is not None

    def unlock(self, user_id: str, now: datetime) -> bool:
        """A locked account (five wrong passwords) signs in again at once, its wrong passwords
        forgotten (found by a review: an admin could only wait out the fifteen minutes). Returns
        False if it was not locked at ``now``."""
        with self.pool.connection() as conn:
            row = conn.execute("UPDATE staff_users SET failed_attempts = 0, locked_until = NULL WHERE user_id = %s"
                               " RETURNING (SELECT locked_until FROM staff_users WHERE user_id = %s) AS was",
                               (user_id, user_id)).fetchone()
        if row is None:
            raise InvalidValue("username", f"no account named {user_id}", rule="user_unknown")
        return row["was"] is not None and row["was"] > now

    def list(self) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT user_id, role, areas, locked_until, created_at, created_by, disabled_at FROM staff_users"
                " ORDER BY user_id").fetchall()
        return [dict(r) for r in rows]

    def sign_in(self, user_id: str, password: str, now: datetime) -> tuple[str, Session]:
        """A new session for the right password; five wrong ones in a row lock the account
        for fifteen minutes (a right one while locked is refused too)."""
        refusal: SignInRefused | None = None
        with self.pool.connection() as conn, conn.transaction():  # a refusal is raised after the commit
            row = conn.execute(
                "SELECT user_id, role, areas, password_hash, failed_attempts, locked_until, disabled_at"
                " FROM staff_users WHERE user_id = %s FOR UPDATE", (user_id,)).fetchone()
            if row is None or row["disabled_at"] is not None:
                _hasher.hash(password)  # the same work for an unknown name: no timing difference
                refusal = self._unknown(conn, user_id, now)
            elif row["locked_until"] is not None and row["locked_until"] > now:
                refusal = SignInRefused("locked", row["locked_until"])
            elif not _verified(row["password_hash"], password):
                failures = int(row["failed_attempts"]) + 1
                locked = now + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
                conn.execute("UPDATE staff_users SET failed_attempts = %s, locked_until = %s WHERE user_id = %s",
                             (0 if locked else failures, locked, user_id))
                refusal = SignInRefused("locked", locked) if locked is not None else SignInRefused("invalid")
            else:
                conn.execute("UPDATE staff_users SET failed_attempts = 0, locked_until = NULL WHERE user_id = %s",
                             (user_id,))
                token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
                conn.execute("INSERT INTO web_sessions (token_hash, user_id, csrf, expires_at) VALUES (%s, %s, %s, %s)",
                             (_digest(token), user_id, csrf, now + timedelta(hours=SESSION_HOURS)))
                user = StaffUser(row["user_id"], Role(row["role"]), tuple(row["areas"]))
        if refusal is not None:
            raise refusal
        return token, Session(user, csrf)

    @staticmethod
    def _unknown(conn: Any, user_id: str, now: datetime) -> SignInRefused:
        """A wrong try for a name that is no (enabled) account, answered as an account's
        would be: five in a row lock the name for fifteen minutes. Names no account could
        have are not kept; rows older than a day are dropped as new ones come."""
        if not USERNAME.match(user_id):
            return SignInRefused("invalid")
        conn.execute("DELETE FROM sign_in_unknown WHERE last_at < %s", (now - timedelta(days=1),))
        row = conn.execute("SELECT failed_attempts, locked_until FROM sign_in_unknown WHERE user_id = %s FOR UPDATE",
                           (user_id,)).fetchone()
        if row is not None and row["locked_until"] is not None and row["locked_until"] > now:
            return SignInRefused("locked", row["locked_until"])
        failures = (int(row["failed_attempts"]) if row is not None and row["locked_until"] is None else 0) + 1
        locked = now + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
        conn.execute("INSERT INTO sign_in_unknown (user_id, failed_attempts, locked_until, last_at)"
                     " VALUES (%s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET failed_attempts ="
                     " excluded.failed_attempts, locked_until = excluded.locked_until, last_at = excluded.last_at",
                     (user_id, 0 if locked else failures, locked, now))
        return SignInRefused("locked", locked) if locked is not None else SignInRefused("invalid")

    def session(self, token: str, now: datetime) -> Session | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT s.csrf, u.user_id, u.role, u.areas FROM web_sessions s JOIN staff_users u USING (user_id)"
                " WHERE s.token_hash = %s AND s.expires_at > %s AND u.disabled_at IS NULL",
                (_digest(token), now)).fetchone()
        if row is None:
            return None
        return Session(StaffUser(row["user_id"], Role(row["role"]), tuple(row["areas"])), row["csrf"])

    def sign_out(self, token: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM web_sessions WHERE token_hash = %s", (_digest(token),))
