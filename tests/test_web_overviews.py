"""Three pages the JSON API served before the web application did, each from the API's own query
and within the same areas: the sites' pipeline to a community (``/ui/sites/pipeline``, as
``GET /sites/pipeline``), the reporting delays (``/ui/statistics/reporting-delays``, as ``GET
/statistics/reporting-delays``, with its filters, a page at a time) and the subsidy programs
(``/ui/subsidy-programs``, as ``GET /subsidy-programs``) with the form that opens one through the
API's use case, for district-wide supervisors and admins only; a refused form keeps what was
typed, says the rule in words and stores nothing. Over HTTP, in zh-CN and (``?lang=en``) English,
and one journey in a real browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from api.web.pages import statistics as statistics_pages
from application.services import Services
from domain.common import Role
from tests.conftest import WEB_PASSWORD, Api, Browser, define_area, issue_key
from tests.factories import resident_body, site_body, unique
from tests.test_web_cases import pager_link
from tests.test_web_sites import READY, Html, Staff, web

__all__ = ["web"]

LANGS = ["zh-CN", "en"]
TODAY = date(2026, 11, 25)  # the office's day of NOW
PIPELINE_ROW = re.compile(r'<tr class="pipeline-site" data-id="([0-9a-f-]{36})" data-stage="([a-z_]+)" '
                          r'data-ready="(yes|no)">(.*?)</tr>', re.S)
DELAY_ROW = re.compile(r'<tr class="delay-row" data-month="([0-9-]+)" data-area="([^"]+)" data-actor="([^"]+)">'
                       r'(.*?)</tr>', re.S)
PROGRAM_ROW = re.compile(r'<tr class="program-row" data-id="([0-9a-f-]{36})">(.*?)</tr>', re.S)


@pytest.fixture()
def account(base_url: str, services: Services) -> Iterator[Any]:
    """A web session of a new account of ``role``, bound to ``areas`` (none: district-wide)."""
    sessions: list[Staff] = []

    def sign_in(role: str, *areas: str) -> Staff:
        user = unique(f"web-{role}")
        services.users.create(user_id=user, role=role, areas=list(areas), password=WEB_PASSWORD,
                              created_by="test-admin")
        session = Staff(base_url, user)
        sessions.append(session)
        return session

    yield sign_in
    for session in sessions:
        session.client.close()


def key_in(services: Services, http: httpx.Client, role: Role, *areas: str) -> Api:
    return Api(http, issue_key(services, unique(f"overview-{role.value}"), role, areas=list(areas)))


def made(response: httpx.Response) -> tuple[str, int]:
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"]), int(response.json()["position"])


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# -- the pipeline --------------------------------------------------------------------------------
def pipeline_rows(page: str) -> dict[str, tuple[str, bool, str]]:
    """The page's sites: id -> (stage, ready, the row's text)."""
    return {site: (stage, ready == "yes", text_of(row)) for site, stage, ready, row in PIPELINE_ROW.findall(page)}


@pytest.mark.parametrize("lang", LANGS)
def test_the_pipeline_shows_ones_areas_sites_by_stage_with_what_each_lacks_in_words(
        services: Services, http: httpx.Client, supervisor: Api, caseworker: Api, account: Any, lang: str) -> None:
    a, b = define_area(services, "PipeA"), define_area(services, "PipeB")
    unassessed, _ = made(supervisor.post("/sites", site_body(area=a, capacity=3000)))
    lacking, _ = made(supervisor.post("/sites", site_body(area=a, capacity=3000)))
    ready, _ = made(supervisor.post("/sites", site_body(area=a, capacity=3000)))
    elsewhere, _ = made(supervisor.post("/sites", site_body(area=b, capacity=3000)))
    for site, present, headcount in ((lacking, [f for f in READY if f != "clinic"], 120), (ready, READY, 3100)):
        assessed = caseworker.post(f"/sites/{site}/assessments", {
            "assessed_on": "2026-11-20", "headcount": headcount, "facilities_present": present,
            "operator_status": "clear", "villages": ["Ginkgo"]})
        assert assessed.status_code == 200, assessed.text
    position = assessed.json()["position"]

    # the API's answer to a key of the same area is what the page shows, stage for stage
    api = key_in(services, http, Role.SUPERVISOR, a).get("/sites/pipeline", params={"after": position}).json()
    expected = {s["id"]: s["stage"] for s in api["sites"]}
    assert expected == {unassessed: "unassessed", lacking: "assessed", ready: "assessed"}

    page = account("supervisor", a).client.get(f"/ui/sites/pipeline?lang={lang}&after={position}")
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text
    rows = pipeline_rows(page.text)
    assert {site: stage for site, (stage, _, _) in rows.items()} == expected  # nothing of area B
    assert elsewhere not in page.text
    for site in expected:
        assert f'href="/ui/sites/{site}"' in page.text
    zh = lang == "zh-CN"
    assert ("\u5c1a\u9700\u8bc4\u4f30" if zh else "An assessment") in rows[unassessed][2]
    lacks = rows[lacking][2]
    assert ("\u536b\u751f\u5ba4" if zh else "Facility missing: clinic") in lacks  # the clinic, in words
    assert ("\u4eba\u6570\u4e0d\u8db3" if zh else "Enough residents") in lacks
    assert "facility:" not in page.text and "headcount" not in lacks
    assert rows[ready][1] and not rows[lacking][1] and not rows[unassessed][1]
    assert ("\u53ef\u6279\u51c6\u7b79\u5907\u7ec4" if zh else "Ready for a preparatory group") in rows[ready][2]
    assert ("\u5c45\u4f4f\u70b9\u6210\u793e\u533a\u8fdb\u5ea6" if zh else "The way to a community") in page.text

    # a district-wide reader (an auditor) sees both areas' sites
    district = account("auditor").client.get("/ui/sites/pipeline").text
    assert unassessed in district and elsewhere in district


def test_the_pipeline_is_its_own_page_not_a_site_called_pipeline(web: Any) -> None:
    """Found while adding it: /ui/sites/{site_id} is declared after it, so "pipeline" is no id."""
    sites = web("caseworker")
    assert 'href="/ui/sites/pipeline"' in sites.client.get("/ui/sites").text  # linked from the sites list
    answer = sites.client.get("/ui/sites/pipeline?lang=en")
    assert answer.status_code == 200 and 'id="stage-unassessed"' in answer.text
    assert sites.client.get("/ui/sites/not-a-site").status_code == 404


def test_the_pipeline_names_the_missing_label_of_each_lack_in_both_languages() -> None:
    """Every lack GET /sites/pipeline can name has words in both catalogues (not its code)."""
    from api.web.i18n import label

    for lang in LANGS:
        for lack in ("assessment", "fresh_assessment", "headcount", "operator_clear", "election"):
            assert label(lang, "lacks", lack) != lack.replace("_", " "), (lang, lack)


# -- reporting delays ------------------------------------------------------------------------------
def register_late(services: Services, http: httpx.Client, area: str, days_late: list[int]) -> tuple[str, int]:
    """Residents registered in ``area`` by a new caseworker, each recorded ``days_late`` days after
    the day they registered; the caseworker's user id and the last position."""
    user = unique("late-caseworker")
    worker = Api(http, issue_key(services, user, Role.CASEWORKER))
    position = 0
    for days in days_late:
        _, position = made(worker.post("/residents", resident_body(
            area=area, registered_on=(TODAY - timedelta(days=days)).isoformat())))
    return user, position


