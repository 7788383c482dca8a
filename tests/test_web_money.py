"""The money pages in a real browser (headless Chromium): a subsidy from application to
payment with two supervisors (four eyes), the ledger, the statistics charts, and an
auditor's read-only history of a record with recorded and effective times side by side."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from application.services import Services
from tests.conftest import WEB_PASSWORD, Api, Browser
from tests.factories import resident_body, site_body, unique

LANGS = ["zh-CN", "en"]


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def program_and_site(supervisor: Api, budget: str = "2000000.00") -> tuple[str, str, str]:
    name = unique("社区设施")
    program = created(supervisor.post("/subsidy-programs", {
        "name": name, "purpose": "facilities", "fiscal_year": 2026, "budget": budget,
        "modes": ["one_off", "phased", "reward_in_lieu"]}))
    site = created(supervisor.post("/sites", site_body(name=unique("银杏社区"))))
    return program, site, name


def threshold(services: Services) -> Decimal:
    return Decimal(services.app.SUBSIDY_TWO_APPROVALS_THRESHOLD)


def post_forms(browser: Browser) -> list[Any]:
    """The page's forms that change something (method post), other than signing out."""
    return [f for f in browser.find_all("form")
            if (f.get_attribute("method") or "").lower() == "post" and "/logout" not in f.get_attribute("action")]


@pytest.mark.parametrize("lang", LANGS)
def test_a_subsidy_is_applied_for_approved_by_two_supervisors_paid_and_in_the_ledger(
        browser: Browser, staff: dict[str, str], supervisor: Api, services: Services, lang: str) -> None:
    program, site, program_name = program_and_site(supervisor)
    amount = threshold(services)  # at the threshold: two approvals by different supervisors
    journey = f"subsidy-{lang}"

    # A caseworker applies.
    browser.sign_in(staff["caseworker"], lang=lang)
    browser.go("/ui/subsidies")
    assert browser.lang() == lang
    browser.submit("new-application")
    browser.choose("program_id", program)
    browser.choose("site_id", site)
    browser.fill("amount", f"{amount:.2f}")
    browser.choose("mode", "one_off")
    browser.fill("justification", "幼儿园教室 kindergarten classrooms")
    browser.shot(f"{journey}-1-apply")
    browser.submit("submit-application")
    assert "/ui/subsidies/" in browser.driver.current_url, browser.text()
    application = browser.driver.current_url.split("/ui/subsidies/")[1].split("?")[0]
    assert browser.find("#application-status").get_attribute("data-status") == "submitted"
    assert ("待审批" if lang == "zh-CN" else "Waiting for approval") in browser.find("#application-status").text
    assert not post_forms(browser)  # the submitter approves nothing
    browser.go("/ui/subsidies")
    assert browser.find(f"#mine tr[data-id='{application}']")

    # The first supervisor approves; the page says a second supervisor is needed.
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go("/ui/subsidies")
    assert browser.find(f"#to-approve tr[data-id='{application}']")
    browser.go(f"/ui/subsidies/{application}")
    browser.fill("note", "现场核实 site visited")
    browser.submit("approve")
    needs_second = "需要第二位主管审批" if lang == "zh-CN" else "needs a second supervisor"
    assert needs_second in browser.find("#needs-second").text
    assert browser.find("#cannot-approve")  # the same supervisor cannot approve again
    assert not browser.find_all("#approve")
    browser.go("/ui/subsidies")
    row = browser.find(f"#to-approve tr[data-id='{application}']")
    assert needs_second in row.text and row.find_elements("css selector", ".approved-by-me")
    browser.shot(f"{journey}-2-first-approval")

    # The second supervisor approves: it takes effect.
    browser.sign_in(staff["supervisor2"], lang=lang)
    browser.go("/ui/subsidies")
    row = browser.find(f"#to-approve tr[data-id='{application}']")
    assert needs_second in row.text and not row.find_elements("css selector", ".approved-by-me")
    browser.go(f"/ui/subsidies/{application}")
    browser.submit("approve")
    assert browser.find("#application-status").get_attribute("data-status") == "approved"
    assert len(browser.find_all("#approvals li")) == 2

    # Finance pays from its queue.
    browser.sign_in(staff["finance"], lang=lang)
    browser.go("/ui/subsidies")
    assert browser.find(f"#to-pay tr[data-id='{application}']")
    browser.fill(f"reference-{application}", unique("FIN"))
    browser.shot(f"{journey}-3-finance")
    browser.submit(f"pay-{application}")
    assert not browser.find_all(f"#to-pay tr[data-id='{application}']")
    browser.go(f"/ui/subsidies/{application}")
    assert browser.find("#application-status").get_attribute("data-status") == "paid"
    assert f"{amount:,.2f}" in browser.find("#paid-total").text

    # The ledger shows it.
    browser.go("/ui/subsidies")
    browser.submit("ledger-link")
    row = browser.find(f"#ledger-programs tr[data-id='{program}']")
    assert program_name in row.text
    assert f"{amount:,.2f}" in row.find_element("css selector", ".paid").text
    assert float(row.find_element("css selector", "meter.paid").get_attribute("value")) > 0
    assert browser.find("#ledger-per-bed")
    browser.shot(f"{journey}-4-ledger")


