"""``create_app()``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from api import problems
from api.problems import problem_response
from api.routes import committees, disputes, health, permits, residents, sites, statistics, subsidies
from application.services import Services
from application.settings import Settings

DESCRIPTION = """
流动 liudong: case management for the district's migrant residents (外来人口).

Every command is stored as an immutable event. Send `Authorization: Bearer KEY`.
Commands accept `Idempotency-Key` (safe retries) and `If-Match` (optimistic concurrency);
their responses carry `position`, which a later GET may pass as `?after=` to read its own write.
Errors are RFC 9457 problem documents naming the field or rule.
"""


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the API. With ``services`` given (tests), the caller owns their lifetime."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.open(settings or Settings())
        try:
            yield
        finally:
            if owned:
                app.state.services.close()

    app = FastAPI(title="liudong", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    problems.install(app)

    @app.middleware("http")
    async def require_json(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method in {"POST", "PUT", "PATCH"}:
            content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return problem_response(
                    415, "Unsupported media type", "send the request body as application/json",
                    rule="content_type", instance=request.url.path,
                    extra={"errors": [{"field": "Content-Type", "rule": "content_type",
                                       "message": f"got {content_type or 'nothing'}"}]},
                )
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(sites.router)
    app.include_router(residents.router)
    app.include_router(permits.router)
    app.include_router(disputes.router)
    app.include_router(disputes.open_cases_router)
    app.include_router(committees.router)
    app.include_router(subsidies.router)
    app.include_router(statistics.router)
    return app
