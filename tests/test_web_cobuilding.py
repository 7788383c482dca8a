"""Co-building (结对共建) in the web application, over HTTP and in a real browser (headless
Chromium): a supervisor pairs a site with a school, staff record what the partner delivered,
a supervisor ends the pairing; the site's page and the ledger show the contributions beside
the government's subsidies. A refused form shows the rule in words, keeps what was typed and
stores nothing; an auditor reads every page without a single form."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import httpx
import pytest

from tests.conftest import Api, Browser
from tests.factories import site_body, unique, unique_area
from tests.test_web_sites import Html, web

__all__ = ["web"]  # the signed-in HTTP sessions' fixture, shared with the sites' pages
LANGS = ["zh-CN", "en"]


def new_site(api: Api, **overrides: Any) -> str:
    made = api.post("/sites", site_body(name=unique("银杏社区"), **overrides))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def landed(response: httpx.Response, pairing_id: str) -> str:
    assert response.status_code == 303, response.text[:2000]
    location = response.headers["location"]
    assert location.startswith(f"/ui/pairings/{pairing_id}?after="), location
    return location


def agreed(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 303, response.text[:2000]
    found = re.fullmatch(r"/ui/pairings/([0-9a-f-]{36})\?after=\d+", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1), response.headers["location"]


def test_a_site_is_paired_its_partner_delivers_and_the_ledger_shows_it_beside_the_subsidies(
        web: Any, supervisor: Api, caseworker: Api, as_role: Any) -> None:
    area = unique_area("webpair")
    site = new_site(supervisor, area=area)
    program = supervisor.post("/subsidy-programs", {"name": unique("共建对照"), "purpose": "facilities",
                                                    "fiscal_year": 2026, "budget": "900000.00",
                                                    "modes": ["one_off"]}).json()["id"]
    application = caseworker.post("/subsidy-applications", {"program_id": program, "site_id": site,
                                                            "amount": "9000.00", "mode": "one_off",
                                                            "justification": "食堂"}).json()["id"]
    assert supervisor.post(f"/subsidy-applications/{application}/approvals", {}).status_code == 200
    paid = as_role("finance").post(f"/subsidy-applications/{application}/payments",
                                   {"amount": "9000.00", "reference": unique("FIN"), "paid_on": "2026-11-25"})
    assert paid.status_code == 200, paid.text

    boss = web("supervisor")
    listed = boss.page(f"/ui/pairings?site_id={site}")
    assert "agree-form" in listed.post_forms()
    assert listed.by_id["agree-site_id"]["tag"] == "select"
    partner = unique("宁波职业技术学院")
    pairing, location = agreed(boss.post("/ui/pairings/new", {
        "site_id": site, "partner_type": "school", "partner_name": partner, "agreed_on": "2026-03-01"}))
    shown = boss.page(location)
    assert shown.text("pairing-name").startswith(partner) and shown.text("pairing-type") == "学校"
    assert shown.by_id["pairing-site"]["href"] == f"/ui/sites/{site}"
    assert {"contribute-form", "end-form"} <= shown.post_forms()

    worker = web("caseworker")
    page = worker.page(f"/ui/pairings/{pairing}")
    assert "contribute-form" in page.post_forms() and "end-form" not in page.post_forms()  # supervisors end
    landed(worker.post(f"/ui/pairings/{pairing}/contributions", {
        "delivered_on": "2026-04-10", "kind": "money", "description": "助学金", "value_yuan": "3,000.00"}), pairing)
    location = landed(worker.post(f"/ui/pairings/{pairing}/contributions", {
        "delivered_on": "2026-05-01", "kind": "training", "description": "急救培训", "value_yuan": ""}), pairing)
    page = worker.page(f"{location}&lang=en")
    assert page.text("pairing-type") == "School"
    assert page.text("pairing-total") == "2 contributions, ¥3,000.00 in value"
    assert "Training" in page.text("pairing-contributions") and "¥3,000.00" in page.text("pairing-contributions")

    document = supervisor.get(f"/pairings/{pairing}").json()
    assert (document["partner_name"], document["total_value"], len(document["contributions"])) == (
        partner, "3000.00", 2)
    after = location.split("after=")[1]
    assert caseworker.get("/pairings", params={"after": after}).headers["X-Read-Consistent"] == "true"

    site_page = worker.page(f"/ui/sites/{site}")
    assert partner in site_page.text("site-pairings") and "¥3,000.00" in site_page.text("site-pairings")
    assert site_page.by_id["site-pairings-link"]["href"] == f"/ui/pairings?site_id={site}"
    ledger = boss.client.get(f"/ui/ledger?fiscal_year=2026&after={after}").text
    row = re.search(rf'<tr class="site-support" data-id="{site}">(.*?)</tr>', ledger, re.S)
    assert row, Html(ledger).text("ledger-by-site")
    cells = [re.sub(r"<[^>]+>|\s+", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)]
    assert cells[1:5] == ["¥9,000.00", "¥9,000.00", "2", "¥3,000.00"], cells
    assert cells[6] == "25%"  # 3,000 of 3,000 + 9,000

    location = landed(boss.post(f"/ui/pairings/{pairing}/ending", {"ended_on": "2026-10-31", "reason": "学校迁址",
                                                                       "confirm": "yes"}),
                      pairing)
    ended = boss.page(location)
    assert "pairing-ended" in ended.by_id and ended.post_forms() == set()  # nothing more under an ended pairing
    history = boss.page(f"/ui/history/pairings/{pairing}")
    assert history.texts
    active = worker.page(f"/ui/pairings?site_id={site}&active_on=2026-11-01")
    assert partner not in active.text("pairings")
    assert partner in worker.page(f"/ui/pairings?site_id={site}&active_on=2026-06-01").text("pairings")


def test_a_refused_pairing_form_keeps_the_typing_and_stores_nothing(web: Any, supervisor: Api, caseworker: Api,
                                                                    stored: Any) -> None:
    site = new_site(supervisor)
    pairing = supervisor.post("/pairings", {"site_id": site, "partner_type": "enterprise",
                                            "partner_name": unique("申洲针织"), "agreed_on": "2026-03-01"}).json()["id"]
    boss, worker = web("supervisor"), web("caseworker")
    before = stored()

    money = worker.post(f"/ui/pairings/{pairing}/contributions?lang=en", {
        "delivered_on": "2026-04-01", "kind": "money", "description": "慰问金", "value_yuan": ""})
    assert money.status_code == 422
    page = Html(money.text)
    assert page.problems[0] == ("money_contribution_without_value",
                                "A contribution of money gives its value in yuan.")
    assert "value_yuan" in page.errors
    assert page.value("contribute-description") == "慰问金" and page.value("contribute-delivered_on") == "2026-04-01"

    early = worker.post(f"/ui/pairings/{pairing}/contributions?lang=zh-CN", {
        "delivered_on": "2026-02-01", "kind": "goods", "description": "图书", "value_yuan": "600"})
    assert early.status_code == 409  # a rule of the record's state, as the API answers it
    assert Html(early.text).problems[0] == ("delivered_before_agreed", "投入日期不能早于结对日期。")
    bad_value = worker.post(f"/ui/pairings/{pairing}/contributions", {
        "delivered_on": "2026-04-01", "kind": "goods", "value_yuan": "12.345"})
    assert bad_value.status_code == 422 and Html(bad_value.text).problems[0][0] == "money_format"
    assert Html(bad_value.text).value("contribute-value_yuan") == "12.345"

    nameless = boss.post("/ui/pairings/new", {"site_id": site, "partner_type": "unit", "partner_name": "",
                                              "agreed_on": "2026-03-01"})
    assert nameless.status_code == 422
    page = Html(nameless.text)
    assert page.problems[0][0] == "required" and "partner_name" in page.errors
    assert page.value("agree-agreed_on") == "2026-03-01"
    future = boss.post("/ui/pairings/new", {"site_id": site, "partner_type": "unit", "partner_name": "海关",
                                            "agreed_on": "2099-01-01"})
    assert future.status_code == 422 and Html(future.text).problems[0][0] == "effective_date_in_future"
    assert Html(future.text).value("agree-partner_name") == "海关"
    unknown = boss.post("/ui/pairings/new", {"site_id": str(UUID(int=5)), "partner_type": "unit",
                                             "partner_name": "海关", "agreed_on": "2026-03-01"})
    assert unknown.status_code == 422 and "site_id" in Html(unknown.text).errors
    church = boss.post("/ui/pairings/new", {"site_id": site, "partner_type": "church", "partner_name": "x",
                                            "agreed_on": "2026-03-01"})
    assert church.status_code == 422 and Html(church.text).problems[0][0] == "partner_type_unknown"
    too_early = boss.post(f"/ui/pairings/{pairing}/ending", {"ended_on": "2026-01-01", "reason": "x", "confirm": "yes"})
    assert too_early.status_code == 409 and Html(too_early.text).problems[0][0] == "ended_before_agreed"
    assert before.unchanged()


def test_an_auditor_reads_the_pairings_without_a_form_and_may_not_post(web: Any, supervisor: Api,
                                                                       stored: Any) -> None:
    site = new_site(supervisor)
    pairing = supervisor.post("/pairings", {"site_id": site, "partner_type": "enterprise",
                                            "partner_name": unique("申洲针织"), "agreed_on": "2026-03-01"}).json()["id"]
    auditor = web("auditor")
    assert auditor.page("/ui/pairings").post_forms() == set()
    assert auditor.page(f"/ui/pairings/{pairing}").post_forms() == set()
    assert auditor.page(f"/ui/history/pairings/{pairing}").texts
    before = stored()
    for path, data in ((f"/ui/pairings/{pairing}/contributions", {"delivered_on": "2026-04-01", "kind": "labour"}),
                       (f"/ui/pairings/{pairing}/ending", {"ended_on": "2026-04-01", "reason": "x"}),
                       ("/ui/pairings/new", {"site_id": site, "partner_type": "unit", "partner_name": "x",
                                             "agreed_on": "2026-03-01"})):
        assert auditor.post(path, data).status_code == 403
    refused = web("caseworker").post("/ui/pairings/new", {"site_id": site, "partner_type": "unit",
                                                          "partner_name": "x", "agreed_on": "2026-03-01"})
    assert refused.status_code == 403  # supervisors agree pairings
    assert auditor.client.get(f"/ui/pairings/{UUID(int=7)}").status_code == 404
    bad = auditor.client.get("/ui/pairings?cursor=not-a-cursor")
    assert bad.status_code == 200 and "pairings-notice" in Html(bad.text).by_id
    assert before.unchanged()


@pytest.mark.parametrize("lang", LANGS)
def test_a_supervisor_pairs_a_site_and_a_caseworker_records_a_contribution_in_the_browser(
        browser: Browser, staff: dict[str, str], supervisor: Api, stored: Any, lang: str) -> None:
    site = new_site(supervisor)
    journey = f"cobuilding-{lang}"
    partner = unique("申洲针织")
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go(f"/ui/pairings?site_id={site}")
    assert browser.lang() == lang
    browser.choose("site_id", site)
    browser.choose("partner_type", "enterprise")
    browser.fill("agree-partner_name", partner)
    browser.fill("agree-agreed_on", "2026-03-01")
    browser.submit("agree-pairing")
    assert browser.find("#pairing-name").text.startswith(partner)
    pairing = browser.driver.current_url.split("/ui/pairings/")[1].split("?")[0]
    browser.shot(f"{journey}-agreed")

    browser.sign_in(staff["caseworker"], lang=lang)
    browser.go(f"/ui/pairings/{pairing}")
    snapshot = stored()  # a refusal first: money without its value
    browser.fill("contribute-delivered_on", "2026-04-10")
    browser.choose("kind", "money")
    browser.fill("contribute-description", "助学金")
    browser.submit("record-contribution")
    assert browser.find(".problem").get_attribute("data-rule") == "money_contribution_without_value"
    assert browser.find("#contribute-description").get_attribute("value") == "助学金"
    assert snapshot.unchanged()
    browser.fill("contribute-value_yuan", "5000")
    browser.submit("record-contribution")
    assert "¥5,000.00" in browser.find("#pairing-contributions").text
    assert not browser.find_all("#end-form")  # supervisors end a pairing
    browser.shot(journey)

    browser.go(f"/ui/sites/{site}")
    assert partner in browser.find("#site-pairings").text
    browser.go("/ui/ledger#ledger-cobuilding")
    assert browser.find(f"#ledger-by-site tr[data-id='{site}']")
    browser.shot(f"{journey}-ledger")
