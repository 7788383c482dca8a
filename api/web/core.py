"""The web pages' plumbing: who is signed in, CSRF, rendering a template in the user's
language, and running a use case from a form the way the API does (same application,
same actor, same events), answering a refusal with the rule in words on the form."""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from uuid import UUID

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from api.middleware import REFUSED_SESSION
from api.schemas import CONTROL_CHARACTERS
from api.web.i18n import DEFAULT, LANGUAGES, gettext_for, label, sort_key
from application.access import Principal, acting_in
from application.services import Services
from application.store import (
    IDEMPOTENCY_TABLE,
    PENDING_CLAIM,
    AreaNotAllowed,
    CommandResult,
    IdempotencyClaim,
    IdempotencyKeyTaken,
    NotFound,
    PreconditionFailed,
)
from application.users import Session
from domain.common import OFFICE_TZ, DomainError, Role, RuleViolated, Stamp, iso_day

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "liudong_session"
LOGIN_CSRF_COOKIE = "liudong_login_csrf"
LANG_COOKIE = "liudong_lang"
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self';"
       " frame-ancestors 'none'; base-uri 'none'")
CONFIRM_FIELD = "confirm"  # an irreversible form's box "I understand this cannot be undone"
STAFF_ROLES = frozenset({Role.CASEWORKER, Role.SUPERVISOR, Role.ADMIN})
SUPERVISOR_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


class SignInNeeded(Exception):
    """No session: the page answers with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class WebForbidden(Exception):
    """The signed-in user's role may not do this (or the form's CSRF token is wrong)."""


class WebBadInput(Exception):
    """A posted form holds what no field takes (control characters, such as NUL): the
    page answers 422 naming the field, and nothing is stored (as the API refuses them)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


# Fields typed in a text area (several lines); every other field is one line, as a browser
# sends it and as the API's names, numbers and addresses are.
MULTILINE_FIELDS = frozenset({"text", "description", "instalments", "justification", "note", "reason", "outcome"})
LINE_BREAKS = re.compile(r"[\t\n\r]")
FORM_TOKEN = re.compile(r"[0-9a-f]{32}")  # a form's one-time token (macros.html csrf_field)


def _refuse_control_characters(items: Any) -> None:
    for key, value in items:
        if CONTROL_CHARACTERS.search(key):
            raise WebBadInput("form")
        if not isinstance(value, str):
            continue
        multiline = key in MULTILINE_FIELDS or key.startswith("decision_")
        if CONTROL_CHARACTERS.search(value) or (not multiline and LINE_BREAKS.search(value.strip())):
            raise WebBadInput(key)


@cache
def _text_limits(model: type[BaseModel]) -> dict[str, int]:
    """The most characters each text field of an API body takes (a list of texts: each one),
    read from the body's JSON schema: its ``maxLength``, also inside ``X | None``."""

    def most(node: Mapping[str, Any]) -> int | None:
        if "maxLength" in node:
            return int(node["maxLength"])
        if node.get("type") == "array":
            return most(node.get("items", {}))
        return next((m for sub in node.get("anyOf", []) if (m := most(sub)) is not None), None)

    properties = model.model_json_schema()["properties"]
    return {name: m for name, node in properties.items() if (m := most(node)) is not None}


def api_limits(model: type[BaseModel], *fields: str, **renamed: str) -> dict[str, int]:
    """``{form field: the most characters the API takes there}`` for a form whose ``fields`` are
    named as the API body's, and whose ``renamed`` fields (form name = API name) are not: the
    pages refuse what the API refuses, from the API's own models, so the two cannot drift
    (found by a review: the pages stored a 20,000-character description the API refuses)."""
    limits = _text_limits(model)
    return {**{name: limits[name] for name in fields}, **{form: limits[api] for form, api in renamed.items()}}


def language(request: Request) -> str:
    """``?lang=`` first, then the language cookie, else zh-CN."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGUAGES else DEFAULT


def _environment(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(gettext_for(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["label"] = lambda kind, value: label(lang, kind, value)
    env.globals["form_token"] = lambda: secrets.token_hex(16)
    env.filters["day"] = format_day
    env.filters["moment"] = format_moment
    env.globals["sort_key"] = sort_key
    return env


@cache
def environment(lang: str) -> Environment:
    """The templates in ``lang`` (built once per language)."""
    return _environment(lang if lang in LANGUAGES else DEFAULT)


def format_day(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, datetime):
        return value.astimezone(OFFICE_TZ).date().isoformat()
    return value.isoformat() if isinstance(value, date) else str(value)


def format_moment(value: Any) -> str:
    """A moment in the office's time zone, to the minute."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(OFFICE_TZ).strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else str(value)


