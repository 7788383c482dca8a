"""Statistics for other offices: population movement and disputes per area and month."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.access import READERS, AreaRule, access
from api.deps import PrincipalDep, ServicesDep, after, respond
from api.schemas import AreaName, PageOut, StatisticsRow
from projections.statistics import monthly_statistics

router = APIRouter(tags=["statistics"])
Month = Annotated[str | None, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


@router.get("/statistics", response_model=PageOut[StatisticsRow])
@access(READERS, AreaRule.LIST)
def statistics(
    services: ServicesDep,
    principal: PrincipalDep,
    headers: Annotated[dict[str, str], after("statistics")],
    area: Annotated[AreaName | None, Query()] = None,
    from_month: Month = None,
    to_month: Month = None,
) -> JSONResponse:
    """Per area and month (of the effective date): arrivals, departures, moves, population at month end,
    turnover rate (departures / population at the month's start); disputes opened and resolved by
    category with the median days to resolve."""
    code = services.app.areas.resolve(area) if area else None
    with services.pool.connection() as conn:
        items = monthly_statistics(conn, area=code, from_month=from_month, to_month=to_month,
                                   areas=principal.area_filter())
    body = PageOut[StatisticsRow](items=[StatisticsRow.model_validate(i) for i in items], total=len(items), next=None)
    return respond(body, headers)
