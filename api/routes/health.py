"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    """The database answers; each projection's position and lag (in events) behind the log."""
    try:
        head = services.head()
        positions = services.positions()
    except Exception as error:  # any database failure means not ready; the reason is returned
        return JSONResponse({"status": "unavailable", "database": repr(error)}, status_code=503)
    runners = services.runner.status() if services.runner else {}
    projections = {
        name: {"position": pos, "lag": max(head - pos, 0), **runners.get(name, {})}
        for name, pos in positions.items()
    }
    return JSONResponse({"status": "ready", "database": "ok", "head": head, "projections": projections})