@dataclass
class Page:
    """One request of a signed-in user."""

    request: Request
    services: Services
    session: Session
    principal: Principal
    lang: str
    token: str
    # Query parameters the page refused (a cursor it did not issue): links it makes leave them out.
    dropped: set[str] = dataclasses.field(default_factory=set)
    # The posted form's one-time token, and how many commands this request ran with it (each its own key).
    form_token: str | None = None
    runs: int = 0

    @property
    def role(self) -> Role:
        return self.principal.actor.role

    def may(self, roles: frozenset[Role]) -> bool:
        return self.role in roles

    def require(self, roles: frozenset[Role]) -> None:
        if self.role not in roles:
            raise WebForbidden()

    def _(self, text: str) -> str:
        return gettext_for(self.lang).gettext(text)

    def label(self, kind: str, value: object) -> str:
        return label(self.lang, kind, value)

    def stamp(self) -> Stamp:
        return Stamp(actor=self.principal.actor, recorded_at=self.services.clock())

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        env = environment(self.lang)
        other = "en" if self.lang == "zh-CN" else "zh-CN"
        html = env.get_template(template).render(
            page=self, user=self.session.user, role=self.role.value, csrf=self.session.csrf, lang=self.lang,
            other_lang=other, switch_url=self.switch_url(other), path=self.request.url.path, **context)
        return html_response(html, status, self.lang)

    def switch_url(self, lang: str) -> str:
        """This page in the other language, keeping its place (filters, cursors); after a
        form was posted, the page the form was on (the post's own URL answers no GET)."""
        request = self.request
        path, query = request.url.path, request.url.query
        if request.method != "GET":
            referer = urlsplit(request.headers.get("referer", ""))
            same_site = referer.netloc in ("", request.url.netloc) and referer.path.startswith("/ui/")
            path, query = (referer.path, referer.query) if same_site else ("/", "")
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                if k not in ("lang", "after") and k not in self.dropped]
        return f"{path}?{urlencode([*kept, ('lang', lang)])}"

    def check_csrf(self, form: Mapping[str, Any]) -> None:
        if not hmac.compare_digest(str(form.get("csrf", "")), self.session.csrf):
            raise WebForbidden()

    async def form(self) -> dict[str, str]:
        """The posted form (its CSRF token checked), values stripped of surrounding space."""
        data = await self.request.form()
        values = {k: str(v).strip() for k, v in data.items() if isinstance(v, str)}
        self.check_csrf(values)
        _refuse_control_characters(data.multi_items())
        self.form_token = values.get("form_token") if FORM_TOKEN.fullmatch(values.get("form_token", "")) else None
        return values

    async def form_lists(self) -> dict[str, list[str]]:
        data = await self.request.form()
        _refuse_control_characters(data.multi_items())
        lists: dict[str, list[str]] = {}
        for key, value in data.multi_items():
            if isinstance(value, str):
                lists.setdefault(key, []).append(value.strip())
        return lists

    def run(self, action: Callable[[Stamp], CommandResult]) -> CommandOutcome:
        """Run a use case as this user, within their areas; a refusal becomes the rule in
        words for the form (and nothing is stored). A form posted twice with its one-time
        token (a double click, a resubmission) stores its command once; the second post is
        answered as the first (found by a review: a double click logged two cases)."""
        claim = self._claim()
        if claim is not None and (first := self._first_answer(claim)) is not None:
            return CommandOutcome(result=first)
        try:
            token = PENDING_CLAIM.set(claim)
            try:
                with acting_in(self.principal.visible):
                    return CommandOutcome(result=action(self.stamp()))
            finally:
                PENDING_CLAIM.reset(token)
        except IdempotencyKeyTaken:
            assert claim is not None
            first = self._first_answer(claim)
            if first is None:  # pragma: no cover - the row committed before the error
                raise
            return CommandOutcome(result=first)
        except DomainError as error:
            if (first := self._answered_meanwhile(claim)) is not None:
                return CommandOutcome(result=first)
            field_name = getattr(error, "field", None) or error.details.get("field")
            refusal = self.refused(error.rule, error.message, field_name)
            refusal.conflict = isinstance(error, RuleViolated)  # 409 as the API answers, though it names a field
            refusal.extra = dict(error.details)  # e.g. the conditions a permit application lacks
            return refusal
        except NotFound as error:  # the kind of record in words (found by a review: "未找到: housing site")
            return CommandOutcome(error=self._("Not found") + ": " + self.label("record_kind", error.kind),
                                  rule="not_found", field=error.field)
        except AreaNotAllowed as error:
            return CommandOutcome(error=self._("That area is outside your areas"), rule="area_not_allowed",
                                  field=error.field)
        except PreconditionFailed:
            if (first := self._answered_meanwhile(claim)) is not None:
                return CommandOutcome(result=first)
            stale = "Someone changed this record since you opened the page; reload it and try again."
            return CommandOutcome(error=self._(stale), rule="version_mismatch")

    def _claim(self) -> IdempotencyClaim | None:
        token = self.form_token
        if token is None:
            return None
        self.runs += 1

        def render(result: CommandResult) -> tuple[int, dict[str, Any], str | None]:
            return 303, {"id": str(result.id), "version": result.version, "position": result.position,
                         "details": json.loads(json.dumps(result.details, default=str))}, None

        return IdempotencyClaim(actor_id=self.principal.actor.user_id, key=f"web-form:{token}:{self.runs}",
                                fingerprint=self.request.url.path, render=render)

    def _answered_meanwhile(self, claim: IdempotencyClaim | None) -> CommandResult | None:
        """A double post refused on state the first post changed while this one decided (it
        moved the resident, say): the first post's answer is this one's too, as the API does."""
        return self._first_answer(claim) if claim is not None else None

    def _first_answer(self, claim: IdempotencyClaim) -> CommandResult | None:
        with self.services.pool.connection() as conn:
            row = conn.execute(f"SELECT body FROM {IDEMPOTENCY_TABLE} WHERE actor_id = %s AND key = %s",
                               (claim.actor_id, claim.key)).fetchone()
        if row is None:
            return None
        body = row["body"]
        return CommandResult(id=UUID(body["id"]), version=int(body["version"]), position=int(body["position"]),
                             details=dict(body.get("details") or {}))

    def refused(self, rule: str, message: str, field_name: str | None = None) -> CommandOutcome:
        """A refusal for the form: the rule in words (``message`` where the catalogue has none)."""
        return CommandOutcome(error=self.error_text(rule, message), rule=rule, field=field_name)

    def unconfirmed(self, form: Mapping[str, str]) -> CommandOutcome | None:
        """An irreversible form (an erasure, a closing, a revocation, a removal) asks for its box
        "I understand this cannot be undone" to be ticked: the box is ``required`` in the page,
        and checked here too, so a form sent without it (no browser check, an old tab) is refused
        422 with the rule in words and nothing is stored (found by a review: one click did it)."""
        if form.get(CONFIRM_FIELD) != "yes":
            return self.refused("confirmation_required", "tick the box to confirm that this cannot be undone",
                                CONFIRM_FIELD)
        return None

    def too_long(self, form: Mapping[str, str], limits: Mapping[str, int]) -> CommandOutcome | None:
        """The first field longer than its limit (``api_limits``), refused on that field with the
        limit in words, before anything is stored."""
        for name, most in limits.items():
            if len(form.get(name, "")) > most:
                return self.longer_than(name, most)
        return None

    def longer_than(self, field_name: str, most: int) -> CommandOutcome:
        """``field_name`` holds more than ``most`` characters: the refusal names the limit (found by
        a review: "内容过长。" alone left the user guessing how much to cut)."""
        return CommandOutcome(error=self._("At most %(n)s characters.") % {"n": most}, rule="too_long",
                              field=field_name)

    def error_text(self, rule: str, message: str) -> str:
        """The rule in words: the catalogue's sentence for ``rule.<name>``, else the domain's own."""
        key = f"rule.{rule}"
        text = gettext_for(self.lang).gettext(key)
        return message if text == key else text

    async def wait_for(self, view: str, position: int) -> None:
        """Read-your-writes: wait (briefly) until ``view`` has the position."""
        if position > 0:
            settings = self.request.app.state.settings
            await self.request.app.state.marks.wait(view, position, settings.read_wait_timeout)

    def sorted_by_name(self, rows: list[dict[str, Any]], key: str = "name", *,
                       person: bool = False) -> list[dict[str, Any]]:
        """``rows`` by their names as the office sorts them (``person``: people's names, whose
        first character is read as a surname)."""
        return sorted(rows, key=lambda r: sort_key(str(r.get(key) or ""), person=person))


