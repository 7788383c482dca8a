"""For auditors (and every reader within their areas): each record's history, event by
event, and who read whose personal data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from api.access import READERS, AreaRule, access
from api.deps import Language, Limit, PrincipalDep, ServicesDep, read_route, reading_as, respond
from api.present import Presenter
from api.problems import Problem
from api.schemas import AccessLogEntry, HistoryEntry, IsoDate, IsoMoment, PageOut, Public
from api.summaries import site_namer, summary
from application.audit import access_log, count_access_log, record_access, record_read
from application.chain import b64, checkpoint_statement, checkpoints, count_checkpoints
from application.events import EventCatalogue, plain
from application.history import as_of, effective_on, history
from application.privacy import sealed_fields
from domain.active_members import ActiveMember
from domain.cobuilding import Pairing
from domain.committees import ManagementCommittee
from domain.common import Role
from domain.disputes import DisputeCase
from domain.operators import Operator
from domain.residents import Resident
from domain.sites import HousingSite
from domain.subsidies import SubsidyApplication, SubsidyProgram
from projections.pages import BadCursor, decode_cursor, encode_cursor

router = APIRouter(tags=["history and audit"])

# Fields of an event that say why: shown as ``reason`` (free text only to those who may read it).
REASONS = ("reason", "note", "text", "legal_basis", "justification", "outcome")
# Reasons that may name people, in every event; and the fields each event seals as personal data.
PERSONAL = frozenset({"text", "reason", "outcome", "note", "justification"})
SEALED = sealed_fields()
CATALOGUE = EventCatalogue.of_domain()


def shown_reason(name: str, event: Any, presenter: Presenter) -> str | None:
    """The event's reason as this reader may see it: free text that may name people, or a
    field the event seals, only to those who may read personal data."""
    reason = next(((k, getattr(event, k)) for k in REASONS if getattr(event, k, None) is not None), None)
    if reason is None:
        return None
    personal = reason[0] in PERSONAL or reason[0] in SEALED.get(name, frozenset())
    shown = presenter.text(reason[1]) if personal else plain(reason[1])
    return None if shown is None else str(shown)


BIGGEST = 2**63 - 1  # a bigint: no version, position or row id is larger


def _number(text: str, at_most: int = BIGGEST) -> int:
    """A number a cursor names: one this service issued is from 1 up (found by a review: -1 and
    99999999999999999999999 were taken, and gave the first page or an empty one)."""
    value = int(text)
    if not 1 <= value <= at_most:
        raise ValueError(text)
    return value


def _cursor(cursor: str | None, at_most: int = BIGGEST) -> int:
    if not cursor:
        return 0
    try:
        (value,) = decode_cursor(cursor)
        return _number(value, at_most)
    except ValueError:
        raise BadCursor("cursor is not one this service issued") from None


def _history(kind: type, personal: bool) -> Callable[..., JSONResponse]:
    def endpoint(aggregate_id: UUID, request: Request, services: ServicesDep, principal: PrincipalDep,
                 lang: Language, limit: Limit, cursor: Annotated[str | None, Query(max_length=200)] = None,
                 ) -> JSONResponse:
        with reading_as(principal):
            record: Any = services.app.load(kind, aggregate_id)
        # A cursor names a version the record has (it never loses one).
        entries = history(services.app, aggregate_id, CATALOGUE, after_version=_cursor(cursor, record.version),
                          limit=limit + 1)
        presenter = Presenter(services.app.vault, principal, lang)

        def area_name(code: str) -> str:
            area = services.app.areas.get(code)
            return (area.name_en if lang == "en" else area.name_zh) if area else code

        site_name = site_namer(services.app)
        items = []
        for entry in entries[:limit]:
            event = entry.event
            on = effective_on(event, CATALOGUE)
            items.append(HistoryEntry(
                position=entry.position, version=entry.version, event=entry.name,
                actor_id=getattr(event, "actor_id", None), actor_role=getattr(event, "actor_role", None),
                recorded_at=entry.recorded_at, effective_date=on,
                reason=shown_reason(entry.name, event, presenter),
                summary=summary(entry.name, event, lang, area_name, site_name)))
        more = len(entries) > limit
        page = PageOut[HistoryEntry](items=items, total=record.version, next=encode_cursor(str(items[-1].version))
                                     if more and items else None)
        if personal:
            with services.pool.connection() as conn:
                record_read(conn, principal, record, read_route(request))
        return respond(page, {"Cache-Control": "no-store"})

    endpoint.__doc__ = (f"Every event of one {kind.__name__} in order: type, actor, recorded time, effective date, "
                        "reason, version, global position and a one-line summary (Accept-Language: zh-CN or en).")
    return endpoint


# Programs are the district's (no area); every other record lies in an area.
for path, kind, personal, rule in (
        ("/residents/{aggregate_id}/history", Resident, True, AreaRule.OBJECT),
        ("/sites/{aggregate_id}/history", HousingSite, False, AreaRule.OBJECT),
        ("/disputes/{aggregate_id}/history", DisputeCase, True, AreaRule.OBJECT),
        ("/committees/{aggregate_id}/history", ManagementCommittee, False, AreaRule.OBJECT),
        ("/subsidy-programs/{aggregate_id}/history", SubsidyProgram, False, AreaRule.NONE),
        ("/subsidy-applications/{aggregate_id}/history", SubsidyApplication, False, AreaRule.OBJECT),
        ("/operators/{aggregate_id}/history", Operator, False, AreaRule.OBJECT),
        ("/pairings/{aggregate_id}/history", Pairing, False, AreaRule.OBJECT),
        ("/active-members/{aggregate_id}/history", ActiveMember, True, AreaRule.OBJECT)):
    endpoint = access(READERS, rule)(_history(kind, personal))
    endpoint.__name__ = f"history_of_{kind.__name__.lower()}"
    router.get(path, response_model=PageOut[HistoryEntry], name=endpoint.__name__)(endpoint)


@router.get("/audit/access-log", response_model=PageOut[AccessLogEntry])
@access(frozenset({Role.AUDITOR}), AreaRule.NONE)
def get_access_log(
    request: Request, services: ServicesDep, principal: PrincipalDep, limit: Limit,
    resident_id: UUID | None = None,
    user: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[IsoMoment | None, Query(alias="from")] = None,
    until: Annotated[IsoMoment | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """Who read whose personal data, when and through which route (auditors only; this read is logged too)."""
    if principal.actor.role is not Role.AUDITOR:
        raise Problem(403, "Forbidden", "only auditors read the access log", rule="role_not_allowed")
    for name, moment in (("from", since), ("to", until)):  # found by a review: read in the server's time zone
        if moment is not None and moment.tzinfo is None:
            raise Problem(422, "Invalid request", f"{name} needs a UTC offset, e.g. 2026-06-01T12:00:00+08:00",
                          rule="timezone_missing", errors=[{"field": name, "rule": "timezone_missing",
                                                            "message": "add a UTC offset"}])
    if since is not None and until is not None and until < since:  # found by a review: an empty 200
        raise Problem(422, "Invalid request", "to comes before from", rule="range_backwards",
                      errors=[{"field": "to", "rule": "range_backwards", "message": "comes before from"}])
    after, upto = _log_cursor(cursor)
    with services.pool.connection() as conn:
        if upto is None:  # the log as it stands at the first page: reading it adds to it (found by a review:
            row = conn.execute("SELECT max(id) AS n FROM access_log").fetchone()  # paging never ended)
            upto = int(row["n"] or 0) if row else 0
        rows = access_log(conn, resident_id=resident_id, user_id=user, since=since, until=until, limit=limit + 1,
                          after_id=after, upto_id=upto)
        total, estimated = count_access_log(conn, resident_id=resident_id, user_id=user, since=since, until=until,
                                            upto_id=upto)
        asked = (("resident_id", resident_id), ("user", user), ("from", since), ("to", until))
        record_access(conn, principal, None, read_route(request),  # only what was asked (no "user=None")
                      detail=" ".join(f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
                                      for name, value in asked if value is not None) or None)
    items = [AccessLogEntry.model_validate(r) for r in rows[:limit]]
    return respond(PageOut[AccessLogEntry](items=items, total=total, total_estimated=estimated, next=encode_cursor(
        str(rows[limit - 1]["id"]), str(upto)) if len(rows) > limit else None))


def _log_cursor(cursor: str | None) -> tuple[int, int | None]:
    """The access log's cursor: the last entry shown and the last entry there was at the first page."""
    if not cursor:
        return 0, None
    try:
        values = decode_cursor(cursor)
        if len(values) == 1:  # a cursor issued before the bound
            return _number(values[0]), None
        after, upto = values
        return _number(after, _number(upto)), _number(upto)  # the last shown is within the bound
    except ValueError:
        raise BadCursor("cursor is not one this service issued") from None


