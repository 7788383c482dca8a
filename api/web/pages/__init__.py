"""The page groups of the web application; each module has a ``router``."""

from __future__ import annotations

from fastapi import APIRouter

from api.web.pages import audit as audit_pages
from api.web.pages import cases as cases_pages
from api.web.pages import cobuilding as cobuilding_pages
from api.web.pages import committees as committees_pages
from api.web.pages import community as community_pages
from api.web.pages import history as money_history
from api.web.pages import operators as operators_pages
from api.web.pages import residents as residents_pages
from api.web.pages import sites as sites_pages
from api.web.pages import statistics as money_statistics
from api.web.pages import subsidies as money_subsidies
from api.web.pages import users

PAGE_ROUTERS: list[APIRouter] = [users.router]
PAGE_ROUTERS += [money_subsidies.router, money_statistics.router, money_history.router]
PAGE_ROUTERS += [residents_pages.router]
PAGE_ROUTERS += [sites_pages.router]
PAGE_ROUTERS += [cases_pages.router, committees_pages.router]
PAGE_ROUTERS += [operators_pages.router, cobuilding_pages.router]
PAGE_ROUTERS += [community_pages.router]
PAGE_ROUTERS += [audit_pages.router]
