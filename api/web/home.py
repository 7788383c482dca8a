"""The home page: what the signed-in role works on, with links."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from api.web.core import current_page

router = APIRouter()


@router.get("/")
def home(request: Request) -> Response:
    page = current_page(request)
    return page.render("home.html")


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """The office's icon where a browser asks for it unprompted (found by a review: a 404 logged
    on every visit); the pages name it with ``<link rel="icon">``."""
    return FileResponse(Path(__file__).parent / "static" / "favicon.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})
