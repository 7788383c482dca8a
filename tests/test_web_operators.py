"""The operators' pages, over HTTP and in a real browser (headless Chromium): a supervisor
registers an operator, hands it a site; staff file its yearly report and inspect the site; the
page shows the reinvestment ratio and the site's sanitation trend, and the contact person only
to those who may read it (in the access log). A refused form keeps what was typed and stores
nothing; an auditor reads without a single form; the contact person is changed and erased in
the browser, in zh-CN and in English."""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import httpx
import pytest

from application.services import Services
from tests.conftest import Api, Browser
from tests.factories import site_body, unique, unique_area
from tests.test_web_sites import Html, web

__all__ = ["web"]  # the signed-in HTTP sessions' fixture, shared with the sites' pages
LANGS = ["zh-CN", "en"]
REPORT = {"year": "2025", "income_from_site": "200,000.00", "reinvested_management": "20000.00",
          "reinvested_sanitation": "10000.00", "reinvested_facilities": "30000.00"}


def new_operator(api: Api, **overrides: Any) -> str:
    body = {"type": "village_cooperative", "name": unique("沿海村股份合作社"), "contact": "陈杰 13800000000",
            "area": "xinqi", **overrides}
    made = api.post("/operators", body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def new_site(api: Api, **overrides: Any) -> str:
    made = api.post("/sites", site_body(name=unique("银杏社区"), **overrides))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def landed(response: httpx.Response, operator_id: str) -> str:
    assert response.status_code == 303, response.text[:2000]
    location = response.headers["location"]
    assert location.startswith(f"/ui/operators/{operator_id}?after="), location
    return location


def test_a_supervisor_registers_an_operator_and_staff_keep_its_record(web: Any, supervisor: Api,
                                                                       services: Services) -> None:
    boss = web("supervisor")
    assert "register-operator" in boss.page("/ui/operators").by_id
    name = unique("沿海村股份合作社")
    made = boss.post("/ui/operators/new", {"type": "village_cooperative", "name": name, "contact": "陈杰 13800000000",
                                           "area": "xinqi"})
    assert made.status_code == 303, made.text[:2000]
    found = re.fullmatch(r"/ui/operators/([0-9a-f-]{36})\?after=\d+", made.headers["location"])
    assert found, made.headers["location"]
    operator = found.group(1)
    assert boss.page(made.headers["location"]).text("operator-name").startswith(name)
    site = new_site(supervisor)
    landed(boss.post(f"/ui/operators/{operator}/sites", {"site_id": site, "assigned_on": "2026-01-01"}), operator)

    worker = web("caseworker")
    page = worker.page(f"/ui/operators/{operator}")
    assert {"report-form", "inspect-form"} <= page.post_forms()
    assert not {"assign-form", "release-form", "contact-form", "erase-form"} & page.post_forms()  # supervisors'
    landed(worker.post(f"/ui/operators/{operator}/reports", REPORT), operator)
    for day, score in (("2026-03-01", 62), ("2026-09-01", 81)):
        location = landed(worker.post(f"/ui/operators/{operator}/inspections", {
            "site_id": site, "inspected_on": day, "score": str(score), "findings": "垃圾清运及时"}), operator)

    document = supervisor.get(f"/operators/{operator}").json()
    assert (document["name"], document["contact"], document["inspections"]) == (name, "陈杰 13800000000", 2)
    assert document["reports"][0]["reinvestment_ratio"] == "0.3000"
    shown = worker.page(f"{location}&lang=en")  # after the last inspection: the trend has it
    assert shown.text("operator-name").startswith(name)
    assert shown.text("operator-contact") == "陈杰 13800000000"
    assert "30.0%" in shown.text("operator-reports")
    assert "+19" in shown.text("operator-sites") and "62" in shown.text("operator-sites")
    with services.pool.connection() as conn:  # the contact person was read: each page view is logged
        reads = conn.execute("SELECT user_id FROM access_log WHERE detail = %s AND route = %s",
                             (operator, f"GET /ui/operators/{operator}")).fetchall()
    assert {r["user_id"] for r in reads} == {"web-supervisor", "web-caseworker"}

    assert worker.page(f"/ui/sites/{site}").by_id["site-operator-record"]["href"] == f"/ui/operators/{operator}"
    listed = worker.page(f"/ui/operators?area=xinqi&type=village_cooperative&after={document['version']}")
    assert any(name in text for text in listed.texts.values())


def test_a_refused_form_keeps_the_typing_and_stores_nothing(web: Any, supervisor: Api, stored: Any) -> None:
    operator, other, site = new_operator(supervisor), new_operator(supervisor), new_site(supervisor)
    supervisor.post(f"/operators/{other}/sites", {"site_id": site, "assigned_on": "2026-01-01"})
    boss = web("supervisor")
    before = stored()

    taken = boss.post(f"/ui/operators/{operator}/sites?lang=en", {"site_id": site, "assigned_on": "2026-02-01"})
    assert taken.status_code == 409
    page = Html(taken.text)
    assert page.problems[0] == ("site_run_by_another_operator",
                                "Another operator runs this site; it must release it first.")
    assert page.value("assign-assigned_on") == "2026-02-01"

    bad_money = boss.post(f"/ui/operators/{operator}/reports", {**REPORT, "reinvested_sanitation": "12.345"})
    assert bad_money.status_code == 422
    page = Html(bad_money.text)
    assert page.problems[0][0] == "money_format" and "reinvested_sanitation" in page.errors
    assert page.value("report-reinvested_sanitation") == "12.345"
    assert page.value("report-income_from_site") == "200,000.00"

    future = boss.post(f"/ui/operators/{operator}/reports", {**REPORT, "year": "2027"})
    assert future.status_code == 422 and Html(future.text).problems[0][0] == "report_year_out_of_range"
    erasure = boss.post(f"/ui/operators/{operator}/contact-erasure", {"legal_basis": "because", "note": "x",
                                                                         "confirm": "yes"})
    assert erasure.status_code == 422 and Html(erasure.text).problems[0][0] == "legal_basis"
    new = boss.post("/ui/operators/new", {"type": "landlord", "name": "x", "contact": "y", "area": "xinqi"})
    assert new.status_code == 422 and Html(new.text).value("f-name") == "x"
    assert before.unchanged()


def test_an_auditor_reads_every_operator_page_and_has_no_form(web: Any, supervisor: Api, stored: Any) -> None:
    operator = new_operator(supervisor)
    auditor = web("auditor")
    assert "register-operator" not in auditor.page("/ui/operators").by_id
    page = auditor.page(f"/ui/operators/{operator}")
    assert page.post_forms() == set()
    assert page.text("operator-contact") == "陈杰 13800000000"  # staff read personal data, logged
    assert auditor.page(f"/ui/history/operators/{operator}").texts
    before = stored()
    for path, data in ((f"/ui/operators/{operator}/reports", REPORT),
                       (f"/ui/operators/{operator}/contact", {"contact": "x", "changed_on": "2026-11-01"}),
                       ("/ui/operators/new", {"type": "employer", "name": "x", "contact": "y", "area": "xinqi"})):
        assert auditor.post(path, data).status_code == 403
    assert auditor.client.get("/ui/operators/new").status_code == 403
    assert auditor.client.get(f"/ui/operators/{UUID(int=7)}").status_code == 404
    assert before.unchanged()


def test_the_list_sorts_by_pinyin_pages_on_and_survives_a_bad_link(web: Any, supervisor: Api,
                                                                   services: Services) -> None:
    area = unique_area("opweb")
    for name in ("银杏村股份合作社", "张家物业公司", "安居村股份合作社"):
        new_operator(supervisor, name=name, area=area)
    last = new_operator(supervisor, name="白沙村股份合作社", area=area, type="employer")
    version = supervisor.get(f"/operators/{last}").json()["version"]
    worker = web("caseworker")
    response = worker.client.get(f"/ui/operators?area={area}&after={version}")
    names = re.findall(r'<a href="/ui/operators/[0-9a-f-]{36}">([^<]+)</a>', response.text)
    assert names == ["安居村股份合作社", "白沙村股份合作社", "银杏村股份合作社", "张家物业公司"]
    employers = re.findall(r'<a href="/ui/operators/[0-9a-f-]{36}">([^<]+)</a>',
                           worker.client.get(f"/ui/operators?area={area}&type=employer").text)
    assert employers == ["白沙村股份合作社"]
    bad = worker.client.get(f"/ui/operators?area={area}&cursor=not-a-cursor")
    assert bad.status_code == 200 and "operators-notice" in Html(bad.text).by_id


@pytest.mark.parametrize("lang", LANGS)
def test_a_supervisor_changes_and_erases_the_contact_person_in_the_browser(
        browser: Browser, staff: dict[str, str], supervisor: Api, stored: Any, lang: str) -> None:
    operator = new_operator(supervisor)
    journey = f"operator-contact-{lang}"
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go("/ui/operators")
    assert browser.lang() == lang
    browser.go(f"/ui/operators/{operator}")
    assert browser.find("#operator-contact").text.startswith("陈杰")

    browser.fill("contact-contact", "王丽 13900000001")
    browser.fill("contact-changed_on", "2026-11-01")
    browser.submit("change-contact")
    assert browser.find("#operator-contact").text.startswith("王丽 13900000001")
    browser.shot(f"{journey}-changed")

    # A refusal first: no legal basis chosen (the browser's own check bypassed), nothing stored.
    snapshot = stored()
    browser.driver.execute_script("document.getElementById('erase-form').noValidate = true")
    browser.fill("erase-note", "申请 2026-117")
    browser.submit("erase-contact")
    assert browser.find(".problem").get_attribute("data-rule") == "required"
    assert browser.find("#erase-note").get_attribute("value") == "申请 2026-117"
    assert snapshot.unchanged()

    # The box "I understand this cannot be undone" left empty (the browser's check bypassed again):
    # the server refuses it too, keeps what was typed and stores nothing.
    browser.choose("legal_basis", "data_subject_request")
    browser.driver.execute_script("document.getElementById('erase-form').noValidate = true")
    browser.submit("erase-contact")
    assert browser.find(".problem").get_attribute("data-rule") == "confirmation_required"
    assert browser.find("#erase-confirm").get_attribute("aria-invalid") == "true"
    assert browser.find("#erase-note").get_attribute("value") == "申请 2026-117"
    assert snapshot.unchanged()
    browser.shot(f"{journey}-unconfirmed")

    browser.click("erase-confirm")
    browser.submit("erase-contact")
    contact = browser.find("#operator-contact").text
    assert ("[已删除]" if lang == "zh-CN" else "[erased]") in contact
    assert browser.find("#contact-erased")
    assert not browser.find_all("#erase-form")  # erased once: the form is gone
    browser.shot(journey)
    document = supervisor.get(f"/operators/{operator}").json()
    assert document["contact"] in ("[已删除]", "[erased]") and document["contact_erased_on"]

    browser.go(f"/ui/history/operators/{operator}")
    rows = browser.find_all("#history tbody tr")
    assert [row.get_attribute("data-event") for row in rows] == [
        "Operator.Registered", "Operator.ContactChanged", "Operator.ContactErased"]
    words = [cell.text for cell in browser.find_all("#history td.event")]  # in words, not class names
    zh = ["\u767b\u8bb0\u7ecf\u8425\u8005", "\u8054\u7cfb\u4eba\u53d8\u66f4", "\u5220\u9664\u8054\u7cfb\u4eba"]
    assert words == (zh if lang == "zh-CN" else ["Registered", "Contact changed", "Contact erased"])
    browser.shot(f"{journey}-history")


def test_the_language_switch_keeps_the_page_its_filters_and_its_place(web: Any, supervisor: Api) -> None:
    worker = web("caseworker")
    listed = worker.page("/ui/operators?area=xinqi&type=employer&after=12")
    assert listed.by_id["language-switch"]["href"] == "/ui/operators?area=xinqi&type=employer&lang=en"
    bad = worker.page("/ui/operators?area=xinqi&cursor=abc")  # a cursor the page refused is not carried on
    assert bad.by_id["language-switch"]["href"] == "/ui/operators?area=xinqi&lang=en"
    operator = new_operator(supervisor)
    # After a refused form the page answers the post; the switch goes back to the page the form was on.
    refused = worker.client.post(f"/ui/operators/{operator}/reports", data={**REPORT, "year": "1999",
                                                                           "csrf": worker.csrf},
                                 headers={"Referer": f"{worker.client.base_url}/ui/operators/{operator}?lang=en"})
    assert refused.status_code == 422
    assert Html(refused.text).by_id["language-switch"]["href"] == f"/ui/operators/{operator}?lang=en"
