"""Accounts (admins): the staff accounts of the web application, and a form to create one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.web.core import CommandOutcome, Page, current_page, redirect
from application.users import WEB_ROLES
from domain.common import DomainError, Role

router = APIRouter()
ADMINS = frozenset({Role.ADMIN})


@router.get("/ui/users")
def users(request: Request) -> Response:
    page = current_page(request)
    page.require(ADMINS)
    return _render(page, {}, None, created=request.query_params.get("created"))


def _render(page: Page, values: dict[str, str], outcome: CommandOutcome | None, created: str | None = None,
            status: int = 200) -> Response:
    roles = [(r.value, page.label("role", r.value)) for r in WEB_ROLES]
    return page.render("users.html", status=status, users=page.services.users.list(), roles=roles, values=values,
                       outcome=outcome, created=created)


@router.post("/ui/users")
async def create_user(request: Request) -> Response:
    page = current_page(request)
    page.require(ADMINS)
    form = await page.form()
    try:
        areas = [page.services.app.place(a.strip()) for a in form.get("areas", "").split(",") if a.strip()]
        page.services.users.create(user_id=form.get("username", ""), role=form.get("role", ""), areas=areas,
                                   password=form.get("password", ""), created_by=page.principal.actor.user_id)
    except DomainError as error:
        outcome = page.refused(error.rule, error.message, getattr(error, "field", None))
        return _render(page, {k: v for k, v in form.items() if k != "password"}, outcome, status=422)
    return redirect(f"/ui/users?created={form.get('username', '')}")
