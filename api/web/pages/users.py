"""Accounts (admins): the staff accounts of the web application, and a form to create one."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web.core import CONFIRM_FIELD, CommandOutcome, Page, current_page, redirect
from api.web.pages.cases import area_name
from application.access import acting_in
from application.commands.access import require_role_in_scope
from application.store import AreaNotAllowed
from application.users import WEB_ROLES
from domain.common import DomainError, Role

router = APIRouter()
ADMINS = frozenset({Role.ADMIN})
# The areas field's list: commas, full-width ones too, and the enumeration comma (found by a
# review: two codes with a full-width comma were one unknown area, though the Chinese hint asks
# for commas and a Chinese keyboard types that one).
AREA_SEPARATORS = re.compile(r"[,\uff0c\u3001;\uff1b]+")


@router.get("/ui/users")
def users(request: Request) -> Response:
    page = current_page(request)
    page.require(ADMINS)
    query = request.query_params
    return _render(page, {}, None, created=query.get("created"),
                   changed=(query.get("disabled"), query.get("enabled")), unlocked=query.get("unlocked"))


def _render(page: Page, values: dict[str, str], outcome: CommandOutcome | None, created: str | None = None,
            status: int = 200, changed: tuple[str | None, str | None] = (None, None),
            change_refused: CommandOutcome | None = None, refused_user: str | None = None,
            unlocked: str | None = None) -> Response:
    roles = [(r.value, page.label("role", r.value)) for r in WEB_ROLES]
    now = page.services.clock()
    # an area-bound admin sees the accounts of its areas; an account is locked until a moment to come
    users = [{**u, "area_names": [area_name(page, a) for a in u["areas"] or []],
              "locked": u["locked_until"] is not None and u["locked_until"] > now} for u in _visible(page)]
    # A banner names an account the admin sees, in the state it says (found by a review:
    # ?created=anything said "account created" of an account nobody made)
    shown = {u["user_id"]: u for u in users}
    disabled, enabled = changed
    return page.render("users.html", status=status, users=users, roles=roles, values=values,
                       outcome=outcome, created=created if created in shown else None,
                       disabled=disabled if _in_state(shown, disabled, disabled=True) else None,
                       enabled=enabled if _in_state(shown, enabled, disabled=False) else None,
                       unlocked=unlocked if unlocked in shown and not shown[unlocked]["locked"] else None,
                       separator=", " if page.lang == "en" else "\u3001", change_refused=change_refused,
                       refused_user=refused_user)


def _visible(page: Page) -> list[dict[str, Any]]:
    """The accounts this admin manages: every one, or an area-bound admin's those of its areas."""
    visible = page.principal.visible
    return [u for u in page.services.users.list()
            if visible is None or (u["areas"] and all(a in visible for a in u["areas"]))]


def _in_state(shown: dict[str, dict[str, Any]], user_id: str | None, *, disabled: bool) -> bool:
    account = shown.get(user_id) if user_id else None
    return account is not None and (account["disabled_at"] is not None) == disabled


def _places(page: Page, typed: str) -> list[str]:
    """The codes of the areas the field names, each by its code or its Chinese or English name,
    separated by commas (or, between codes and Chinese names, by spaces: an English name has
    spaces of its own, so a part is first read whole)."""
    codes = []
    for part in (p.strip() for p in AREA_SEPARATORS.split(typed)):
        if not part:
            continue
        try:
            codes.append(page.services.app.place(part, "areas"))
        except DomainError as whole:
            words = part.split()
            if len(words) < 2:
                raise
            try:
                codes.extend(page.services.app.place(word, "areas") for word in words)
            except DomainError:
                raise whole from None  # the part as typed is named unknown, not one word of it
    return list(dict.fromkeys(codes))


@router.post("/ui/users")
async def create_user(request: Request) -> Response:
    page = current_page(request)
    page.require(ADMINS)
    form = await page.form()
    try:
        areas = _places(page, form.get("areas", ""))
        # An admin bound to areas makes accounts for its areas only, under no name that acts
        # beyond them (a district-wide key's, another area's): as the API's keys.
        with acting_in(page.principal.visible):
            page.services.app.require_areas(areas, "areas")
            require_role_in_scope(form.get("role", ""))
            page.services.app.require_name_in_scope(form.get("username", ""))
        page.services.users.create(user_id=form.get("username", ""), role=form.get("role", ""), areas=areas,
                                   password=form.get("password", ""), created_by=page.principal.actor.user_id)
    except DomainError as error:
        # each refusal beside its field (found by a review: a name taken showed in the banner only)
        field_name = getattr(error, "field", None) or ("username" if error.rule == "user_exists" else None)
        outcome = page.refused(error.rule, error.message, field_name)
        return _render(page, {k: v for k, v in form.items() if k != "password"}, outcome, status=422)
    except AreaNotAllowed as error:
        outcome = page.refused("area_not_allowed", page._("That area is outside your areas"),
                               "username" if error.field == "user_id" else error.field)
        return _render(page, {k: v for k, v in form.items() if k != "password"}, outcome, status=403)
    return redirect("/ui/users?" + urlencode({"created": form.get("username", "")}))


@router.post("/ui/users/{user_id}/{change}")
async def change_user(request: Request, user_id: str, change: str) -> Response:
    """Disable an account (a leaver: it signs in no more and its sessions end at once) or enable
    it again, as ``liudong users disable|enable`` does (found by a review: nothing disabled one);
    or unlock one locked by five wrong passwords, as ``liudong users unlock`` does (found by a
    review: the page showed the lock and offered nothing)."""
    page = current_page(request)
    page.require(ADMINS)
    form = await page.form()
    if change not in ("disable", "enable", "unlock"):
        return page.render("notfound.html", status=404)
    account = next((u for u in _visible(page) if u["user_id"] == user_id), None)
    if account is None:  # none, or one beyond an area-bound admin's areas: not found either way
        return page.render("notfound.html", status=404)
    if user_id == page.principal.actor.user_id and change == "disable":
        refusal = page.refused("own_account", page._("You cannot disable your own account"), None)
        return _render(page, {}, None, status=409, change_refused=refusal)
    if change == "disable":
        # one click ended a colleague's sessions: the box is ticked first, as the other forms that
        # end something at once ask (checked here too, for a form sent without it)
        if form.get(CONFIRM_FIELD) != "yes":
            refusal = page.refused("disable_unconfirmed", "tick the box to confirm that the account's sessions end",
                                   CONFIRM_FIELD)
            return _render(page, {}, None, status=422, change_refused=refusal, refused_user=user_id)
        page.services.users.disable(user_id)
        return redirect("/ui/users?" + urlencode({"disabled": user_id}))
    if change == "enable":
        page.services.users.enable(user_id)
        return redirect("/ui/users?" + urlencode({"enabled": user_id}))
    page.services.users.unlock(user_id, page.services.clock())
    return redirect("/ui/users?" + urlencode({"unlocked": user_id}))