def delay_rows(page: str) -> dict[tuple[str, str, str], str]:
    return {(month, area, actor): text_of(row) for month, area, actor, row in DELAY_ROW.findall(page)}


@pytest.mark.parametrize("lang", LANGS)
def test_reporting_delays_per_month_area_and_recorder_within_ones_areas(
        services: Services, http: httpx.Client, account: Any, lang: str) -> None:
    a, b = define_area(services, "DelayA"), define_area(services, "DelayB")
    here, _ = register_late(services, http, a, [0, 2, 10, 40])
    there, position = register_late(services, http, b, [5])
    path = f"/ui/statistics/reporting-delays?lang={lang}&after={position}"

    bound = account("supervisor", a).client.get(path)
    assert bound.status_code == 200 and f'<html lang="{lang}">' in bound.text
    rows = delay_rows(bound.text)
    assert (("2026-11", a, here) in rows) and not any(area == b for _, area, _ in rows)
    assert there not in bound.text
    # the figures are the API's for a key of the same area
    api = key_in(services, http, Role.SUPERVISOR, a).get(
        "/statistics/reporting-delays", params={"area": a}).json()["items"]
    assert [(i["month"], i["area"], i["actor_id"], i["reports"], i["max_days"]) for i in api] == [
        ("2026-11", a, here, 4, 40)]
    row = rows[("2026-11", a, here)]
    assert " 4 " in f" {row} " and " 40 " in f" {row} " and " 13.0 " in f" {row} "  # count, most, mean
    shown = Html(bound.text)
    assert shown.text("reporting-delays").count(here) == 1
    heading = "\u767b\u8bb0\u5ef6\u8fdf" if lang == "zh-CN" else "Reporting delays"
    assert heading in bound.text

    # an auditor reads every area, a supervisor of the district too
    # (each area asked for: unfiltered, the rows of the suite's other tests may fill the first page)
    for role in ("auditor", "supervisor"):
        session = account(role).client
        assert ("2026-11", a, here) in delay_rows(session.get(f"{path}&area={a}").text)
        assert ("2026-11", b, there) in delay_rows(session.get(f"{path}&area={b}").text)


