"""The home page: what the signed-in role works on, with links."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web.core import current_page

router = APIRouter()


@router.get("/")
def home(request: Request) -> Response:
    page = current_page(request)
    return page.render("home.html")
