"""Found by a review of the web pages (29 November): the committee's agenda picker offered open
cases as identical lines; two sites of one name were one entry twice in the forms' lists; the
English pages joined attendees with the Chinese comma; the minutes form said nothing of a meeting
recorded before its scheduled day; a locked account could not be unlocked and a disabled one was
one click away; the work queue ignored a filter it did not understand without a word; the
accounts page left a district-wide account's areas blank; and no link skipped to a page's main
content."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from typer.testing import CliRunner

from application.cli import cli
from application.services import Services
from application.users import SignInRefused
from tests.conftest import WEB_PASSWORD, Api, Browser, define_area
from tests.factories import site_body, unique
from tests.test_web_sites import Html, Staff


def options_of(page: str, select_name: str) -> dict[str, str]:
    """The ``<option>``s of the page's select named ``select_name``: value -> the text shown."""
    found = re.search(rf'<select[^>]*name="{select_name}"[^>]*>(.*?)</select>', page, re.S)
    assert found, select_name
    return {html.unescape(v): html.unescape(t).strip()
            for v, t in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', found.group(1))}


def site_in(api: Api, area: str, name: str, address: str) -> str:
    made = api.post("/sites", site_body(name=name, area=area, address=address, capacity=50))
    assert made.status_code == 201, made.text
    assert api.get("/sites", params={"after": made.json()["position"]}).status_code == 200
    return str(made.json()["id"])


# -- 2. sites of one name --------------------------------------------------------------------------
def test_two_sites_of_one_name_are_told_apart_by_their_address_in_every_site_list(
        base_url: str, staff: dict[str, str], services: Services, supervisor: Api) -> None:
    """/ui/subsidies/new, /ui/cases/new, /ui/committees/new and the residents' site filter
    offered two sites named alike as two identical entries."""
    area = define_area(services, "\u540c\u540d")
    name = unique("AA\u94f6\u674f\u793e\u533a")
    east = site_in(supervisor, area, name, "\u4e1c\u8def1\u53f7")
    west = site_in(supervisor, area, name, "\u897f\u8def2\u53f7")
    alone = site_in(supervisor, area, unique("AA\u67ab\u6797"), "\u5357\u8def3\u53f7")
    boss = Staff(base_url, staff["supervisor"])
    for path, select in (("/ui/subsidies/new", "site_id"), ("/ui/cases/new", "site_id"),
                         ("/ui/committees/new", "site_id"), ("/ui/residents", "site_id")):
        offered = options_of(boss.client.get(path).text, select)
        assert offered[east] != offered[west], (path, offered[east])
        assert "\u4e1c\u8def1\u53f7" in offered[east] and "\u897f\u8def2\u53f7" in offered[west], path
        assert "\u5357\u8def3\u53f7" not in offered[alone], (path, offered[alone])  # a name of its own is enough
    boss.client.close()


# -- 1, 3, 4. a committee's page ---------------------------------------------------------------------
def open_case(api: Api, area: str, site_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"category": "housing", "description": "\u6f0f\u6c34",
                            "parties": [{"name": "\u4f4f\u6237", "kind": "other"}], "occurred_on": "2026-11-20"}
    body.update({"site_id": site_id} if site_id else {"area": area})
    made = api.post("/disputes", body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def case_choices(page: str, prefix: str) -> dict[str, str]:
    """The agenda picker's cases (box ids starting ``prefix``): case id -> the line shown with its
    link's text, checked that the link opens that case."""
    found = re.findall(rf'<div class="case-choice"><label><input type="checkbox" name="dispute_id" value="([0-9a-f-]+)"'
                       rf' id="{prefix}[^"]*"[^>]*>(.*?)</label>\s*<a class="case-ref" href="/ui/cases/([0-9a-f-]+)"'
                       r'[^>]*>([^<]*)</a>', page, re.S)
    assert all(case_id == linked for case_id, _, linked, _ in found), found
    return {case_id: " ".join(html.unescape(f"{text} {ref}").split()) for case_id, text, _, ref in found}


def test_the_agenda_picker_tells_open_cases_apart_and_links_each_to_its_page(
        base_url: str, staff: dict[str, str], services: Services, supervisor: Api, caseworker: Api) -> None:
    """Each open case read "housing · logged · 2026-11-25", many alike: now its site (else its
    area), who has it and its reference, with a link to the case; the past meetings' agenda too."""
    area = define_area(services, "\u8bae\u7a0b\u533a")
    site_name = unique("\u67ab\u6797\u516c\u5bd3")
    site_id = site_in(supervisor, area, site_name, "\u4e1c\u8def9\u53f7")
    cases = [open_case(caseworker, area), open_case(caseworker, area), open_case(caseworker, area, site_id)]
    committee = supervisor.post("/committees", {"name": "\u59d4\u5458\u4f1a", "area": area,
                                                "established_on": "2026-06-01", "members": [{"name": "Wang"}]})
    assert committee.status_code == 201, committee.text
    committee_id = committee.json()["id"]
    member = supervisor.get(f"/committees/{committee_id}").json()["members"][0]["member_id"]
    held = caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": "2026-11-24", "agenda": [{"dispute_id": cases[2]["id"]}]}).json()["meeting_id"]
    upcoming = caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": "2026-11-26", "agenda": [{"title": "rota"}]}).json()["meeting_id"]
    minutes = caseworker.post(f"/committees/{committee_id}/meetings/{held}/minutes", {
        "held_on": "2026-11-24", "attendees": [member], "decisions": [{"item_id": "1", "decision": "fix it"}]})
    assert minutes.status_code == 200, minutes.text
    worker = Staff(base_url, staff["caseworker"])
    page = worker.client.get(f"/ui/committees/{committee_id}?after={minutes.json()['position']}&lang=en").text
    for prefix in (f"add-case-{upcoming}-", "agenda-case-"):
        shown = case_choices(page, prefix)
        assert set(shown) == {c["id"] for c in cases}, (prefix, shown)  # decided, still open
        assert len(set(shown.values())) == len(shown), shown
        for case_id, line in shown.items():
            assert line.startswith("Housing") and f"#{case_id[:8]}" in line, line
        assert site_name in shown[cases[2]["id"]] and site_name not in shown[cases[0]["id"]]
    past = page.split('id="past-meetings"')[1].split("</table>")[0]
    assert f'href="/ui/cases/{cases[2]["id"]}"' in past and site_name in past and f"#{cases[2]['id'][:8]}" in past
    worker.client.close()


def test_english_pages_join_a_meetings_attendees_with_an_english_comma(
        base_url: str, staff: dict[str, str], services: Services, supervisor: Api, caseworker: Api) -> None:
    """The English page read "Wang、Li": the Chinese enumeration comma."""
    area = define_area(services, "\u51fa\u5e2d")
    made = supervisor.post("/committees", {"name": "\u59d4\u5458\u4f1a", "area": area, "established_on": "2026-06-01",
                                           "members": [{"name": "Wang"}, {"name": "Li"}]})
    committee_id = made.json()["id"]
    members = [m["member_id"] for m in supervisor.get(f"/committees/{committee_id}").json()["members"]]
    meeting = caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": "2026-11-24", "agenda": [{"title": "rota"}]}).json()["meeting_id"]
    held = caseworker.post(f"/committees/{committee_id}/meetings/{meeting}/minutes", {
        "held_on": "2026-11-24", "attendees": members})
    assert held.status_code == 200, held.text
    worker = Staff(base_url, staff["caseworker"])
    for lang, comma in (("en", ", "), ("zh-CN", "\u3001")):
        page = worker.client.get(f"/ui/committees/{committee_id}?after={held.json()['position']}&lang={lang}").text
        row = page.split(f'<tr data-meeting-id="{meeting}">')[1].split("</tr>")[0]
        assert any(f"<td>{a}{comma}{b} <span" in row for a, b in (("Wang", "Li"), ("Li", "Wang"))), row
    worker.client.close()


def test_the_minutes_form_takes_the_scheduled_day_once_it_has_come_and_says_so_when_recorded_before_it(
        base_url: str, staff: dict[str, str], services: Services, supervisor: Api, caseworker: Api,
        stored: Any) -> None:
    """The "held on" field took today even for a meeting scheduled later, without a word: now a
    meeting whose day has come is held on it, and one recorded before its day says so."""
    area = define_area(services, "\u7eaa\u8981")
    made = supervisor.post("/committees", {"name": "\u59d4\u5458\u4f1a", "area": area, "established_on": "2026-06-01",
                                           "members": [{"name": "Wang"}]})
    committee_id = made.json()["id"]
    today = services.today()
    past, later = (today - timedelta(days=3)).isoformat(), (today + timedelta(days=10)).isoformat()
    meetings = {day: caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": day, "agenda": [{"title": "rota"}]}).json() for day in (past, later)}
    worker = Staff(base_url, staff["caseworker"])
    after = max(m["position"] for m in meetings.values())
    for lang, words in (("en", f"This meeting is scheduled for {later}"),
                        ("zh-CN", f"\u6b64\u4f1a\u8bae\u5b9a\u4e8e{later}\u53ec\u5f00")):
        page = Html(worker.client.get(f"/ui/committees/{committee_id}?after={after}&lang={lang}").text)
        due, early = meetings[past]["meeting_id"], meetings[later]["meeting_id"]
        assert page.value(f"f-held_on-{due}") == past and f"held-early-{due}" not in page.by_id
        assert page.value(f"f-held_on-{early}") == today.isoformat()
        assert words in page.text(f"held-early-{early}"), page.text(f"held-early-{early}")
        assert page.by_id[f"f-held_on-{early}"]["aria-describedby"] == f"held-early-{early}"
    before = stored()
    refused = worker.post(f"/ui/committees/{committee_id}/meetings/{early}/minutes?lang=en", {"held_on": "soon"})
    assert refused.status_code == 422, refused.text[-2000:]
    page = Html(refused.text)
    assert page.by_id[f"f-held_on-{early}"]["aria-describedby"].split() == [
        f"held-early-{early}", f"f-held_on-{early}-error"] and not page.untied_errors()
    assert before.unchanged()
    worker.client.close()


# -- 5, 6, 8. the accounts page ----------------------------------------------------------------------
def locked_account(services: Services, now: datetime) -> str:
    name = unique("cw-locked")
    services.users.create(user_id=name, role="caseworker", areas=[], password=WEB_PASSWORD, created_by="test")
    for _ in range(5):
        with pytest.raises(SignInRefused):
            services.users.sign_in(name, "not the password", now)
    with pytest.raises(SignInRefused) as locked:
        services.users.sign_in(name, WEB_PASSWORD, now)
    assert locked.value.reason == "locked"
    return name


def test_an_admin_unlocks_an_account_locked_by_five_wrong_passwords(
        base_url: str, staff: dict[str, str], services: Services, stored: Any) -> None:
    """The accounts page showed "locked until 10:15" and offered nothing but waiting."""
    name = locked_account(services, services.clock())
    admin = Staff(base_url, staff["admin"])
    listed = Html(admin.client.get("/ui/users?lang=en").text)
    assert f"unlock-{name}" in listed.by_id and f"unlock-{staff['caseworker']}" not in listed.by_id
    assert admin.client.post(f"/ui/users/{name}/unlock?lang=en", data={"csrf": "forged"}).status_code == 403
    worker = Staff(base_url, staff["caseworker"])
    assert worker.post(f"/ui/users/{name}/unlock?lang=en", {}).status_code == 403  # admins only
    with pytest.raises(SignInRefused):
        services.users.sign_in(name, WEB_PASSWORD, services.clock())
    unlocked = admin.post(f"/ui/users/{name}/unlock?lang=en", {})
    assert unlocked.status_code == 303 and unlocked.headers["location"] == "/ui/users?" + urlencode({"unlocked": name})
    page = Html(admin.client.get(unlocked.headers["location"] + "&lang=en").text)
    assert "Account unlocked" in page.text("unlocked") and f"unlock-{name}" not in page.by_id
    assert services.users.sign_in(name, WEB_PASSWORD, services.clock())
    for client in (admin, worker):
        client.client.close()


def test_liudong_users_unlock_unlocks_a_locked_account(database: Any, services: Services, monkeypatch: Any) -> None:
    """The command line disables and enables accounts; it unlocks one too."""
    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    now = datetime.now(UTC)  # the command's own clock
    name = locked_account(services, now)
    unlocked = CliRunner().invoke(cli, ["users", "unlock", name])
    assert unlocked.exit_code == 0 and unlocked.output.strip() == f"unlocked {name}", unlocked.output
    assert services.users.sign_in(name, WEB_PASSWORD, now)
    again = CliRunner().invoke(cli, ["users", "unlock", name])
    assert again.exit_code == 0 and again.output.strip() == f"{name} was not locked", again.output
    unknown = CliRunner().invoke(cli, ["users", "unlock", "nobody.here"])
    assert unknown.exit_code == 2 and "no account named nobody.here" in unknown.output


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_disabling_an_account_asks_for_the_box_to_be_ticked_and_the_server_checks_it(
        base_url: str, staff: dict[str, str], services: Services, lang: str) -> None:
    """One click disabled a colleague's account and ended their sessions."""
    name = unique("cw-leaving")
    services.users.create(user_id=name, role="caseworker", areas=[], password=WEB_PASSWORD, created_by="test")
    admin = Staff(base_url, staff["admin"])
    listed = Html(admin.client.get(f"/ui/users?lang={lang}").text)
    box = listed.by_id[f"disable-{name}-confirm"]
    assert box["name"] == "confirm" and "required" in box
    refused = admin.post(f"/ui/users/{name}/disable?lang={lang}", {})
    assert refused.status_code == 422, refused.text[-2000:]
    page = Html(refused.text)
    words = "Tick \u201cI understand" if lang == "en" else "\u8bf7\u52fe\u9009\u201c\u6211\u4e86\u89e3"
    assert page.problems[0][0] == "disable_unconfirmed" and words in page.errors["confirm"], page.errors
    assert page.by_id[f"disable-{name}-confirm"].get("aria-invalid") == "true" and not page.untied_errors()
    assert not next(u for u in services.users.list() if u["user_id"] == name)["disabled_at"]
    done = admin.post(f"/ui/users/{name}/disable?lang={lang}", {"confirm": "yes"})
    assert done.status_code == 303
    assert next(u for u in services.users.list() if u["user_id"] == name)["disabled_at"]
    admin.client.close()


def test_the_accounts_page_says_whole_district_for_an_account_bound_to_no_area(
        base_url: str, staff: dict[str, str]) -> None:
    admin = Staff(base_url, staff["admin"])
    for lang, words in (("en", "Whole district"), ("zh-CN", "\u5168\u533a")):
        page = admin.client.get(f"/ui/users?lang={lang}").text
        row = page.split(f'<tr data-user="{staff["caseworker"]}">')[1].split("</tr>")[0]
        assert f'<td class="user-areas">{words}</td>' in row, row
    admin.client.close()


# -- 7. the work queue's filters -----------------------------------------------------------------------
def test_the_work_queue_names_a_filter_it_did_not_understand_and_keeps_it_out_of_its_links(
        base_url: str, staff: dict[str, str], services: Services, caseworker: Api) -> None:
    """?category=bogus&area=zz showed every open case as though the filters had been applied."""
    area = define_area(services, "\u7b5b\u9009")
    housing = open_case(caseworker, area)
    worker = Staff(base_url, staff["caseworker"])
    page = worker.client.get("/ui/cases", params={"category": "bogus", "area": "zz", "lang": "en",
                                                  "after": housing["position"]}).text
    notice = Html(page).text("unknown-filters")
    assert "Category \u201cbogus\u201d" in notice and "Area \u201czz\u201d" in notice, notice
    switch = html.unescape(Html(page).by_id["language-switch"]["href"])
    assert "bogus" not in switch and "zz" not in switch, switch
    zh = Html(worker.client.get("/ui/cases", params={"category": "bogus", "lang": "zh-CN"}).text)
    assert zh.text("unknown-filters") == (
        "\u4ee5\u4e0b\u7b5b\u9009\u6761\u4ef6\u65e0\u6cd5\u8bc6\u522b\uff0c\u672a\u4e88\u5e94\u7528\uff1a"
        "\u7c7b\u522b\u201cbogus\u201d\u3002"), zh.text("unknown-filters")
    # a filter understood still applies beside one that is not; a typed value is shown, not run
    mixed = worker.client.get("/ui/cases", params={"category": "housing", "area": "<b>zz</b>", "lang": "en"}).text
    assert "Area \u201c&lt;b&gt;zz&lt;/b&gt;\u201d" in mixed and "<b>zz" not in mixed
    assert "Category \u201c" not in Html(mixed).text("unknown-filters")
    assert set(re.findall(r'data-status="\w+"', mixed)) and 'value="housing" selected' in mixed
    understood = worker.client.get("/ui/cases", params={"category": "housing", "area": area, "lang": "en"}).text
    assert 'id="unknown-filters"' not in understood and f'data-case-id="{housing["id"]}"' in understood
    # an overdue flag that is no flag (found by a second review)
    odd = Html(worker.client.get("/ui/cases", params={"overdue": "maybe", "lang": "en"}).text)
    assert "Overdue only \u201cmaybe\u201d" in odd.text("unknown-filters")
    worker.client.close()


# -- 8. skipping to the content; the statistics' area filter -------------------------------------------
def test_the_first_tab_offers_to_skip_to_the_content_and_the_statistics_area_select_is_wide(
        browser: Browser, staff: dict[str, str]) -> None:
    """A keyboard user tabbed through a dozen header links on every page; the statistics' area
    select was as narrow as its shortest names."""
    from selenium.webdriver.common.keys import Keys

    for lang, words in (("zh-CN", "\u8df3\u5230\u6b63\u6587"), ("en", "Skip to the content")):
        browser.sign_in(staff["supervisor"], lang=lang)
        browser.go(f"/ui/statistics?lang={lang}")
        link = browser.find("#skip-link")
        assert link.size["width"] <= 1 and link.size["height"] <= 1  # hidden until focused
        browser.find("body").send_keys(Keys.TAB)
        focused = browser.driver.switch_to.active_element
        assert focused.get_attribute("id") == "skip-link" and focused.text == words
        assert focused.size["width"] > 20 and focused.location["y"] < 100  # seen, at the top
        browser.shot(f"review-nov29-skip-link-{lang}")
        focused.send_keys(Keys.ENTER)
        assert browser.driver.switch_to.active_element.get_attribute("id") == "main"
        assert browser.find("#f-area").size["width"] >= 200
