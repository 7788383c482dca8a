"""``create_app()``: the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.middleware.cors import CORSMiddleware

from api import docs, problems
from api.deps import WaitLimiter
from api.middleware import Guard
from api.routes import (
    active_members,
    admin,
    cobuilding,
    committees,
    disputes,
    health,
    history,
    imports,
    operators,
    permits,
    residents,
    sites,
    statistics,
    subsidies,
)
from api.routes import services as service_routes
from api.waits import MarkWatcher
from api.web import build_web
from application.heap import freeze_startup_heap
from application.services import Services
from application.settings import Settings

DESCRIPTION = """
流动 liudong: case management for the district's migrant residents (外来人口).

Every command is stored as an immutable event. Send `Authorization: Bearer KEY` (an API key,
or an OAuth2 token where the office has an identity provider). A key bound to areas acts and
reads only there; records elsewhere are not found. Personal fields are masked for an
api_consumer without the `pii` scope, and read `[已删除]` / `[erased]` once erased.
Commands accept `Idempotency-Key` (safe retries) and `If-Match` (optimistic concurrency);
their responses carry `position`, which a later GET may pass as `?after=` to read its own write.
Errors are RFC 9457 problem documents naming the field or rule.
"""


def create_app(settings: Settings | None = None, services: Services | None = None, *,
               freeze_heap: bool = False) -> Any:
    """Build the API. With ``services`` given (tests), the caller owns their lifetime. A
    service process passes ``freeze_heap``: once started, its start-up objects leave the
    collector's sight (application.heap)."""
    settings = settings or (services.settings if services is not None else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        app.state.services = services or Services.open(settings)
        app.state.marks = MarkWatcher(app.state.services.database.dsn, app.state.services.projections)
        app.state.marks.start()
        app.state.wait_limiter = WaitLimiter()
        app.state.settings = settings
        if freeze_heap:
            freeze_startup_heap()
        try:
            yield
        finally:
            app.state.marks.stop()
            if owned:
                app.state.services.close()

    app = FastAPI(title="liudong", version="0.2.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None)  # /docs from local assets (api/docs)
    problems.install(app)
    app.openapi = lambda: problems.document(app)  # type: ignore[method-assign]
    for router in (health.router, admin.router, sites.router, residents.router, permits.router, disputes.router,
                   disputes.open_cases_router, committees.router, subsidies.router, statistics.router,
                   history.router, imports.router, active_members.router,
                   service_routes.router, operators.router, cobuilding.router):
        app.include_router(router)
    docs.install(app)
    # The web application's pages, after every API route (api/web).
    app.mount("/", build_web(app.state, [(route.path, route.method) for route in api_routes(app)]))
    guarded: Any = Guard(app, max_body=settings.max_body_bytes, per_minute=settings.rate_limit_per_minute,
                         burst=settings.rate_limit_burst, access_log=settings.access_log,
                         max_import=settings.max_import_bytes)
    if settings.cors_origins:
        guarded = CORSMiddleware(guarded, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                                 allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match",
                                                "Accept-Language"], expose_headers=["ETag", "Location",
                                                                                   "X-Read-Consistent"])
    guarded.fastapi = app  # the FastAPI app inside, for tests and tools
    return guarded


def worker_app() -> Any:
    """The app of one of several HTTP worker processes (``liudong serve --workers N``): the
    process that started them owns the database, the projector and the sweeps, and hands
    each worker its database in the environment."""
    return create_app(Settings(), freeze_heap=True)


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    endpoint: Any


def api_routes(app: Any) -> list[RouteInfo]:
    """Every operation of the app (through its routers), for tools and the access test."""
    fastapi_app: FastAPI = getattr(app, "fastapi", app)
    found = []
    for context in iter_route_contexts(fastapi_app.routes):
        if isinstance(context.original_route, APIRoute):
            for method in sorted(set(context.methods or ()) - {"HEAD"}):
                found.append(RouteInfo(method, context.path or "", context.endpoint))
    return found
