"""Request dependencies: the services, the caller, the areas they act in, read-your-writes
waits, and the command context that handles Idempotency-Key, If-Match and the answer."""


import functools
import hashlib
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, TypeAdapter
from starlette.concurrency import run_in_threadpool

from api.problems import Problem
from api.schemas import CommandAccepted
from application.access import Principal, acting_in
from application.metrics import COMMAND_SECONDS
from application.office import Liudong
from application.services import Services
from application.settings import LARGEST_PAGE
from application.store import (
    IDEMPOTENCY_TABLE,
    CommandResult,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    NotFound,
    PreconditionFailed,
)
from domain.common import ERASED, DomainError, Role, Stamp
from projections.pages import Page

_bearer = HTTPBearer(auto_error=False, description="An API key from `liudong keys create`, or an OAuth2 token")

MAX_IDEMPOTENCY_KEY = 200
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")
ETAG = re.compile(r'^(?:W/)?"?([0-9]{1,12})"?$')


# The dependencies below are ``async def`` though they do not wait: FastAPI runs a plain
# ``def`` dependency in a worker thread, and each such hop cost a list request about 0.7 ms.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Problem(401, "Unauthorized", "send an API key or token as 'Authorization: Bearer ...'",
                      rule="missing_api_key", headers=unauthorized)
    known, principal = services.authenticator.cached(credentials.credentials)
    if not known:  # a key not seen lately, or a token: the database or a signature check, in a thread
        principal = await run_in_threadpool(services.authenticator.authenticate, credentials.credentials)
    if principal is None:
        raise Problem(401, "Unauthorized", "the API key or token is not valid, has expired or has been revoked",
                      rule="invalid_api_key", headers=unauthorized)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = set(roles)

    async def check(principal: PrincipalDep) -> Principal:
        if principal.actor.role not in allowed:
            raise Problem(
                403, "Forbidden",
                f"role {principal.actor.role.value} may not do this; allowed: "
                + ", ".join(sorted(r.value for r in allowed)),
                rule="role_not_allowed",
            )
        return principal

    return check


@contextmanager
def reading_as(principal: Principal) -> Iterator[None]:
    """Loads within the caller's areas: a record elsewhere is not found."""
    with acting_in(principal.visible):
        yield


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = ETAG.match(value.strip())
    if match is None:
        raise Problem(422, "Invalid request", "If-Match must be an ETag this service issued, e.g. \"3\"",
                      rule="invalid_if_match", errors=[{"field": "If-Match", "rule": "invalid_if_match",
                                                          "message": "not a version ETag"}])
    return int(match.group(1))


@dataclass
class Command:
    """One command request: who, when, and how to answer it exactly once."""

    services: Services
    principal: Principal
    idempotency_key: str | None
    fingerprint: str
    expected_version: int | None
    route: str = ""

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
            body = CommandAccepted.model_validate(body).model_dump(mode="json", exclude_none=True)
            return status, body, location(result) if location else None

        started = time.perf_counter()
        outcome = "error"
        try:
            replay = self._replay()
            if replay is not None:
                outcome = "replayed"
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
                with acting_in(self.principal.visible):
                    result = action(self.stamp(), claim)
            except IdempotencyKeyTaken:
                replay = self._replay()
                if replay is None:  # pragma: no cover - the row was committed before the error
                    raise
                outcome = "replayed"
                return replay
            except (DomainError, NotFound, PreconditionFailed):
                # A concurrent request with the same key may have committed while this one
                # was deciding, and changed the state it decided on: that request's answer
                # is this request's answer too.
                replay = self._replay()
                if replay is not None:
                    outcome = "replayed"
                    return replay
                outcome = "refused"
                raise
            code, body, loc = render(result)
            outcome = "stored"
            return _respond(code, body, loc, result.version)
        finally:
            COMMAND_SECONDS.labels(self.route, outcome).observe(time.perf_counter() - started)

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
        principal: Annotated[Principal, Depends(role_check)],
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", max_length=MAX_IDEMPOTENCY_KEY,
                   description="Makes a retry safe: the same key and body return the first response."),
        ] = None,
        if_match: Annotated[
            str | None, Header(alias="If-Match", max_length=100, description="The ETag (version) the command expects")
        ] = None,
    ) -> Command:
        if idempotency_key is not None and not IDEMPOTENCY_KEY.match(idempotency_key):
            raise Problem(422, "Invalid request", "an Idempotency-Key is 1 to 200 printable ASCII characters",
                          rule="invalid_idempotency_key", errors=[{
                              "field": "Idempotency-Key", "rule": "invalid_idempotency_key",
                              "message": "printable ASCII, no spaces"}])
        fingerprint = await _fingerprint(request) if idempotency_key is not None else ""
        route = request.scope.get("route")
        return Command(
            services=services,
            principal=principal,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
            expected_version=parse_if_match(if_match),
            route=getattr(route, "path", ""),
        )

    return Depends(dependency)


async def _fingerprint(request: Request) -> str:
    """What makes two requests "the same" for an Idempotency-Key: method, path and
    the body's JSON value (key order and white space do not matter)."""
    raw = await request.body()
    try:
        canonical = json.dumps(json.loads(raw or b"null"), sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        canonical = raw.decode("utf-8", "replace")  # malformed JSON: FastAPI refuses it with 422
    return hashlib.sha256(f"{request.method} {request.url.path}\n{canonical}".encode()).hexdigest()


# Who may send which command; every route module picks from these.
STAFF = (Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN)
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)

# OpenAPI documentation of a command's answer.
RECORDED: dict[int | str, dict[str, Any]] = {200: {"model": CommandAccepted, "description": "recorded"}}


