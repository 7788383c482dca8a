"""Statistics for other offices and auditors: population movement and disputes per area and
month, the population at any moment (as true on a date, as known at a time), and how late
changes of residence are recorded."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from api.access import READERS, AreaRule, access
from api.deps import Language, Limit, PrincipalDep, ServicesDep, after, after_all, page_response, respond
from api.problems import Problem
from api.schemas import MONTH_PATTERN, AreaName, IsoDate, IsoMoment, Name, PageOut, Public, StatisticsRow, SupportRow
from application.areas import AreaDirectory
from projections.active_members import monthly as active_member_months
from projections.operators import support_by_type
from projections.pages import page_of
from projections.reporting_delays import DelayFilter, reporting_delays
from projections.residence_periods import PopulationQuery, office_day, population
from projections.site_occupancy import BAND
from projections.statistics import monthly_statistics

router = APIRouter(tags=["statistics"])
Month = Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM")]


@router.get("/statistics", response_model=PageOut[StatisticsRow])
@access(READERS, AreaRule.LIST)
def statistics(
    services: ServicesDep,
    principal: PrincipalDep,
    headers: Annotated[dict[str, str], after("statistics")],
    limit: Limit,
    area: Annotated[AreaName | None, Query()] = None,
    from_month: Month = None,
    to_month: Month = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """Per area and month (of the effective date), by area then month, a page at a time: arrivals, departures,
    moves, population at month end, turnover rate (departures / population at the month's start); disputes opened
    and resolved by category with the median days to resolve."""
    if from_month and to_month and from_month > to_month:  # found by a review: answered with nothing
        raise Problem(422, "Invalid request", f"from_month {from_month} is after to_month {to_month}",
                      rule="month_range", errors=[{"field": "from_month", "rule": "month_range",
                                                   "message": "from_month must not be after to_month"}])
    code = services.app.areas.resolve(area) if area else None
    with services.pool.connection() as conn:
        items = monthly_statistics(conn, area=code, from_month=from_month, to_month=to_month,
                                   areas=principal.area_filter())
    page = page_of(items, lambda r: (r["area"], r["month"]), limit, cursor)
    return page_response(page, headers, item_model=StatisticsRow)


# -- the seed's questions ----------------------------------------------------------------------
class HousingMix(Public):
    area: str
    area_name: str | None = None
    month: str
    population: int
    concentrated: int = Field(description="in housing sites (集中居住)")
    scattered: int = Field(description="in rented rooms (分散居住)")
    employer_dormitory: int
    other: int
    concentrated_share: float | None


class SitesByBandAndStage(Public):
    band: str
    stage: str
    sites: int
    headcount: int = Field(description="the latest assessed headcounts, else registered occupants, summed")


class ActiveMemberLoss(Public):
    area: str | None = Field(description="null: the whole district (within the caller's areas)")
    lost: int = Field(description="active members lost in the twelve months to the end of last month")
    active_at_start: int = Field(description="active members at the start of those twelve months")
    identified: int = Field(default=0, description="members identified within those twelve months")
    loss_rate: float | None = Field(description="lost over the members there were in those months (active at the "
                                    "start and identified since): at most 1")


class SeedAnswers(Public):
    on: date
    housing: list[HousingMix] = Field(description="concentrated versus scattered residents per area, this month")
    sites: list[SitesByBandAndStage] = Field(description="open sites by the census band and the community stage")
    support_by_operator_type: list[SupportRow] = Field(
        description="subsidies paid and committed per bed and per resident, by operator type (equal treatment)")
    active_member_loss: list[ActiveMemberLoss] = Field(description="the district first, then each area")


@router.get("/statistics/seed", response_model=SeedAnswers)
@access(READERS, AreaRule.LIST)
def seed_answers(
    services: ServicesDep,
    principal: PrincipalDep,
    lang: Language,
    headers: Annotated[dict[str, str], after_all("statistics", "site_occupancy", "subsidy_ledger",
                                                 "active_members")],
    area: Annotated[AreaName | None, Query()] = None,
) -> JSONResponse:
    """The seed's questions in numbers, in one answer: concentrated (sites) versus scattered (rented) residents
    per area this month; open sites by size band and stage; support per bed and per resident by operator type;
    the active-member loss rate over the last twelve months."""
    code = services.app.areas.resolve(area) if area else None
    areas = principal.area_filter()
    if code is not None:
        areas = [code] if areas is None or code in areas else []
    today = services.today()
    month = f"{today.year:04d}-{today.month:02d}"
    this_month = date(today.year, today.month, 1)
    year_ago = date(today.year - 1, today.month, 1)  # twelve full months: year_ago .. last month
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    with services.pool.connection() as conn:
        rows = monthly_statistics(conn, area=code, from_month=month, to_month=month, areas=principal.area_filter())
        band_rows = conn.execute(
            f"SELECT {BAND} AS band, stage, count(*) AS sites, sum(coalesce(headcount, occupants)) AS headcount"
            " FROM site_occupancy WHERE NOT closed" + (" AND area = ANY(%s)" if areas is not None else "")
            + " GROUP BY 1, 2 ORDER BY 1, 2", [areas] if areas is not None else []).fetchall()
        support = support_by_type(conn, None, areas)["by_operator_type"]
        months = active_member_months(conn, first=year_ago, last=last_month, area=None, areas=areas)
    housing = []
    for row in rows:
        mix = row.get("housing_at_month_end") or {}
        housing.append(HousingMix(
            area=row["area"], area_name=_area_name(services.app.areas, row["area"], lang), month=row["month"],
            population=row["population_at_month_end"], concentrated=mix.get("site", 0),
            scattered=mix.get("rented", 0), employer_dormitory=mix.get("employer_dormitory", 0),
            other=mix.get("other", 0), concentrated_share=row.get("concentrated_share")))
    loss: dict[str | None, dict[str, int]] = {}
    first_month = f"{year_ago.year:04d}-{year_ago.month:02d}"
    for row in months:
        for key in (None, row["area"]):
            entry = loss.setdefault(key, {"lost": 0, "active_at_start": 0, "identified": 0})
            entry["lost"] += int(row["lost"])
            entry["identified"] += int(row["identified"])
            if row["month"] == first_month:
                entry["active_at_start"] += int(row["active_at_start"])
    # Over everyone who could be lost in the window, those identified in it too (found by a review:
    # over those active at its start alone, the rate went above 1, or was null).
    losses = [ActiveMemberLoss(area=key, lost=v["lost"], active_at_start=v["active_at_start"],
                               identified=v["identified"],
                               loss_rate=(round(v["lost"] / (v["active_at_start"] + v["identified"]), 4)
                                          if v["active_at_start"] + v["identified"] else None))
              for key, v in sorted(loss.items(), key=lambda kv: (kv[0] is not None, kv[0] or ""))]
    body = SeedAnswers(
        on=today, housing=housing,
        sites=[SitesByBandAndStage(band=r["band"], stage=r["stage"], sites=int(r["sites"]),
                                   headcount=int(r["headcount"] or 0)) for r in band_rows],
        support_by_operator_type=[SupportRow.model_validate(r) for r in support], active_member_loss=losses)
    return respond(body, headers)


# -- the population at a moment ---------------------------------------------------------------
class PopulationGroup(Public):
    area: str
    area_name: str | None = None
    site_id: UUID | None = Field(default=None, description="by=site: the housing site; null: private housing")
    residents: int


class PopulationPublic(Public):
    known_at: datetime | None = Field(description="as known at this moment; null: everything recorded so far")
    effective_at: date = Field(description="the day counted (default: the office's day of known_at, or today)")
    by: Literal["area", "site"]
    total: int
    items: list[PopulationGroup]


def _area_name(areas: AreaDirectory, code: str, lang: str) -> str | None:
    record = areas.get(code)
    return (record.name_en if lang == "en" else record.name_zh) if record else None


@router.get("/statistics/population", response_model=PopulationPublic)
@access(READERS, AreaRule.LIST)
def population_at(
    services: ServicesDep,
    principal: PrincipalDep,
    lang: Language,
    headers: Annotated[dict[str, str], after("residence_periods")],
    known_at: Annotated[IsoMoment | None, Query(description=(
        "count as the office knew it at this moment (with a UTC offset, e.g. 2026-06-01T12:00:00+08:00)"))] = None,
    effective_at: Annotated[IsoDate | None, Query(description=(
        "count who lived where on this date (late-reported changes by the date they took effect)"))] = None,
    area: Annotated[AreaName | None, Query()] = None,
    by: Annotated[Literal["area", "site"], Query(description="area, or area and housing site")] = "area",
) -> JSONResponse:
    """Residents per area (or per housing site) on a date, as known now or as known at a moment; both together
    answer "what did we believe at known_at about effective_at". From the residence-periods view."""
    if known_at is not None:
        if known_at.tzinfo is None:
            raise Problem(422, "Invalid request", "known_at needs a UTC offset, e.g. 2026-06-01T12:00:00+08:00",
                          rule="timezone_missing", errors=[{"field": "known_at", "rule": "timezone_missing",
                                                            "message": "add a UTC offset"}])
        try:
            office_day(known_at)
        except OverflowError:
            raise Problem(422, "Invalid request", "known_at is out of range", rule="out_of_range",
                          errors=[{"field": "known_at", "rule": "out_of_range",
                                   "message": "a moment between the years 1 and 9999"}]) from None
    code = services.app.areas.resolve(area) if area else None
    today = services.today()
    query = PopulationQuery.of(known_at=known_at, effective_at=effective_at, today=today, by_site=by == "site",
                               area=code, areas=principal.area_filter())
    with services.pool.connection() as conn:
        rows = population(conn, query, today)
    items = [PopulationGroup(area=r["area"], area_name=_area_name(services.app.areas, r["area"], lang),
                             site_id=r.get("site_id"), residents=r["residents"]) for r in rows]
    body = PopulationPublic(known_at=known_at, effective_at=query.effective_at, by=by,
                            total=sum(i.residents for i in items), items=items)
    return respond(body, headers)


# -- reporting delays -------------------------------------------------------------------------
class DelayHistogram(Public):
    same_day: int
    days_1_to_3: int
    days_4_to_7: int
    days_8_to_30: int
    over_30_days: int


class ReportingDelayRow(Public):
    month: str = Field(description="YYYY-MM: the month the changes were recorded in")
    area: str
    area_name: str | None = None
    actor_id: str = Field(description="who recorded them")
    reports: int
    mean_days: float
    p50_days: float
    p90_days: float
    max_days: int
    histogram: DelayHistogram


@router.get("/statistics/reporting-delays", response_model=PageOut[ReportingDelayRow])
@access(READERS, AreaRule.LIST)
def reporting_delays_by_month(
    services: ServicesDep,
    principal: PrincipalDep,
    lang: Language,
    limit: Limit,
    headers: Annotated[dict[str, str], after("reporting_delays")],
    area: Annotated[AreaName | None, Query()] = None,
    month: Month = None,
    actor: Annotated[Name | None, Query(description="a caseworker's user id")] = None,
    kind: Annotated[Literal["registration", "move", "departure", "return"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """How late registrations, moves, departures and returns are recorded (office date of recording minus
    effective date, in days), per month of recording, area and caseworker: count, mean, median, 90th
    percentile, maximum and a histogram."""
    code = services.app.areas.resolve(area) if area else None
    flt = DelayFilter(area=code, month=month, actor=actor, kind=kind, areas=principal.area_filter())
    with services.pool.connection() as conn:
        page = reporting_delays(conn, flt, limit, cursor)
    items = [{**i, "area_name": _area_name(services.app.areas, i["area"], lang)} for i in page.items]
    return page_response(page, headers, items, ReportingDelayRow)