class CheckpointEntry(Public):
    id: int
    position: int = Field(description="the global position of the last event the checkpoint covers")
    link: str = Field(description="the chain's head there (hex SHA-256)")
    events: int = Field(description="events chained up to it")
    at: datetime = Field(description="when it was recorded")
    key_id: str | None = Field(description="the audit key that signed it (none: unsigned)")
    signature: str | None = Field(description="Ed25519 signature (base64) over, for version 1, "
                                  "liudong-checkpoint-v1|position|link|events|at; for version 2, "
                                  "liudong-checkpoint-v2|id|position|link|events|at|previous (at in UTC, ISO "
                                  "8601; previous in hex, empty for the first checkpoint)")
    version: int = Field(default=1, description="1: the head alone; 2: numbered 1, 2, 3 ... without gaps and "
                         "linked to the checkpoint before")
    previous: str | None = Field(default=None, description="version 2: SHA-256 (hex) of the statement of the "
                                 "checkpoint before, which its signature covers; null for the first")
    statement: str | None = Field(default=None, description="the exact text the signature covers and the next "
                                  "checkpoint's previous hashes (found by a review: `at` as served is not written "
                                  "as signed)")


@router.get("/audit/checkpoints", response_model=PageOut[CheckpointEntry])
@access(frozenset({Role.AUDITOR}), AreaRule.NONE)
def get_checkpoints(services: ServicesDep, principal: PrincipalDep, limit: Limit,
                    cursor: Annotated[str | None, Query(max_length=200)] = None) -> JSONResponse:
    """The chain's recorded heads, oldest first (auditors): history up to each provably was not rewritten after it
    (check with `liudong audit verify`)."""
    if principal.actor.role is not Role.AUDITOR:
        raise Problem(403, "Forbidden", "only auditors read checkpoints", rule="role_not_allowed")
    with services.pool.connection() as conn:
        rows = checkpoints(conn, after_id=_cursor(cursor), limit=limit + 1)
        total = count_checkpoints(conn)  # the whole list, not this page (found by a review)
    items = [CheckpointEntry(id=r["id"], position=r["position"], link=bytes(r["link"]).hex(), events=r["events"],
                             at=r["at"], key_id=r["key_id"], signature=b64(r["signature"]),
                             version=int(r.get("version") or 1),
                             previous=bytes(r["previous"]).hex() if r.get("previous") else None,
                             statement=checkpoint_statement(r).decode())
             for r in rows[:limit]]
    return respond(PageOut[CheckpointEntry](items=items, total=total, next=encode_cursor(str(items[-1].id))
                                            if len(rows) > limit and items else None))


