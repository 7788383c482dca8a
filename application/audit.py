"""What auditors rely on besides the events: the chain over them, and who read whose
personal data."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from application.access import Principal
from domain.active_members import ActiveMember
from domain.disputes import DisputeCase
from domain.residents import Resident
from projections.pages import count_rows

CHAIN_TABLE = "liudong_event_chain"
CHECKPOINTS_TABLE = "audit_checkpoints"

SCHEMA = [
    # application.chain: each stored event's digest and link, and the chain's recorded heads.
    f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
    " position bigint PRIMARY KEY, digest bytea NOT NULL, link bytea NOT NULL,"
    " chained_at timestamptz NOT NULL DEFAULT now())",
    # A checkpoint's id is its number, 1, 2, 3... without gaps (application.chain numbers them);
    # from version 2 each carries the hash of the one before it, under its signature.
    f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS_TABLE} ("
    " id bigserial PRIMARY KEY, position bigint NOT NULL, link bytea NOT NULL, events bigint NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now(), key_id text, signature bytea,"
    " version smallint NOT NULL DEFAULT 1, previous bytea)",
    f"ALTER TABLE {CHECKPOINTS_TABLE} ADD COLUMN IF NOT EXISTS version smallint NOT NULL DEFAULT 1",
    f"ALTER TABLE {CHECKPOINTS_TABLE} ADD COLUMN IF NOT EXISTS previous bytea",
    "CREATE TABLE IF NOT EXISTS access_log ("
    " id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), user_id text NOT NULL, role text NOT NULL,"
    " resident_id uuid, route text NOT NULL, detail text)",
    "CREATE INDEX IF NOT EXISTS access_log_resident_idx ON access_log (resident_id, at)",
    "CREATE INDEX IF NOT EXISTS access_log_user_idx ON access_log (user_id, at)",
]


def record_access(conn: Any, principal: Principal, resident_id: UUID | None, route: str,
                  detail: str | None = None) -> None:
    """Record a read of a resident's personal data (or of the access log itself)."""
    conn.execute("INSERT INTO access_log (user_id, role, resident_id, route, detail) VALUES (%s, %s, %s, %s, %s)",
                 (principal.actor.user_id, principal.actor.role.value, resident_id, route, detail))


def record_names_read(conn: Any, principal: Principal, resident_ids: Iterable[Any], route: str,
                      detail: str | None = None) -> None:
    """Record a read of a list that names residents in full (a committee's members, a site's
    residents): a row for each resident shown, once, under their id; nothing when the reader
    sees names only masked (no personal data was read). Found by a review: these reads left no row."""
    if not principal.sees_personal_data:
        return
    residents = sorted({str(r) for r in resident_ids if r})
    if not residents:
        return
    # A read does not wait for the log's write to reach the disk (a list read by sixteen readers
    # waited on a flush each: p50 ~95 ms against ~30 ms): committed, it is lost only if the server
    # itself fails within the fraction of a second before its WAL writer flushes (not if this
    # process dies). The reads of one record keep a synchronous commit.
    conn.execute("SET LOCAL synchronous_commit TO off")
    conn.execute(  # one statement for a site's thousand residents
        "INSERT INTO access_log (user_id, role, resident_id, route, detail)"
        " SELECT %s, %s, r, %s, %s FROM unnest(%s::uuid[]) AS r",
        (principal.actor.user_id, principal.actor.role.value, route, detail, [UUID(r) for r in residents]))


def search_detail(name: Any, id_number_suffix: Any) -> str | None:
    """What a search of residents asked for, without the words it searched (they are personal data)."""
    asked = [label for label, value in (("name", name), ("id_number_suffix", id_number_suffix)) if value]
    return "search: " + ", ".join(asked) if asked else None


def record_case_access(conn: Any, principal: Principal, parties: list[dict[str, Any]], case_id: UUID,
                       route: str) -> None:
    """Record a read of a dispute: a row for each resident who is a party (so a resident's
    reads include their cases'), or one row naming only the case when none is."""
    residents: list[UUID | None] = [UUID(r) for r in sorted({str(p["resident_id"]) for p in parties
                                                             if p.get("resident_id")})]
    for resident in residents or [None]:
        record_access(conn, principal, resident, route, detail=str(case_id))


def record_read(conn: Any, principal: Principal, record: Any, route: str) -> None:
    """Record a read of a record's history or page: a resident's under their id, a dispute's
    under each resident party, any other record by its id."""
    if isinstance(record, DisputeCase):
        record_case_access(conn, principal, record.parties, record.id, route)
    elif isinstance(record, Resident):
        record_access(conn, principal, record.id, route)
    elif isinstance(record, ActiveMember):  # a person's record: under them, as its page is
        record_access(conn, principal, record.resident_id, route, detail=str(record.id))
    else:
        record_access(conn, principal, None, route, detail=str(record.id))


def _access_filter(resident_id: UUID | None, user_id: str | None, since: datetime | None,
                   until: datetime | None, upto_id: int | None = None) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (("resident_id = %s", resident_id), ("user_id = %s", user_id), ("at >= %s", since),
                          ("at <= %s", until), ("id <= %s", upto_id)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return where, params


def access_log(conn: Any, *, resident_id: UUID | None, user_id: str | None, since: datetime | None,
               until: datetime | None, limit: int, after_id: int = 0, newest_first: bool = False,
               before_id: int | None = None, upto_id: int | None = None) -> list[dict[str, Any]]:
    """The entries that match, oldest first after ``after_id``; or ``newest_first`` (the web
    page's order: what was read lately), before ``before_id`` if given. ``upto_id``: none after
    it (a paging client reaches the end although each read of the log adds to it)."""
    where, params = _access_filter(resident_id, user_id, since, until, upto_id)
    if not newest_first:
        where.insert(0, "id > %s")
        params.insert(0, after_id)
    elif before_id is not None:
        where.insert(0, "id < %s")
        params.insert(0, before_id)
    rows = conn.execute(f"SELECT id, at, user_id, role, resident_id, route, detail FROM access_log"
                        f"{' WHERE ' + ' AND '.join(where) if where else ''}"
                        f" ORDER BY id{' DESC' if newest_first else ''} LIMIT %s", [*params, limit]).fetchall()
    return [dict(r) for r in rows]


def count_access_log(conn: Any, *, resident_id: UUID | None, user_id: str | None, since: datetime | None,
                     until: datetime | None, upto_id: int | None = None) -> tuple[int, bool]:
    """How many entries match (every page of them): exact up to 1,000, then estimated."""
    where, params = _access_filter(resident_id, user_id, since, until, upto_id)
    return count_rows(conn, "access_log" + (f" WHERE {' AND '.join(where)}" if where else ""), params)
