"""The page groups of the web application; each module has a ``router``."""

from __future__ import annotations

from fastapi import APIRouter

from api.web.pages import residents as residents_pages
from api.web.pages import users

PAGE_ROUTERS: list[APIRouter] = [users.router]
PAGE_ROUTERS += [residents_pages.router]
