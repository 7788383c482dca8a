"""Request dependencies: the services, the caller, and the command context that
handles Idempotency-Key, If-Match and the response shape of every command."""


import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import Problem
from api.schemas import CommandAccepted, PageOut
from application import keys as auth
from application.office import Liudong
from application.services import Services
from application.store import (
    IDEMPOTENCY_TABLE,
    CommandResult,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    NotFound,
    PreconditionFailed,
)
from domain.common import DomainError, Role, Stamp
from projections.pages import Page

_bearer = HTTPBearer(auto_error=False, description="An API key from `liudong keys create`")

MAX_IDEMPOTENCY_KEY = 200


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Principal:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Unauthorized", "send an API key as 'Authorization: Bearer KEY'",
                      rule="missing_api_key", headers=unauthorized)
    principal = auth.authenticate(services.pool, credentials.credentials)
    if principal is None:
        raise Problem(401, "Unauthorized", "the API key is not valid or has been revoked",
                      rule="invalid_api_key", headers=unauthorized)
    return principal


PrincipalDep = Annotated[auth.Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[auth.Principal], auth.Principal]:
    allowed = set(roles)

    def check(principal: PrincipalDep) -> auth.Principal:
        if principal.actor.role not in allowed:
            raise Problem(
                403, "Forbidden",
                f"role {principal.actor.role.value} may not do this; allowed: "
                + ", ".join(sorted(r.value for r in allowed)),
                rule="role_not_allowed",
            )
        return principal

    return check


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    raw = value.strip()
    if raw.startswith("W/"):
        raw = raw[2:]
    raw = raw.strip('"')
    if not raw.isdigit():
        raise Problem(422, "Invalid request", "If-Match must be an ETag this service issued, e.g. \"3\"",
                      rule="invalid_if_match", errors=[{"field": "If-Match", "rule": "invalid_if_match",
                                                          "message": "not a version ETag"}])
    return int(raw)


@dataclass
class Command:
    """One command request: who, when, and how to answer it exactly once."""

    services: Services
    principal: auth.Principal
    idempotency_key: str | None
    fingerprint: str
    expected_version: int | None

    @property
    def app(self) -> Liudong:
        return self.services.app

    def stamp(self) -> Stamp:
        return Stamp(actor=self.principal.actor, recorded_at=self.services.clock())

    def run(
        self,
        action: Callable[[Stamp, IdempotencyClaim | None], CommandResult],
        *,
        status: int = 200,
        location: Callable[[CommandResult], str] | None = None,
        extra: Callable[[CommandResult], dict[str, Any]] | None = None,
    ) -> JSONResponse:
        def render(result: CommandResult) -> tuple[int, dict[str, Any], str | None]:
            body: dict[str, Any] = {"id": str(result.id), "version": result.version, "position": result.position}
            body.update(result.details)
            if extra is not None:
                body.update(extra(result))
            return status, body, location(result) if location else None

        replay = self._replay()
        if replay is not None:
            return replay
        claim = None
        if self.idempotency_key is not None:
            claim = IdempotencyClaim(
                actor_id=self.principal.actor.user_id,
                key=self.idempotency_key,
                fingerprint=self.fingerprint,
                render=render,
            )
        try:
            result = action(self.stamp(), claim)
        except IdempotencyKeyTaken:
            replay = self._replay()
            if replay is None:  # pragma: no cover - the row was committed before the error
                raise
            return replay
        except (DomainError, NotFound, PreconditionFailed):
            # A concurrent request with the same key may have committed while this one
            # was deciding, and changed the state it decided on: that request's answer
            # is this request's answer too.
            replay = self._replay()
            if replay is not None:
                return replay
            raise
        code, body, loc = render(result)
        return _respond(code, body, loc, result.version)

    def _replay(self) -> JSONResponse | None:
        if self.idempotency_key is None:
            return None
        with self.services.pool.connection() as conn:
            conn.execute(
                f"DELETE FROM {IDEMPOTENCY_TABLE} WHERE actor_id = %s AND key = %s"
                " AND created_at < now() - make_interval(hours => %s)",
                (self.principal.actor.user_id, self.idempotency_key, self.services.settings.idempotency_ttl_hours),
            )
            row = conn.execute(
                f"SELECT fingerprint, status, body, location FROM {IDEMPOTENCY_TABLE}"
                " WHERE actor_id = %s AND key = %s",
                (self.principal.actor.user_id, self.idempotency_key),
            ).fetchone()
        if row is None:
            return None
        if row["fingerprint"] != self.fingerprint:
            raise Problem(
                422, "Idempotency key reused",
                "this Idempotency-Key was used with a different request; use a new key for a new request",
                rule="idempotency_key_reused",
                errors=[{"field": "Idempotency-Key", "rule": "idempotency_key_reused",
                         "message": "same key, different body"}],
            )
        response = _respond(row["status"], row["body"], row["location"], row["body"].get("version"))
        response.headers["Idempotent-Replayed"] = "true"
        return response


def _respond(status: int, body: dict[str, Any], location: str | None, version: int | None) -> JSONResponse:
    headers = {}
    if location:
        headers["Location"] = location
    if version is not None:
        headers["ETag"] = f'"{version}"'
    return JSONResponse(body, status_code=status, headers=headers)


def command_dependency(*roles: Role) -> Any:
    role_check = require_roles(*roles)

    async def dependency(
        request: Request,
        services: ServicesDep,
        principal: Annotated[auth.Principal, Depends(role_check)],
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY,
                   description="Makes a retry safe: the same key and body return the first response."),
        ] = None,
        if_match: Annotated[
            str | None, Header(alias="If-Match", description="The ETag (version) the command expects")
        ] = None,
    ) -> Command:
        fingerprint = await _fingerprint(request) if idempotency_key is not None else ""
        return Command(
            services=services,
            principal=principal,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            expected_version=parse_if_match(if_match),
        )

    return Depends(dependency)


async def _fingerprint(request: Request) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path and
    the body's JSON value (key order and white space do not matter)."""
    raw = await request.body()
    try:
        canonical = json.dumps(json.loads(raw or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = raw.decode("utf-8", "replace")  # malformed JSON: FastAPI refuses it with 422
    return hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()


# Who may send which command; every route module picks from these.
STAFF = (Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN)
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)

# OpenAPI documentation of a command's answer.
RECORDED: dict[int | str, dict[str, Any]] = {200: {"model": CommandAccepted, "description": "recorded"}}


def created(what: str) -> dict[int | str, dict[str, Any]]:
    return {201: {"model": CommandAccepted, "description": f"recorded; Location names the new {what}"}}


def page_response(page: Page, headers: dict[str, str], items: list[dict[str, Any]] | None = None) -> JSONResponse:
    """A list answer: ``{items, total, next}``."""
    body = PageOut(items=page.items if items is None else items, total=page.total, next=page.next_cursor)
    return JSONResponse(body.model_dump(mode="json"), headers=headers)


def read_after(services: Services, projection: str, after: int | None) -> dict[str, str]:
    """Read-your-writes: wait (bounded) until ``projection`` reached ``after``.
    Returns headers that say whether it did."""
    if after is None or after <= 0:
        return {}
    reached = services.wait_for(projection, after, services.settings.read_wait_timeout)
    return {"X-Read-Consistent": "true" if reached else "false"}
