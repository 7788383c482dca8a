"""HTTP routes: subsidies."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["subsidies"])
