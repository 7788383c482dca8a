"""Housing sites: the list with occupancy bars, operator and stage (filters by area, stage and
band), and a site's page with its facts, facilities, residents, committees, the latest
assessment and what the site lacks, and its open cases. Supervisors change the beds."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import reading_as
from api.present import Presenter
from api.web.core import SUPERVISOR_ROLES, CommandOutcome, Page, current_page, redirect
from api.web.pages.residents import _area_name, _areas, _fail, _sites, _status
from application.store import NotFound
from domain.sites import ASSESSMENT_VALID_DAYS, CommunityStage, HousingSite
from projections.disputes import CaseFilter, list_cases
from projections.residents import ResidentFilter, list_residents

router = APIRouter()
STAGES = [s.value for s in CommunityStage]
BANDS = ["over_1000", "500_to_1000", "under_500"]


def _lacks(site: HousingSite, page: Page) -> list[str]:
    """What the site lacks for its next step (as GET /sites/pipeline names it)."""
    stage = site.stage
    if stage == CommunityStage.UNASSESSED:
        return ["assessment"]
    if stage == CommunityStage.ASSESSED:
        return list(site.preparation_missing(page.services.today()))
    if stage in (CommunityStage.PREPARATION, CommunityStage.TERM_ENDED):
        return ["election"]
    return []


def lack_label(page: Page, lack: str) -> str:
    """``facility:clinic`` reads as the missing facility; the others are named in the catalogue."""
    if lack.startswith("facility:"):
        return page._("Facility missing: %(facility)s") % {"facility": page.label("facility", lack.split(":", 1)[1])}
    return page.label("lacks", lack)


@router.get("/ui/sites")
def sites(request: Request) -> Response:
    page = current_page(request)
    query = request.query_params
    values = {k: query.get(k, "").strip() for k in ("area", "stage", "band")}
    areas = _areas(page)
    rows = _sites(page, area=values["area"] if values["area"] in dict(areas) else None,
                  stage=values["stage"] if values["stage"] in STAGES else None,
                  band=values["band"] if values["band"] in BANDS else None)
    for row in rows:
        row["area_name"] = _area_name(page, row["area"])
    return page.render("sites.html", sites=rows, values=values, areas=areas,
                       stages=[(s, page.label("stage", s)) for s in STAGES],
                       bands=[(b, page.label("band", b)) for b in BANDS])


def _site_page(page: Page, site_id: UUID, values: dict[str, str] | None = None,
               outcome: CommandOutcome | None = None, status: int = 200) -> Response:
    try:
        with reading_as(page.principal):
            site = page.services.app.load(HousingSite, site_id)
    except NotFound:
        return page.render("site_missing.html", status=404)
    presenter = Presenter(page.services.app.vault, page.principal, page.lang)
    areas = page.principal.area_filter()
    with page.services.pool.connection() as conn:
        residents = [presenter.resident_row(r) for r in
                     list_residents(conn, ResidentFilter(site_id=str(site_id), areas=areas), 1000, None).items]
        cases = list_cases(conn, CaseFilter(site_id=str(site_id), areas=areas), page.services.today(), 200, None,
                           view="open_cases").items
    committee = site.community_committee
    elected = site.community
    return page.render(
        "site.html", status=status, site=site, area_name=_area_name(page, site.area),
        occupants=len(site.occupants), residents=page.sorted_by_name(residents),
        community_committee=({**committee, "members": presenter.members(committee["members"])}
                             if committee else None),
        elected=({**elected, "members": presenter.members(list(elected["members"].values()))} if elected else None),
        assessment=site.assessment, lacks=[lack_label(page, lack) for lack in _lacks(site, page)],
        valid_days=ASSESSMENT_VALID_DAYS, cases=cases, may_change=page.may(SUPERVISOR_ROLES) and not site.closed_on,
        values=values or {"capacity": str(site.capacity)}, outcome=outcome)


@router.get("/ui/sites/{site_id}")
async def site(site_id: UUID, request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if after.isdigit():
        await page.wait_for("site_occupancy", int(after))
    return _site_page(page, site_id)


@router.post("/ui/sites/{site_id}/capacity")
async def change_capacity(site_id: UUID, request: Request) -> Response:
    page = current_page(request)
    page.require(SUPERVISOR_ROLES)
    form = await page.form()
    values = {k: v for k, v in form.items() if k != "csrf"}
    raw = form.get("capacity", "")
    if not raw.isdigit() or not 0 < int(raw) <= 100_000:
        outcome = _fail(page, "capacity_not_positive", "capacity", "a positive number of beds")
    else:
        outcome = page.run(lambda stamp: page.services.app.change_site_capacity(site_id, int(raw), stamp))
    if not outcome.ok:
        return _site_page(page, site_id, values, outcome, status=_status(outcome))
    assert outcome.result is not None
    return redirect(f"/ui/sites/{site_id}?after={outcome.result.position}")