def test_reporting_delays_filter_as_the_api_does_and_name_a_refused_filter(
        services: Services, http: httpx.Client, web: Any) -> None:
    area = define_area(services, "DelayF")
    actor, position = register_late(services, http, area, [3])
    auditor = web("auditor").client
    base = f"/ui/statistics/reporting-delays?area={area}&after={position}"
    for query, listed in (("", True), ("&kind=registration", True), ("&kind=move", False),
                          (f"&actor={actor}", True), ("&actor=nobody", False), ("&month=2026-11", True),
                          ("&month=2026-10", False)):
        rows = delay_rows(auditor.get(base + query).text)
        assert (("2026-11", area, actor) in rows) == listed, query
    refused = auditor.get(f"/ui/statistics/reporting-delays?lang=en&area={area}&month=2026-13&kind=sideways")
    assert refused.status_code == 422
    errors = Html(refused.text).errors
    assert errors["month"] == "A month is written YYYY-MM" and errors["kind"] == "Choose one"
    assert not delay_rows(refused.text)
    assert Html(refused.text).value("d-month") == "2026-13"  # what was typed stays in the filter
    assert Html(refused.text).by_id["d-month"].get("aria-invalid") == "true" and not Html(refused.text).untied_errors()
    unknown = auditor.get("/ui/statistics/reporting-delays?lang=en&area=Atlantis")
    assert unknown.status_code == 422 and Html(unknown.text).errors["area"] == "Unknown area"


def test_reporting_delays_a_page_at_a_time(services: Services, http: httpx.Client, web: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statistics_pages, "DELAYS_PAGE_SIZE", 2)
    area = define_area(services, "DelayP")
    actors = []
    position = 0
    for _ in range(3):
        actor, position = register_late(services, http, area, [1])
        actors.append(actor)
    client = web("supervisor").client
    first = client.get(f"/ui/statistics/reporting-delays?lang=en&area={area}&after={position}")
    assert [actor for _, _, actor in delay_rows(first.text)] == sorted(actors)[:2]
    assert 'data-shown="2"' in first.text and "Showing 2 of 3." in first.text
    following = pager_link(first.text, "next")
    assert following and f"area={area}" in following and "cursor=" in following
    second = client.get(following)
    assert [actor for _, _, actor in delay_rows(second.text)] == sorted(actors)[2:]
    assert pager_link(second.text, "next") is None and pager_link(second.text, "first")
    edited = client.get(f"/ui/statistics/reporting-delays?lang=en&area={area}&cursor=not-ours")
    assert edited.status_code == 200 and 'id="delays-notice"' in edited.text
    assert len(delay_rows(edited.text)) == 2


