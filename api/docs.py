"""The OpenAPI page (``/docs``), served whole by the application: Swagger UI's script and style
are the ``swagger-ui-dist`` build kept in ``api/docs_assets`` (see its README), mounted at
``/docs/assets``. Nothing is fetched
from another origin, and the page carries a Content-Security-Policy that allows only its own
origin and, by its hash, the inline script that starts Swagger UI. The web application (session
cookie, CSRF tokens) lives on the same origin, so a script from a CDN here would run with its
reach. ReDoc is not served."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def swagger_ui_directory() -> Path:
    """Swagger UI's build, kept with the application (``api/docs_assets``, see its README)."""
    directory = Path(__file__).parent / "docs_assets"
    if not (directory / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"{directory} holds no swagger-ui-bundle.js")
    return directory


def content_security_policy(html: str) -> str:
    """Only this origin; the inline start-up script by its hash (computed from the page as
    served, so it follows FastAPI's template), never 'unsafe-inline' for scripts. Swagger UI
    draws its icons from data: URLs in its stylesheet and reads ``/openapi.json`` with fetch."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
                      for body in INLINE_SCRIPT.findall(html))
    return (f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def install(app: FastAPI) -> None:
    """``/docs`` and its assets; create the app with ``docs_url=None, redoc_url=None``, and
    call this before anything is mounted at ``/``."""
    assert app.openapi_url is not None
    app.mount(ASSETS_PATH, StaticFiles(directory=swagger_ui_directory()), name="docs-assets")
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url, title=f"{app.title} - API",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png", oauth2_redirect_url=None,
        # No badge from the public validator service (it would be fetched from the internet).
        swagger_ui_parameters={"validatorUrl": None})
    html = bytes(page.body).decode()
    headers = {"Content-Security-Policy": content_security_policy(html), "Cache-Control": "no-cache"}

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    # A plain route, as FastAPI adds its own /docs: no operation of the API (no key, no access rule).
    app.add_route(DOCS_PATH, docs, include_in_schema=False)
