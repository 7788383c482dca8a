"""Signing in and out: ``GET /login`` (a form with ``username``, ``password`` and a hidden
CSRF field), ``POST /login``, ``POST /logout``."""

from __future__ import annotations

import hmac
from urllib.parse import urlparse

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.schemas import CONTROL_CHARACTERS
from api.web.core import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    current_page,
    environment,
    format_moment,
    html_response,
    language,
    new_login_csrf,
    redirect,
    set_session_cookie,
)
from api.web.i18n import gettext_for
from application.services import Services
from application.users import SignInRefused

router = APIRouter()


def _safe_next(value: str | None) -> str:
    """Only a path of this site (no scheme, no host) is followed after signing in."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    parsed = urlparse(value)
    return "/" if parsed.scheme or parsed.netloc else value


def _login_page(request: Request, *, error: str | None = None, username: str = "", status: int = 200) -> Response:
    lang = language(request)
    csrf = new_login_csrf()
    other = "en" if lang == "zh-CN" else "zh-CN"
    html = environment(lang).get_template("login.html").render(
        lang=lang, other_lang=other, csrf=csrf, error=error, username=username,
        next=_safe_next(request.query_params.get("next")), path="/login")
    response = html_response(html, status, lang)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/login",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login")
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    lang = language(request)
    _ = gettext_for(lang).gettext
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(str(form.get("csrf", "")), expected):
        return _login_page(request, error=_("The form expired; please sign in again."), username=username,
                           status=403)
    services: Services = request.app.state.services
    if CONTROL_CHARACTERS.search(username) or CONTROL_CHARACTERS.search(password):  # no account has them
        return _login_page(request, error=_("Wrong user name or password."), username="", status=401)
    try:
        token, _session = services.users.sign_in(username, password, services.clock())
    except SignInRefused as refused:
        if refused.reason == "locked":
            until = format_moment(refused.locked_until)
            message = _("Too many wrong passwords: this account is locked until %(until)s.") % {"until": until}
            return _login_page(request, error=message, username=username, status=423)
        return _login_page(request, error=_("Wrong user name or password."), username=username, status=401)
    response = redirect(_safe_next(str(form.get("next", "")) or None))
    set_session_cookie(response, token, secure=request.url.scheme == "https")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    page = current_page(request)
    await page.form()  # the CSRF token
    page.services.users.sign_out(page.token)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
