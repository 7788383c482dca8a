"""Statistics for other offices: population movement and disputes per area and month."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from api.deps import PrincipalDep, ServicesDep, read_after
from projections.statistics import monthly_statistics

router = APIRouter(tags=["statistics"])
Month = Annotated[str | None, Query(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


@router.get("/statistics")
def statistics(
    services: ServicesDep,
    _: PrincipalDep,
    area: Annotated[str | None, Query(max_length=64)] = None,
    from_month: Month = None,
    to_month: Month = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> JSONResponse:
    """Per area and month (of the effective date): arrivals, departures, moves, population at month end,
    turnover rate (departures / population at the month's start); disputes opened and resolved by
    category with the median days to resolve."""
    headers = read_after(services, "statistics", after)
    with services.pool.connection() as conn:
        items = monthly_statistics(conn, area=area, from_month=from_month, to_month=to_month)
    return JSONResponse({"items": items, "total": len(items), "next": None}, headers=headers)