KnownAt = Annotated[IsoMoment | None, Query(description=(
    "the record as the office knew it at this moment (events recorded up to it), e.g. 2026-06-01T12:00:00+08:00"))]
EffectiveAt = Annotated[IsoDate | None, Query(description=(
    "the record as true on this date, as known now (late reports folded in by the date they took effect)"))]


def record_at(services: Any, principal: Any, kind: type, aggregate_id: UUID, known_at: datetime | None,
              effective_at: date | None) -> Any:
    """The record now, or folded from its events as known at / effective at the given time."""
    with reading_as(principal):
        current = services.app.load(kind, aggregate_id)
    if known_at is None and effective_at is None:
        return current
    if known_at is not None and known_at.tzinfo is None:
        raise Problem(422, "Invalid request", "known_at needs a UTC offset, e.g. 2026-06-01T12:00:00+08:00",
                      rule="timezone_missing", errors=[{"field": "known_at", "rule": "timezone_missing",
                                                        "message": "add a UTC offset"}])
    folded = as_of(history(services.app, aggregate_id, CATALOGUE), CATALOGUE, known_at=known_at,
                   effective_at=effective_at)
    if folded is None:
        raise Problem(404, "Not found", f"{kind.__name__} {aggregate_id} did not exist then", rule="not_yet")
    return folded
