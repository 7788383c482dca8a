"""Reference data and access: the area register (everyone reads it; admins change it) and
API keys (admins issue, rotate and revoke them)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from api.access import ADMINS, READERS, AreaRule, access
from api.deps import (
    RECORDED,
    Command,
    Limit,
    PrincipalDep,
    ServicesDep,
    command_dependency,
    created,
    page_response,
)
from api.problems import Problem
from api.schemas import AreaName, AreaPublic, Body, KeyIssued, KeyPublic, Name, PageOut, Reason
from domain.access import Scope
from domain.areas import AreaLevel
from domain.common import Role
from projections.pages import page_of

router = APIRouter(tags=["areas and access"])

Admin = Annotated[Command, command_dependency(Role.ADMIN)]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,39}$", description="lower-case letters, digits, hyphens")]


class AreaCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "yinxing-village", "name_zh": "银杏村", "name_en": "Yinxing Village", "level": "village",
        "parent": "xinqi"}]})
    code: Code
    name_zh: Name
    name_en: Name
    level: AreaLevel
    parent: AreaName | None = Field(default=None, description="for a village: its street office, town or township")


class AreaRename(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name_zh": "新启街道", "name_en": "Xinqi Subdistrict"}]})
    name_zh: Name
    name_en: Name


class KeyCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"user_id": "wang.fang", "role": "caseworker", "areas": ["xinqi"], "scopes": []},
        {"user_id": "labour-bureau", "role": "api_consumer", "scopes": ["pii"]}]})
    user_id: Name = Field(description="recorded as the actor of every command made with the key")
    role: Role
    areas: list[AreaName] = Field(default_factory=list, max_length=50, description="none: district-wide")
    scopes: list[Scope] = Field(default_factory=list, max_length=len(Scope))


class KeyRevocation(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "left the office"}]})
    reason: Reason


@router.get("/areas", response_model=PageOut[AreaPublic])
@access(READERS, AreaRule.NONE)
def list_areas(services: ServicesDep, _: PrincipalDep, limit: Limit,
               cursor: Annotated[str | None, Query(max_length=500)] = None) -> JSONResponse:
    """Every area of the district, by code, a page at a time: code, Chinese and English name, level, and the area
    it lies under."""
    rows = [{"code": a.code, "name_zh": a.name_zh, "name_en": a.name_en, "level": a.level, "parent": a.parent_code,
             "version": a.version} for a in services.app.areas.refresh().values()]
    return page_response(page_of(rows, lambda r: (r["code"],), limit, cursor), {}, item_model=AreaPublic)


@router.post("/areas", status_code=201, responses=created("area"))
@access(ADMINS, AreaRule.DISTRICT)
def define_area(body: AreaCreate, cmd: Admin) -> JSONResponse:
    """Define an area (admins): a street office, town or township, or a village under one."""
    parent = cmd.app.areas.resolve(body.parent, "parent") if body.parent else None
    return cmd.run(lambda stamp, claim: cmd.app.define_area(
        code=body.code, name_zh=body.name_zh, name_en=body.name_en, level=body.level.value, parent=parent,
        stamp=stamp, idempotency=claim), status=201, location=lambda r: f"/areas?code={body.code}")


@router.post("/areas/{code}/names", responses=RECORDED)
@access(ADMINS, AreaRule.DISTRICT)
def rename_area(code: Code, body: AreaRename, cmd: Admin) -> JSONResponse:
    """Rename an area (admins); its code, and every record that names it, stay."""
    return cmd.run(lambda stamp, claim: cmd.app.rename_area(
        code, name_zh=body.name_zh, name_en=body.name_en, stamp=stamp, expected_version=cmd.expected_version,
        idempotency=claim))


@router.get("/keys", response_model=PageOut[KeyPublic])
@access(ADMINS, AreaRule.LIST)
def list_keys(services: ServicesDep, principal: PrincipalDep, limit: Limit,
              user_id: Annotated[Name | None, Query()] = None,
              cursor: Annotated[str | None, Query(max_length=500)] = None) -> JSONResponse:
    """API keys (admins), newest first, a page at a time: who holds them, role, areas, scopes, and when each was
    revoked. Never the keys."""
    if principal.actor.role is not Role.ADMIN:
        raise Problem(403, "Forbidden", "only admins manage keys", rule="role_not_allowed")
    from application import keys

    rows = [{**r, "areas": list(r["areas"]), "scopes": list(r["scopes"] or [])}
            for r in keys.list_keys(services.pool, user_id, principal.area_filter())]
    page = page_of(rows, lambda r: (r["created_at"].isoformat(), str(r["key_id"])), limit, cursor, newest_first=True)
    return page_response(page, {"Cache-Control": "no-store"}, item_model=KeyPublic)


@router.post("/keys", status_code=201, responses={201: {"model": KeyIssued, "description": "the key, once"}})
@access(ADMINS, AreaRule.CREATE)
def issue_key(body: KeyCreate, cmd: Admin) -> JSONResponse:
    """Issue an API key (admins); the key is in this answer only."""
    issued: list[str] = []

    def action(stamp, claim):  # type: ignore[no-untyped-def]
        result, key = cmd.app.issue_key(user_id=body.user_id, role=body.role.value, areas=list(body.areas),
                                        scopes=[s.value for s in body.scopes], stamp=stamp, idempotency=claim)
        issued.append(key)
        return result

    response = cmd.run(action, status=201, location=lambda r: f"/keys/{r.id}",
                       extra=lambda r: {})
    return _with_key(response, issued)


@router.post("/keys/{key_id}/rotation", status_code=201,
             responses={201: {"model": KeyIssued, "description": "the new key, once"}})
@access(ADMINS, AreaRule.OBJECT)
def rotate_key(key_id: UUID, cmd: Admin) -> JSONResponse:
    """Rotate a key (admins): a new key with the same user, role, areas and scopes; the old one is revoked."""
    issued: list[str] = []

    def action(stamp, claim):  # type: ignore[no-untyped-def]
        result, key = cmd.app.rotate_key(key_id, stamp=stamp, idempotency=claim)
        issued.append(key)
        return result

    return _with_key(cmd.run(action, status=201, location=lambda r: f"/keys/{r.id}"), issued)


@router.post("/keys/{key_id}/revocation", responses=RECORDED)
@access(ADMINS, AreaRule.OBJECT)
def revoke_key(key_id: UUID, body: KeyRevocation, cmd: Admin) -> JSONResponse:
    """Revoke a key (admins); it fails within a second on every process."""
    return cmd.run(lambda stamp, claim: cmd.app.revoke_key(key_id, reason=body.reason, stamp=stamp,
                                                           expected_version=cmd.expected_version, idempotency=claim))


def _with_key(response: JSONResponse, issued: list[str]) -> JSONResponse:
    """The key goes in the answer, never in a stored (replayable) one."""
    if not issued:
        return response
    import json

    body = json.loads(bytes(response.body))
    body["key"] = issued[0]
    headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length", "content-type")}
    headers["Cache-Control"] = "no-store"
    return JSONResponse(KeyIssued.model_validate(body).model_dump(mode="json", exclude_none=True),
                        status_code=response.status_code, headers=headers)