def test_the_statistics_page_links_to_the_reporting_delays(web: Any) -> None:
    for role in ("caseworker", "supervisor", "finance", "auditor", "admin"):
        assert 'href="/ui/statistics/reporting-delays"' in web(role).client.get("/ui/statistics").text, role


# -- subsidy programs ----------------------------------------------------------------------------------
def program_body(**overrides: Any) -> dict[str, Any]:
    return {"name": unique("Facilities"), "purpose": "facilities", "fiscal_year": 2026, "budget": "900000.00",
            "modes": ["one_off", "phased"], **overrides}


def program_form(**overrides: Any) -> dict[str, Any]:
    return {"name": unique("Sanitation"), "purpose": "sanitation", "fiscal_year": "2027", "budget": "350000.50",
            "mode": ["one_off", "reward_in_lieu"], **overrides}


def listed_programs(client: httpx.Client, path: str) -> dict[str, str]:
    """Every program the list shows, its pages followed: id -> the row's text."""
    found: dict[str, str] = {}
    for _ in range(40):
        page = client.get(path)
        assert page.status_code == 200, page.text[:500]
        found |= {program: text_of(row) for program, row in PROGRAM_ROW.findall(page.text)}
        following = pager_link(page.text, "next")
        if following is None:
            return found
        path = following
    raise AssertionError("more pages than a test walks")


@pytest.mark.parametrize("lang", LANGS)
def test_programs_show_budget_committed_paid_and_remaining_to_every_role_and_area(
        services: Services, supervisor: Api, account: Any, web: Any, lang: str) -> None:
    program, position = made(supervisor.post("/subsidy-programs", program_body(fiscal_year=2031)))
    area = define_area(services, "ProgA")
    document = supervisor.get(f"/subsidy-programs/{program}").json()
    for session in (web("caseworker"), web("finance"), web("auditor"), account("caseworker", area)):
        rows = listed_programs(session.client, f"/ui/subsidy-programs?fiscal_year=2031&lang={lang}&after={position}")
        assert program in rows  # programs are the district's: an area-bound account reads them too
        row = rows[program]
        assert "\u00a5900,000.00" in row and row.count("\u00a50.00") == 2  # budget; nothing committed nor paid
        assert document["remaining"] == "900000.00" and row.count("\u00a5900,000.00") == 2  # and remaining
        assert ("\u8bbe\u65bd" if lang == "zh-CN" else "Facilities") in row
    page = web("finance").client.get(f"/ui/subsidy-programs?lang={lang}")
    assert "program-form" not in page.text  # finance, caseworkers and auditors open no program
    assert ("\u8865\u52a9\u9879\u76ee" if lang == "zh-CN" else "Subsidy programs") in page.text
    assert 'href="/ui/subsidy-programs"' in web("auditor").client.get("/ui/subsidies").text


@pytest.mark.parametrize("lang", LANGS)
def test_a_supervisor_opens_a_program_from_the_form_as_the_api_would(
        web: Any, supervisor: Api, lang: str) -> None:
    boss = web("supervisor")
    page = boss.page(f"/ui/subsidy-programs?lang={lang}")
    assert "program-form" in page.post_forms()
    typed = program_form()
    answer = boss.post(f"/ui/subsidy-programs?lang={lang}", typed)
    assert answer.status_code == 303, answer.text[:2000]
    found = re.fullmatch(r"/ui/subsidy-programs\?opened=([0-9a-f-]{36})&after=\d+", answer.headers["location"])
    assert found, answer.headers["location"]
    program = found.group(1)
    document = supervisor.get(f"/subsidy-programs/{program}").json()
    assert (document["name"], document["purpose"], document["fiscal_year"], document["budget"]) == (
        typed["name"], "sanitation", 2027, "350000.50")
    assert document["modes"] == ["one_off", "reward_in_lieu"] and document["remaining"] == "350000.50"
    history = supervisor.get(f"/subsidy-programs/{program}/history").json()["items"]
    assert [(h["event"], h["actor_id"], h["actor_role"]) for h in history] == [
        ("SubsidyProgram.Opened", "web-supervisor", "supervisor")]  # the same event, the signed-in actor
    landed = boss.client.get(answer.headers["location"])
    assert typed["name"] in Html(landed.text).text("program-opened")


