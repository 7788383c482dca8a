"""A record's history for auditors (and every reader within their areas): each event with
the time the office recorded it beside the date it took effect in the world, read only.
The same reading as the API's ``/<kind>/{id}/history`` (application.history), and reading a
person's history is logged in the access log as it is there."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import read_route
from api.present import Presenter
from api.routes.history import CATALOGUE, shown_reason
from api.summaries import site_namer, summary
from api.web.core import current_page, uuid_or_none
from api.web.i18n import gettext_for
from api.web.pages.residents import READERS as PEOPLE_READERS  # who reads people's pages
from application.access import acting_in
from application.audit import record_read
from application.history import effective_on, history
from application.store import AreaNotAllowed, NotFound
from domain.active_members import ActiveMember
from domain.cobuilding import Pairing
from domain.committees import ManagementCommittee
from domain.disputes import DisputeCase
from domain.operators import Operator
from domain.residents import Resident
from domain.sites import HousingSite
from domain.subsidies import SubsidyApplication, SubsidyProgram

router = APIRouter()
MOST = 1000

# kind in the URL: (aggregate, whose personal data it holds, the record's own page)
KINDS: dict[str, tuple[type, bool, str]] = {
    "residents": (Resident, True, "/ui/residents/{id}"),
    "sites": (HousingSite, False, "/ui/sites/{id}"),
    "disputes": (DisputeCase, True, "/ui/cases/{id}"),
    "committees": (ManagementCommittee, False, "/ui/committees/{id}"),
    "subsidy-applications": (SubsidyApplication, False, "/ui/subsidies/{id}"),
    "subsidy-programs": (SubsidyProgram, False, "/ui/subsidy-programs"),
    "operators": (Operator, False, "/ui/operators/{id}"),
    "pairings": (Pairing, False, "/ui/pairings/{id}"),
    # a person's record, with their liaison notes (found by a review: read unlogged, and by finance)
    "active-members": (ActiveMember, True, "/ui/active-members/{id}"),
}


# Reasons that are a vocabulary's value (an outcome, a legal basis, why a member was lost, why
# the system itself ended a stay, a seat or a permit: "moved", "departed the district"), shown in
# words as the record's own page shows them (found by a review: a site's history said "moved"
# and a committee's "departed the district" in the Chinese pages).
REASON_VOCABULARIES = ("outcome", "legal_basis", "loss_reason", "leaving_reason")
VOCABULARY_VALUE = re.compile(r"[a-z][a-z_ ]{1,40}")


def reason_in_words(lang: str, reason: str | None) -> str | None:
    if reason is None or not VOCABULARY_VALUE.fullmatch(reason):
        return reason
    catalogue = gettext_for(lang)
    for vocabulary in REASON_VOCABULARIES:
        key = f"{vocabulary}.{reason.replace(' ', '_')}"
        words = catalogue.gettext(key)
        if words != key:
            return str(words)
    return reason.replace("_", " ")


@router.get("/ui/history/{kind}/{record_id}")
def record_history(kind: str, record_id: str, request: Request) -> Response:
    page = current_page(request)
    known = KINDS.get(kind)
    aggregate_id = uuid_or_none(record_id)
    if known is None or aggregate_id is None:
        return page.render("history.html", status=404, entries=[], kind=kind, record=None, back=None)
    aggregate_type, personal, back = known
    if personal:  # a person's history is read by those who read the person's page (found by a review:
        page.require(PEOPLE_READERS)  # finance, refused the residents and cases pages, read their histories)
    record: object
    try:
        with acting_in(page.principal.visible):
            record = page.services.app.load(aggregate_type, aggregate_id)
    except (NotFound, AreaNotAllowed):
        return page.render("history.html", status=404, entries=[], kind=kind, record=None, back=None)
    api_lang = "en" if page.lang == "en" else "zh"
    presenter = Presenter(page.services.app.vault, page.principal, api_lang)

    def area_name(code: str) -> str:
        area = page.services.app.areas.get(code)
        return (area.name_en if api_lang == "en" else area.name_zh) if area else code

    site_name = site_namer(page.services.app)
    entries = []
    for entry in history(page.services.app, aggregate_id, CATALOGUE, limit=MOST):
        event = entry.event
        entries.append({
            "version": entry.version, "position": entry.position, "event": entry.name,
            "actor_id": getattr(event, "actor_id", None), "actor_role": getattr(event, "actor_role", None),
            "recorded_at": entry.recorded_at, "effective_on": effective_on(event, CATALOGUE),
            "reason": reason_in_words(page.lang, shown_reason(entry.name, event, presenter)),
            "summary": summary(entry.name, event, api_lang, area_name, site_name),
        })
    if personal:
        with page.services.pool.connection() as conn:
            record_read(conn, page.principal, record, read_route(request))
    return page.render("history.html", entries=entries, kind=kind, record=record,
                       back=back.format(id=aggregate_id), record_id=str(aggregate_id))