def created(what: str) -> dict[int | str, dict[str, Any]]:
    return {201: {"model": CommandAccepted, "description": f"recorded; Location names the new {what}"}}


# -- answers -------------------------------------------------------------------------------
def read_route(request: Request) -> str:
    """How the access log names a read: the method and the path asked (``GET /residents/…``),
    the same for the API's routes and the pages."""
    return f"{request.method} {request.url.path}"


def respond(model: BaseModel, headers: dict[str, str] | None = None, status: int = 200) -> JSONResponse:
    """An answer validated against its documented model."""
    return JSONResponse(model.model_dump(mode="json"), status_code=status, headers=headers)


def page_response(page: Page, headers: dict[str, str], items: list[Any] | None = None,
                  item_model: type[BaseModel] | None = None) -> JSONResponse:
    """A list answer: ``{items, total, next, total_estimated}``, each item checked against
    ``item_model`` and written to JSON by pydantic in one pass (a list of 50 rows costs a
    third of what a model_dump per row and ``json.dumps`` of the result did)."""
    values = page.items if items is None else items
    if item_model is not None:
        adapter = _list_of(item_model)
        encoded = adapter.dump_json(adapter.validate_python(values))
    else:
        from fastapi.encoders import jsonable_encoder

        encoded = json.dumps(jsonable_encoder(values), ensure_ascii=False, separators=(",", ":")).encode()
    # The envelope is PageOut's shape.
    tail = json.dumps({"total": page.total, "next": page.next_cursor, "total_estimated": page.total_estimated},
                      separators=(",", ":")).encode()
    return EncodedJSON(b'{"items":' + encoded + b"," + tail[1:], headers=headers)


class EncodedJSON(JSONResponse):
    """A JSON answer whose body is already encoded."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes)
        return content


@functools.cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def language(request: Request) -> str:
    """``en`` when the caller prefers English, else ``zh`` (the office's language)."""
    best, best_q = "zh", 0.0
    for part in request.headers.get("accept-language", "").lower().split(","):
        tag, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        lang = "zh" if tag.startswith("zh") else "en" if tag.startswith("en") else None
        if lang is not None and q > best_q:  # the first of equal weight wins; q=0 is "not this one"
            best, best_q = lang, q
    return best


async def _language(request: Request) -> str:
    return language(request)


Language = Annotated[str, Depends(_language)]


def erased_text(lang: str) -> str:
    return "[erased]" if lang == "en" else "[已删除]"


def shown(value: Any, lang: str) -> Any:
    """A value as the caller reads it: an erased field in their language."""
    if value == ERASED:
        return erased_text(lang)
    if isinstance(value, list):
        return [shown(v, lang) for v in value]
    if isinstance(value, dict):
        return {k: shown(v, lang) for k, v in value.items()}
    return value


# -- read-your-writes ------------------------------------------------------------------------
class WaitLimiter:
    """At most ``limit`` ?after= waits at once per key."""

    def __init__(self) -> None:
        self.waiting: dict[str, int] = {}
        self.lock = threading.Lock()

    @contextmanager
    def slot(self, key: str, limit: int) -> Iterator[None]:
        with self.lock:
            if self.waiting.get(key, 0) >= limit:
                raise Problem(429, "Too many requests", f"at most {limit} reads may wait for ?after= at once per key",
                              rule="too_many_waits", headers={"Retry-After": "1"})
            self.waiting[key] = self.waiting.get(key, 0) + 1
        try:
            yield
        finally:
            with self.lock:
                self.waiting[key] -= 1


def after(view: str) -> Any:
    """``?after=POSITION``: wait (on the event loop, holding no thread) until ``view`` has
    dealt with the position, up to the configured time; the answer's headers say whether
    it did (``X-Read-Consistent``)."""
    return after_all(view)


def after_all(*views: str) -> Any:
    """``?after=POSITION`` for an answer read from several views: wait for each in turn."""

    async def wait(
        request: Request,
        principal: PrincipalDep,
        services: ServicesDep,
        after: Annotated[int | None, Query(ge=0, le=2**62,
                                           description="wait until this event position is reflected")] = None,
    ) -> dict[str, str]:
        if after is None or after <= 0:
            return {}
        watcher = request.app.state.marks
        limiter: WaitLimiter = request.app.state.wait_limiter
        settings = request.app.state.settings
        reached = True
        with limiter.slot(principal.key_id or principal.actor.user_id, settings.max_waits_per_key):
            for view in views:
                reached = await watcher.wait(view, after, settings.read_wait_timeout) and reached
        return {"X-Read-Consistent": "true" if reached else "false"}

    return Depends(wait)


async def page_limit(request: Request, limit: Annotated[int, Query(ge=1, le=LARGEST_PAGE, description=(
        "items per page; more than the service's page size cap (LIUDONG_MAX_PAGE_SIZE, 500 unless set) "
        "gives the cap"))] = 50) -> int:
    """``?limit=``, reduced to the configured page size cap (found by a review: a cap raised above
    500 was refused at 501, one below it cut silently)."""
    cap: int = request.app.state.settings.max_page_size
    return min(limit, cap)


Limit = Annotated[int, Depends(page_limit)]


def read_after(services: Services, projection: str, after: int | None) -> dict[str, str]:
    """Read-your-writes for code outside a request (waits in the calling thread)."""
    if after is None or after <= 0:
        return {}
    reached = services.wait_for(projection, after, services.settings.read_wait_timeout)
    return {"X-Read-Consistent": "true" if reached else "false"}