@dataclass
class CommandOutcome:
    result: CommandResult | None = None
    error: str | None = None
    rule: str | None = None
    field: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    conflict: bool = False  # a rule of the record's state (409), even when it names the field at fault

    @property
    def ok(self) -> bool:
        return self.result is not None


def refusal_status(outcome: CommandOutcome) -> int:
    """422 for a value refused on its own (it names a field), 409 for a rule of the record's state."""
    return 422 if outcome.field and not outcome.conflict else 409


def html_response(html: str, status: int, lang: str) -> HTMLResponse:
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Language"] = lang
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def current_page(request: Request) -> Page:
    """The signed-in user's page context, or SignInNeeded."""
    services: Services = request.app.state.services
    token = request.cookies.get(SESSION_COOKIE)
    session = services.users.session(token, services.clock()) if token else None
    if session is None or token is None:
        if token:  # made up or expired: counted against the address as a refused key is (api/middleware)
            setattr(request.state, REFUSED_SESSION, True)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInNeeded(target)
    user = session.user
    principal = services.authenticator.principal_for(user.user_id, user.role.value, list(user.areas))
    return Page(request=request, services=services, session=session, principal=principal,
                lang=language(request), token=token)


def login_redirect(next_url: str) -> RedirectResponse:
    return redirect("/login?next=" + quote(next_url, safe=""))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def is_digits(text: str | None, most: int = 18) -> bool:
    """ASCII digits only, at most ``most`` of them (found by a review: "\u00b2" is a digit to
    ``str.isdigit()`` and ``int()`` refuses it, and the pages answered 500)."""
    return text is not None and text.isascii() and text.isdigit() and len(text) <= most


def uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def day_or_none(value: str | None) -> date | None:
    """A date typed as YYYY-MM-DD, as the API takes it (found by a review: the pages also read
    20260501 and 2026-W18-5, which the API refuses)."""
    return iso_day(value)


def set_session_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure, path="/")