def test_a_refused_payment_shows_the_rule_keeps_the_values_and_stores_nothing(
        browser: Browser, staff: dict[str, str], supervisor: Api, caseworker: Api, stored: Any) -> None:
    program, site, _ = program_and_site(supervisor)
    application = created(caseworker.post("/subsidy-applications", {
        "program_id": program, "site_id": site, "amount": "1000.00", "mode": "one_off",
        "justification": "a canteen"}))
    assert supervisor.post(f"/subsidy-applications/{application}/approvals", {}).status_code == 200
    browser.sign_in(staff["finance"], lang="en")
    browser.go(f"/ui/subsidies/{application}")
    browser.fill("amount", "1500.00")
    browser.fill("reference", "FIN-TOO-MUCH")
    before = stored()
    browser.submit("pay")
    assert browser.find(".problem").get_attribute("data-rule") == "payment_exceeds_due"
    assert browser.find("[name='reference']").get_attribute("value") == "FIN-TOO-MUCH"
    assert browser.find("[name='amount']").get_attribute("value") == "1500.00"
    assert before.unchanged()


@pytest.mark.parametrize("lang", LANGS)
def test_an_auditor_reads_a_residents_history_with_both_times_and_no_action_buttons(
        browser: Browser, staff: dict[str, str], caseworker: Api, lang: str) -> None:
    resident = created(caseworker.post("/residents", resident_body(registered_on="2026-03-01")))
    browser.sign_in(staff["auditor"], lang=lang)
    browser.go(f"/ui/history/residents/{resident}")
    assert browser.lang() == lang
    rows = browser.find_all("#history tbody tr")
    assert rows
    first = rows[0]
    assert first.find_element("css selector", ".effective").text == "2026-03-01"
    assert first.find_element("css selector", ".recorded").text.startswith("2026-11-25 10:00")
    assert ("生效" if lang == "zh-CN" else "Effective") in browser.find("#history thead").text
    assert not post_forms(browser)
    assert not browser.find_all("main button")
    browser.shot(f"history-auditor-{lang}")
    # Every money page is read-only for the auditor too.
    for path in ("/ui/subsidies", "/ui/ledger", "/ui/statistics"):
        browser.go(path)
        assert not post_forms(browser), path


def test_the_history_page_answers_not_found_and_unknown_kinds(base_url: str, staff: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url) as client:
        login = client.get("/login")
        token = login.text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"username": staff["auditor"], "password": WEB_PASSWORD, "csrf": token})
        assert client.get("/ui/history/planets/00000000-0000-0000-0000-000000000000").status_code == 404
        assert client.get("/ui/history/residents/00000000-0000-0000-0000-000000000000").status_code == 404


@pytest.mark.parametrize("lang", LANGS)
def test_the_statistics_page_draws_its_charts(browser: Browser, staff: dict[str, str], caseworker: Api,
                                              lang: str) -> None:
    caseworker.post("/residents", resident_body(registered_on="2026-06-10"))
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go("/ui/statistics?from=2026-01&to=2026-11")
    assert browser.lang() == lang
    charts = browser.find_all(".chart img")
    assert len(charts) >= 5
    for chart in charts:  # each SVG loaded and drawn
        assert browser.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", chart)
    assert browser.find("#statistics-table tbody tr")
    browser.shot(f"statistics-{lang}")


def test_a_reward_in_lieu_needs_its_target_on_approval_and_a_third_person_verifies_it(
        browser: Browser, staff: dict[str, str], supervisor: Api, caseworker: Api, stored: Any) -> None:
    program, site, _ = program_and_site(supervisor)
    application = created(caseworker.post("/subsidy-applications", {
        "program_id": program, "site_id": site, "amount": "8000.00", "mode": "reward_in_lieu",
        "justification": "waste sorted on every floor"}))
    browser.sign_in(staff["supervisor"], lang="zh-CN")
    browser.go(f"/ui/subsidies/{application}")
    assert browser.find("[name='target']") and browser.find("[name='target_due']")
    assert not browser.find_all("#verify")  # an approver never verifies
    browser.driver.execute_script("document.getElementById('f-target').removeAttribute('required')")
    browser.fill("note", "无目标 no target")
    before = stored()
    browser.submit("approve")
    assert browser.find(".problem").get_attribute("data-rule") == "reward_target_required"
    assert "奖补目标" in browser.find(".problem").text
    assert browser.find("[name='note']").get_attribute("value") == "无目标 no target"
    assert before.unchanged()
    browser.fill("target", "每层垃圾分类 waste sorted on every floor")
    browser.driver.execute_script("document.getElementById('f-target_due').value = '2027-06-30'")
    browser.submit("approve")
    assert browser.find("#application-status").get_attribute("data-status") == "approved"
    assert not browser.find_all("#verify")
    browser.sign_in(staff["supervisor2"], lang="en")
    browser.go(f"/ui/subsidies/{application}")
    browser.fill("note", "inspected on every floor")
    browser.submit("verify")
    assert "Outcome verified on" in browser.text()
    browser.sign_in(staff["finance"], lang="en")
    browser.go("/ui/subsidies")
    assert browser.find(f"#to-pay tr[data-id='{application}']")
