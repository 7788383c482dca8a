"""Statistics in the browser: population at month end, arrivals and departures by month and
area, turnover, disputes by category with the median days to resolve, and concentrated
versus scattered residents, from the same ``monthly_statistics`` query as the API.

The charts are SVG drawn on the server by pygal. Each is served from its own route and
shown with ``<img>``: pygal styles its SVG with a ``<style>`` element, which the pages'
Content-Security-Policy (``style-src 'self'``) would block inline, but an SVG loaded as an
image is a document of its own (no scripts run in it; its response allows only its own
inline style).

``/ui/statistics/reporting-delays`` shows how late registrations, moves, departures and returns
are recorded (recorded minus effective, in days) per month of recording, area and the person who
recorded them, with the API's filters, a page at a time: the query of
``GET /statistics/reporting-delays``, within the user's areas."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pygal
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pygal.style import Style

from api.schemas import CONTROL_CHARACTERS, MONTH_PATTERN
from api.web.core import Page, current_page, is_digits
from domain.common import DomainError
from projections.pages import BadCursor
from projections.reporting_delays import BUCKETS, KINDS, DelayFilter, reporting_delays
from projections.statistics import monthly_statistics

router = APIRouter()
MONTH = re.compile(MONTH_PATTERN)  # 1900-01 to 2999-12, as the API takes it
DELAYS_PAGE_SIZE = 50  # rows (month, area, recorder) per page of the reporting delays
ACTOR_MAX = 100  # as the API's Name
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
MOST_AREAS = 8  # areas drawn as their own line; the rest are summed
FONTS = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", sans-serif'
STYLE = Style(background="#ffffff", plot_background="#ffffff", foreground="#1d2430", foreground_strong="#1d2430",
              foreground_subtle="#d8dde5", font_family=FONTS, label_font_family=FONTS,
              major_label_font_family=FONTS, value_font_family=FONTS, legend_font_family=FONTS,
              title_font_family=FONTS, tooltip_font_family=FONTS, title_font_size=18, legend_font_size=13,
              label_font_size=12, major_label_font_size=12,
              colors=("#0b5cad", "#d9822b", "#1e7b34", "#b3261e", "#6f42c1", "#17a2b8", "#8c6d1f", "#5b6473",
                      "#e83e8c", "#20c997"))


class Filters:
    """The page's filters as given (area, from, to) and what they mean."""

    def __init__(self, page: Page, request: Request) -> None:
        query = request.query_params
        self.area_text = query.get("area", "").strip()
        self.from_month = query.get("from", "").strip()
        self.to_month = query.get("to", "").strip()
        self.errors: dict[str, str] = {}
        self.area: str | None = None
        if self.area_text:
            try:
                self.area = page.services.app.areas.resolve(self.area_text)
            except DomainError:
                self.errors["area"] = page._("Unknown area")
        for name in ("from_month", "to_month"):
            if getattr(self, name) and not MONTH.match(getattr(self, name)):
                self.errors[name] = page._("A month is written YYYY-MM")
                setattr(self, name, "")
        if self.from_month and self.to_month and self.from_month > self.to_month:
            self.errors["from_month"] = page._("The first month comes after the last")

    def query(self) -> str:
        given = {"area": self.area or "", "from": self.from_month, "to": self.to_month}
        return urlencode({k: v for k, v in given.items() if v})


def _rows(page: Page, filters: Filters) -> list[dict[str, Any]]:
    if filters.area_text and filters.area is None:
        return []
    with page.services.pool.connection() as conn:
        return monthly_statistics(conn, area=filters.area, from_month=filters.from_month or None,
                                  to_month=filters.to_month or None, areas=page.principal.area_filter())


def _area_name(page: Page, code: str) -> str:
    area = page.services.app.areas.get(code)
    if area is None:
        return code
    return area.name_en if page.lang == "en" else area.name_zh


def _months(rows: list[dict[str, Any]]) -> list[str]:
    return sorted({r["month"] for r in rows})