def test_a_refused_program_keeps_what_was_typed_says_the_rule_and_stores_nothing(
        web: Any, stored: Any) -> None:
    boss = web("admin")
    for overrides, field, rule, words in (
            ({"budget": "12,50"}, "budget", "money_format", "Write an amount in yuan"),
            ({"mode": []}, "modes", "modes_empty", "Tick at least one payment mode."),
            ({"fiscal_year": "1999"}, "fiscal_year", "fiscal_year_out_of_range", "between 2000 and 2100"),
            ({"name": "x" * 101}, "name", "too_long", "At most 100 characters."),
            ({"budget": ""}, "budget", "required", "This is required.")):
        before = stored()
        typed = program_form(**overrides)
        refused = boss.post("/ui/subsidy-programs?lang=en", typed)
        assert refused.status_code == 422, (overrides, refused.status_code)
        shown = Html(refused.text)
        assert shown.problems and shown.problems[0][0] == rule and words in shown.problems[0][1], shown.problems
        assert field in shown.errors, (field, shown.errors)
        assert not shown.untied_errors(), (field, shown.untied_errors())
        assert shown.value("f-name") == typed["name"] and shown.value("f-fiscal_year") == typed["fiscal_year"]
        assert shown.value("f-budget") == typed["budget"]
        assert re.search(r'<option value="sanitation"\s+selected>', refused.text)
        for mode in ("one_off", "phased", "reward_in_lieu"):
            assert ("checked" in shown.by_id[f"f-mode-{mode}"]) == (mode in typed["mode"]), mode
        assert before.unchanged(), overrides


def test_only_district_wide_supervisors_and_admins_open_programs(
        services: Services, web: Any, account: Any, stored: Any) -> None:
    for session in (web("caseworker"), web("finance"), web("auditor")):
        before = stored()
        assert session.post("/ui/subsidy-programs", program_form()).status_code == 403
        assert before.unchanged()
    bound = account("supervisor", define_area(services, "ProgB"))
    page = bound.page("/ui/subsidy-programs?lang=en")
    assert "program-form" not in page.post_forms() and "programs-district-only" in page.by_id
    before = stored()
    refused = bound.post("/ui/subsidy-programs?lang=en", program_form())
    assert refused.status_code == 403  # the use case refuses it, as the API answers 403 area_not_allowed
    assert Html(refused.text).problems[0] == (
        "area_not_allowed", "Programs are the district's: an account bound to areas reads them and opens none.")
    assert before.unchanged()


# -- in a browser ------------------------------------------------------------------------------------
def test_a_supervisor_finds_the_programs_opens_one_and_reads_the_pipeline_in_a_browser(
        browser: Browser, staff: dict[str, str]) -> None:
    browser.sign_in(staff["supervisor"])
    browser.go("/ui/subsidies")
    browser.submit("programs-link")
    assert browser.driver.current_url.split("?")[0].endswith("/ui/subsidy-programs")
    name = unique("\u73af\u5883\u536b\u751f")
    browser.fill("name", name)
    browser.choose("purpose", "sanitation")
    browser.fill("budget", "12,50")  # refused: the form comes back with what was typed
    browser.submit("open-program-button")
    assert browser.find("[data-field='budget']").text
    assert browser.find("#f-name").get_attribute("value") == name
    browser.fill("budget", "80000.00")
    browser.submit("open-program-button")
    assert name in browser.find("#program-opened").text
    browser.shot("programs-opened")
    browser.go("/ui/sites")
    browser.submit("pipeline-link")
    assert browser.find("#stage-unassessed")
    assert browser.lang() == "zh-CN" and "\u5c45\u4f4f\u70b9\u6210\u793e\u533a\u8fdb\u5ea6" in browser.text()
    browser.go("/ui/statistics")
    browser.submit("reporting-delays-link")
    assert browser.find("#reporting-delays")
    browser.shot("reporting-delays")
