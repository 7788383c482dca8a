"""Liveness, readiness and metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from api.access import READERS, AreaRule, access
from api.deps import ServicesDep
from api.waits import SILENT_SECONDS  # a follower silent this long, while its view is behind, is stopped
from application.metrics import StoreCollector

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)



@router.get("/healthz")
@access(READERS, AreaRule.NONE, public=True)
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
@access(READERS, AreaRule.NONE, public=True)
def readyz(services: ServicesDep) -> JSONResponse:
    """The database answers and every view is kept: each view's position, lag (events behind
    the store), state and open dead letters. 503 names the views that are stopped
    (or still starting: not reported yet)."""
    try:
        head = services.head()
        positions = services.positions()
        status = services.view_status()
    except Exception as error:  # any database failure means not ready; the reason goes to the log only
        log.warning("readyz: database unavailable (%s)", type(error).__name__)
        return JSONResponse({"status": "unavailable", "database": "unavailable"}, status_code=503)
    projector = services.projector
    projections = {}
    stopped, starting = [], []
    for name, position in positions.items():
        lag = max(head - position, 0)
        view = status.get(name, {})
        state = str(view.get("state", "unknown"))
        silent = float(view.get("silent_for") or 0.0)
        if projector is not None and not projector.alive:
            state = "stopped"
        elif state == "failing" or (lag and silent > SILENT_SECONDS):
            state = "stopped"
        elif lag and state == "unknown":
            state = "starting"  # its follower has not reported yet (the first seconds after a start)
        if state == "stopped":
            stopped.append(name)
        elif state == "starting":
            starting.append(name)
        projections[name] = {"position": position, "lag": lag, "state": state,
                             "dead_letters": int(view.get("dead_letters", 0))}
        if view.get("error_kind") and state == "stopped":
            projections[name]["error"] = view["error_kind"]
    overall = "stopped" if stopped else "starting" if starting else "ready"
    body: dict[str, object] = {"status": overall, "database": "ok", "head": head, "projections": projections}
    if stopped:
        body["stopped"] = stopped
    if starting:
        body["starting"] = starting
    return JSONResponse(body, status_code=200 if overall == "ready" else 503)


@router.get("/metrics", include_in_schema=False)
@access(READERS, AreaRule.NONE, public=True)
def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus metrics: this process's counters, and lags read from the database (no personal data)."""
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(services))
        request.app.state.metrics_registry = registry
    return Response(generate_latest(REGISTRY) + generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
