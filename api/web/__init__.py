"""The web application (``/`` beside the JSON API): server-rendered pages in Chinese first,
for caseworkers, supervisors, finance, auditors and admins. Each page calls the same
application layer as the API; scripts, styles and fonts are served from ``/static``."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from api import problems
from api.middleware import has_control_characters
from api.web import auth, home
from api.web.core import (
    LANG_COOKIE,
    SESSION_COOKIE,
    Page,
    SignInNeeded,
    WebBadInput,
    WebForbidden,
    current_page,
    environment,
    html_response,
    is_digits,
    language,
    login_redirect,
)
from api.web.i18n import LANGUAGES
from api.web.pages import PAGE_ROUTERS

http_problem = problems.http_exception_handler

STATIC = Path(__file__).parent / "static"
WROTE_COOKIE = "liudong_wrote"  # the position of the signed-in person's last write


# The page a record's id that names nothing answers with (the others: notfound.html).
MISSING_PAGES = (("/ui/residents/", "resident_missing.html"), ("/ui/sites/", "site_missing.html"),
                 ("/ui/cases/", "case_missing.html"))


def _position(text: str | None) -> int:
    return int(text) if text and is_digits(text) else 0


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith("/ui/")


def build_web(state: Any, api_routes: list[tuple[str, str]] | None = None) -> FastAPI:
    """The web pages as an app of their own, mounted at ``/`` after the API's routes;
    ``state`` is the API app's (services, marks, settings). ``api_routes``: the API's (path
    template, method), so a known API path asked with another method still answers 405, not
    a page's 404."""
    known = [(compile_path(path)[0], method) for path, method in api_routes or []]
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.state = state
    # A path neither the API nor a page knows is an API client's mistake as often as a
    # person's: problem documents, as the API answers, except under /ui/ (a page).
    problems.install(web)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")
    web.include_router(auth.router)
    web.include_router(home.router)
    for router in PAGE_ROUTERS:
        web.include_router(router)

    @web.exception_handler(SignInNeeded)
    async def sign_in(request: Request, error: SignInNeeded) -> Response:
        return login_redirect(error.next_url)

    @web.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, error: StarletteHTTPException) -> Response:
        if not request.url.path.startswith("/ui/"):
            allowed = sorted({method for regex, method in known if regex.match(request.url.path)})
            if error.status_code == 404 and allowed:
                error = StarletteHTTPException(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})
            return await http_problem(request, error)
        lang = language(request)
        html = environment(lang).get_template("notfound.html").render(lang=lang)
        return html_response(html, error.status_code, lang)

    api_invalid = web.exception_handlers[RequestValidationError]

    @web.exception_handler(RequestValidationError)
    async def malformed(request: Request, error: RequestValidationError) -> Response:
        """A page's id that is no id (``/ui/sites/overview``, ``/ui/residents/x``) is a page that
        does not exist: the not-found page in the reader's language, as for an id that names
        nothing, not the API's English problem document (found by a review). The pages take
        nothing typed but the ids in their paths."""
        if not request.url.path.startswith("/ui/"):
            answered = api_invalid(request, error)
            return await answered if inspect.isawaitable(answered) else answered
        try:
            page: Page = current_page(request)
        except SignInNeeded as needed:
            return login_redirect(needed.next_url)
        missing = next((t for prefix, t in MISSING_PAGES if request.url.path.startswith(prefix)), "notfound.html")
        return page.render(missing, status=404)

    @web.exception_handler(WebBadInput)
    async def bad_input(request: Request, error: WebBadInput) -> HTMLResponse:
        lang = language(request)
        html = environment(lang).get_template("bad_input.html").render(lang=lang, field=error.field)
        return html_response(html, 422, lang)

    @web.exception_handler(WebForbidden)
    async def forbidden(request: Request, error: WebForbidden) -> HTMLResponse:
        lang = language(request)
        html = environment(lang).get_template("forbidden.html").render(lang=lang)
        return html_response(html, 403, lang)

    @web.middleware("http")
    async def no_control_characters(request: Request, call_next: Any) -> Response:
        """A page's address with control characters (``/ui/residents?q=%00``) is refused as the
        API refuses them, but with a page in the reader's language, not a problem document."""
        if request.url.path.startswith("/ui/") and has_control_characters(request.scope):
            lang = language(request)
            html = environment(lang).get_template("bad_input.html").render(lang=lang, field="address")
            return html_response(html, 422, lang)
        response: Response = await call_next(request)
        return response

    @web.middleware("http")
    async def read_your_writes(request: Request, call_next: Any) -> Response:
        """A page after a form a person posted shows what they did, whichever page they open
        next (not only the one the form led to): the position of their last write is kept in
        a cookie, and a page waits (briefly) until every view has it."""
        wrote = _position(request.cookies.get(WROTE_COOKIE))
        signed_in = bool(request.cookies.get(SESSION_COOKIE))
        if request.method == "GET" and wrote and signed_in and _is_page(request.url.path):
            marks, timeout = request.app.state.marks, request.app.state.settings.read_wait_timeout
            views = [v for v in marks.marks if v not in marks.stopped]  # a stopped view would hold every page
            try:
                await asyncio.wait_for(asyncio.gather(*(marks.wait(v, wrote, timeout) for v in views)), timeout)
            except TimeoutError:
                wrote = -1  # not there in time (or a position nobody wrote): the page shows what is
        response: Response = await call_next(request)
        if wrote < 0:  # and the next page does not wait again
            response.delete_cookie(WROTE_COOKIE, path="/")
        if request.method == "POST" and response.status_code in (302, 303):
            written = _position(parse_qs(urlsplit(response.headers.get("location", "")).query).get("after", [""])[0])
            if written and written > wrote:
                response.set_cookie(WROTE_COOKIE, str(written), httponly=True, samesite="lax", path="/")
        return response

    @web.middleware("http")
    async def remember_language(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        asked = request.query_params.get("lang")
        if asked in LANGUAGES and request.cookies.get(LANG_COOKIE) != asked:
            response.set_cookie(LANG_COOKIE, asked, samesite="lax", path="/", max_age=365 * 86400)
        return response

    return web