def _per_month(rows: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> list[float]:
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[row["month"]] += value(row)
    return [totals[m] for m in _months(rows)]


def _chart(kind: type, page: Page, title: str, rows: list[dict[str, Any]], **options: Any) -> Any:
    chart = kind(style=STYLE, js=[], width=900, height=420, title=title, x_label_rotation=30, legend_at_bottom=True,
                 print_values=False, show_minor_x_labels=True, truncate_legend=40, margin=16,
                 no_data_text=page._("No data"), **options)
    chart.x_labels = _months(rows)
    return chart


def _by_area(page: Page, rows: list[dict[str, Any]], field: str) -> list[tuple[str, list[float | None]]]:
    """One series per area (the largest few), the rest summed."""
    months = _months(rows)
    latest: dict[str, float] = defaultdict(float)
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for row in rows:
        values[row["area"]][row["month"]] = row[field] or 0
        latest[row["area"]] = max(latest[row["area"]], row[field] or 0)
    ranked = sorted(values, key=lambda a: -latest[a])
    series = [(_area_name(page, a), [values[a].get(m) for m in months]) for a in ranked[:MOST_AREAS]]
    rest = ranked[MOST_AREAS:]
    if rest:
        series.append((page._("Other areas (%(n)s)") % {"n": len(rest)},
                       [sum(values[a].get(m, 0) for a in rest) for m in months]))
    return series


def population_chart(page: Page, rows: list[dict[str, Any]]) -> Any:
    chart = _chart(pygal.Line, page, page._("Population at month end"), rows)
    for name, values in _by_area(page, rows, "population_at_month_end"):
        chart.add(name, values)
    return chart


def movements_chart(page: Page, rows: list[dict[str, Any]]) -> Any:
    chart = _chart(pygal.Bar, page, page._("Arrivals and departures by month"), rows)
    chart.add(page._("Arrivals"), _per_month(rows, lambda r: r["arrivals"]))
    chart.add(page._("Departures"), _per_month(rows, lambda r: r["departures"]))
    return chart


def turnover_chart(page: Page, rows: list[dict[str, Any]]) -> Any:
    chart = _chart(pygal.Line, page, page._("Turnover (departures / population at the month's start, %)"), rows)
    for row in rows:
        row["turnover_percent"] = None if row["turnover_rate"] is None else round(row["turnover_rate"] * 100, 1)
    for name, values in _by_area(page, rows, "turnover_percent"):
        chart.add(name, values)
    return chart


def disputes_chart(page: Page, rows: list[dict[str, Any]]) -> Any:
    chart = _chart(pygal.StackedBar, page, page._("Disputes opened by category"), rows)
    categories = sorted({c for r in rows for c in r["disputes"]})
    def opened(category: str) -> Callable[[dict[str, Any]], float]:
        return lambda row: float(row["disputes"].get(category, {}).get("opened", 0))

    for category in categories:
        chart.add(page.label("category", category), _per_month(rows, opened(category)))
    return chart


def resolution_chart(page: Page, rows: list[dict[str, Any]]) -> Any:
    """Median days to resolve per category (the monthly medians, weighted by the cases resolved)."""
    chart = pygal.HorizontalBar(style=STYLE, js=[], width=900, height=420, legend_at_bottom=True, margin=16,
                                title=page._("Median days to resolve, by category"), no_data_text=page._("No data"))
    for category, days in median_days(rows).items():
        chart.add(page.label("category", category), days)
    return chart


def median_days(rows: list[dict[str, Any]]) -> dict[str, float]:
    weighted: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        for category, entry in row["disputes"].items():
            if entry.get("median_days_to_resolve") is not None and entry.get("resolved"):
                weighted[category][0] += entry["median_days_to_resolve"] * entry["resolved"]
                weighted[category][1] += entry["resolved"]
    return {c: round(total / count, 1) for c, (total, count) in sorted(weighted.items()) if count}


def housing_chart(page: Page, rows: list[dict[str, Any]]) -> Any:
    chart = _chart(pygal.StackedBar, page, page._("Residents by housing at month end"), rows)
    chart.add(page._("Concentrated (in sites)"), _per_month(rows, lambda r: r["concentrated"]))
    chart.add(page._("Scattered (rented rooms)"), _per_month(rows, lambda r: r["scattered"]))
    # Employer dormitories and other housing (found by a review: residents registered without a
    # kind of housing were in neither series, though the list calls them outside sites).
    chart.add(page._("Elsewhere (dormitories, other)"), _per_month(rows, lambda r: r["elsewhere"]))
    return chart


CHARTS: dict[str, Callable[[Page, list[dict[str, Any]]], Any]] = {
    "population": population_chart,
    "movements": movements_chart,
    "turnover": turnover_chart,
    "disputes": disputes_chart,
    "resolution": resolution_chart,
    "housing": housing_chart,
}
# Each chart's title, also its text for those who cannot see it (the <img> alt).
TITLES = {
    "population": "Population at month end",
    "movements": "Arrivals and departures by month",
    "turnover": "Turnover (departures / population at the month's start, %)",
    "disputes": "Disputes opened by category",
    "resolution": "Median days to resolve, by category",
    "housing": "Residents by housing at month end",
}


@router.get("/ui/statistics")
def statistics(request: Request) -> Response:
    page = current_page(request)
    filters = Filters(page, request)
    rows = _rows(page, filters)
    visible = page.principal.visible
    names = [{"code": a.code, "name": a.name_en if page.lang == "en" else a.name_zh}
             for a in page.services.app.areas.all().values() if visible is None or a.code in visible]
    areas = [(r["code"], r["name"]) for r in page.sorted_by_name(names)]
    for row in rows:
        row["area_name"] = _area_name(page, row["area"])
    query = filters.query()
    charts = [(name, f"/ui/statistics/chart/{name}.svg?{query}&lang={page.lang}".replace("?&", "?"),
               page._(TITLES[name])) for name in CHARTS]
    return page.render("statistics.html", rows=rows, filters=filters, areas=areas, charts=charts,
                       medians=median_days(rows), status=422 if filters.errors else 200)


@router.get("/ui/statistics/chart/{name}.svg")
def chart(name: str, request: Request) -> Response:
    page = current_page(request)
    draw = CHARTS.get(name)
    if draw is None:
        return Response(status_code=404)
    filters = Filters(page, request)
    svg = draw(page, _rows(page, filters)).render(is_unicode=True, disable_xml_declaration=True)
    return Response(svg, media_type="image/svg+xml", headers={
        "Content-Security-Policy": CHART_CSP, "Cache-Control": "no-store", "Content-Language": page.lang})


# -- reporting delays ------------------------------------------------------------------------------
class DelayFilters:
    """The reporting delays' filters as typed (area, month, recorder, kind), as the API takes
    them; what is refused is named at its field and nothing is listed."""

    def __init__(self, page: Page, request: Request) -> None:
        query = request.query_params
        self.values = {k: query.get(k, "").strip() for k in ("area", "month", "actor", "kind")}
        self.errors: dict[str, str] = {}
        self.area: str | None = None
        if self.values["area"]:
            try:
                self.area = page.services.app.areas.resolve(self.values["area"])
            except DomainError:
                self.errors["area"] = page._("Unknown area")
        if self.values["month"] and not MONTH.match(self.values["month"]):
            self.errors["month"] = page._("A month is written YYYY-MM")
        actor = self.values["actor"]
        if len(actor) > ACTOR_MAX or CONTROL_CHARACTERS.search(actor):
            self.errors["actor"] = page._("A user name of at most %(n)s characters") % {"n": ACTOR_MAX}
        if self.values["kind"] and self.values["kind"] not in KINDS:
            self.errors["kind"] = page._("Choose one")

    def query(self, **more: str) -> str:
        given = {**{k: v for k, v in self.values.items() if v}, **more}
        return urlencode(given)

    def delay_filter(self, page: Page) -> DelayFilter:
        return DelayFilter(area=self.area, month=self.values["month"] or None, actor=self.values["actor"] or None,
                           kind=self.values["kind"] or None, areas=page.principal.area_filter())


@router.get("/ui/statistics/reporting-delays")
async def reporting_delays_page(request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("reporting_delays", int(after))
    filters = DelayFilters(page, request)
    cursor = request.query_params.get("cursor") or None
    rows: list[dict[str, Any]] = []
    total, next_cursor, notice = 0, None, None
    if not filters.errors:
        flt = filters.delay_filter(page)
        with page.services.pool.connection() as conn:
            try:
                found = reporting_delays(conn, flt, DELAYS_PAGE_SIZE, cursor)
            except BadCursor:  # an old or edited link: the first page, and a word about it
                cursor, notice = None, page._("That page link is not valid (any more); here is the first page.")
                page.dropped.add("cursor")
                found = reporting_delays(conn, flt, DELAYS_PAGE_SIZE, None)
        rows = [{**r, "area_name": _area_name(page, r["area"])} for r in found.items]
        total, next_cursor = found.total, found.next_cursor
    visible = page.principal.visible
    names = [{"code": a.code, "name": a.name_en if page.lang == "en" else a.name_zh}
             for a in page.services.app.areas.all().values() if visible is None or a.code in visible]
    base = "/ui/statistics/reporting-delays"
    return page.render(
        "reporting_delays.html", status=422 if filters.errors else 200, rows=rows, filters=filters,
        areas=[(r["code"], r["name"]) for r in page.sorted_by_name(names)],
        kinds=[(k, page.label("delay_kind", k)) for k in KINDS], buckets=[name for name, _, _ in BUCKETS],
        notice=notice, total=total,
        next_url=f"{base}?{filters.query(cursor=next_cursor)}" if next_cursor else None,
        first_url=f"{base}?{filters.query()}".rstrip("?") if cursor else None)
