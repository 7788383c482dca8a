"""RFC 9457 problem details: every error this API returns, and the one place that
maps domain and application errors onto HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.store import AreaNotAllowed, NotFound, PreconditionFailed, TooMuchContention
from domain.common import DomainError, InvalidValue, RuleViolated, UnknownPart
from projections.pages import BadCursor

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
TYPE_BASE = "https://liudong.example/problems/"


class Problem(Exception):
    """An HTTP error raised from a route or dependency."""

    def __init__(self, status: int, title: str, detail: str, *, rule: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.rule = rule
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, title: str, detail: str, *, rule: str | None = None,
                     instance: str | None = None, headers: dict[str, str] | None = None,
                     extra: dict[str, Any] | None = None) -> JSONResponse:
    """A problem document; ``extra`` members never replace the standard ones."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + (rule or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if rule:
        body["rule"] = rule
    for key, value in (extra or {}).items():
        if value is not None:
            body.setdefault(key, value)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400:  # a body Starlette could not read as JSON (bad UTF-8, too deep)
        return problem_response(422, "Invalid request", "the body is not valid JSON", rule="validation",
                                instance=request.url.path, extra={"errors": [
                                    {"field": "body", "rule": "json_invalid", "message": "not valid JSON"}]})
    rule = {405: "method_not_allowed", 404: "not_found", 413: "body_too_large"}.get(exc.status_code)
    return problem_response(exc.status_code, _title(exc.status_code), str(exc.detail), rule=rule,
                            instance=request.url.path, headers=getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, rule=exc.rule, instance=request.url.path,
                                headers=exc.headers, extra=exc.extra)

    @app.exception_handler(InvalidValue)
    async def _invalid(request: Request, exc: InvalidValue) -> JSONResponse:
        return problem_response(
            422, "Invalid value", exc.message, rule=exc.rule, instance=request.url.path,
            extra={"errors": [{"field": exc.field, "rule": exc.rule, "message": exc.message}], **exc.details},
        )

    @app.exception_handler(UnknownPart)
    async def _unknown_part(request: Request, exc: UnknownPart) -> JSONResponse:
        return problem_response(404, "Not found", exc.message, rule=exc.rule, instance=request.url.path)

    @app.exception_handler(RuleViolated)
    async def _rule(request: Request, exc: RuleViolated) -> JSONResponse:
        return problem_response(409, "Rule violated", exc.message, rule=exc.rule, instance=request.url.path,
                                extra=exc.details)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(409, "Rule violated", exc.message, rule=exc.rule, instance=request.url.path,
                                extra=exc.details)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        if exc.field is not None:
            # An id inside the request body that names nothing: the request is at fault.
            return problem_response(
                422, "Invalid value", str(exc), rule=f"unknown_{exc.kind.replace(' ', '_')}",
                instance=request.url.path,
                extra={"errors": [{"field": exc.field, "rule": "unknown_reference", "message": str(exc)}]},
            )
        return problem_response(404, "Not found", str(exc), rule="not_found", instance=request.url.path)

    @app.exception_handler(PreconditionFailed)
    async def _precondition(request: Request, exc: PreconditionFailed) -> JSONResponse:
        return problem_response(
            412, "Precondition failed", str(exc), rule="version_mismatch", instance=request.url.path,
            extra={"current_version": exc.actual}, headers={"ETag": f'"{exc.actual}"'},
        )

    @app.exception_handler(AreaNotAllowed)
    async def _area(request: Request, exc: AreaNotAllowed) -> JSONResponse:
        return problem_response(
            403, "Forbidden", str(exc), rule="area_not_allowed", instance=request.url.path,
            extra={"errors": [{"field": exc.field, "rule": "area_not_allowed",
                               "message": "outside the areas of this key"}]},
        )

    @app.exception_handler(TooMuchContention)
    async def _contention(request: Request, exc: TooMuchContention) -> JSONResponse:
        return problem_response(503, "Busy", str(exc), rule="contention", instance=request.url.path,
                                headers={"Retry-After": "1"})

    @app.exception_handler(BadCursor)
    async def _cursor(request: Request, exc: BadCursor) -> JSONResponse:
        return problem_response(422, "Invalid value", str(exc), rule="invalid_cursor", instance=request.url.path,
                                extra={"errors": [{"field": "cursor", "rule": "invalid_cursor", "message": str(exc)}]})

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": _field_name(err),
                "location": err["loc"][0],
                "rule": err["type"],
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(422, "Invalid request", f"invalid: {fields}", rule="validation",
                                instance=request.url.path, extra={"errors": errors})

    app.add_exception_handler(StarletteHTTPException, http_exception_handler)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The kind of error only: its text may carry personal data or secrets.
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return problem_response(500, "Internal server error", "the service failed; the error is logged by its kind",
                                rule="internal_error", instance=request.url.path)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem document; `rule` names the rule or check that refused the request and "
                   "`errors` the fields at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "rule": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object",
            "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "location": {"type": "string"},
                           "rule": {"type": "string"}, "message": {"type": "string"}},
        }},
    },
    "additionalProperties": True,
}
# Statuses every operation may answer with, and those only some do.
_ANY = {422: "Invalid request: the field or rule is named", 429: "Too many requests (Retry-After)"}
_SECURED = {401: "No key or token, or one not valid", 403: "The role or area of the key does not allow it"}
_BODY = {413: "Body too large", 415: "Body not sent as application/json"}
_COMMAND = {409: "A domain rule refused the command", 412: "If-Match names a stale version"}


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with the problem responses the API really sends: FastAPI's own
    422 (``HTTPValidationError``, application/json) is replaced by the problem document, and
    the other problem statuses are listed on the operations that can answer with them."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            statuses = dict(_ANY)
            if operation.get("security"):
                statuses |= _SECURED
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                statuses[404] = "Not found (or outside the areas of the key)"
            if method in ("post", "put", "patch"):
                statuses |= _BODY | _COMMAND
            responses = operation.setdefault("responses", {})
            for status, description in sorted(statuses.items()):
                responses[str(status)] = {"description": description, "content": {PROBLEM: {"schema": ref}}}
    app.openapi_schema = schema
    return schema


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_name(err: Any) -> str:
    """The dotted path of the offending field; ``body`` for a body that is not JSON at all."""
    if err["type"] == "json_invalid":
        return "body"
    return ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
