"""The work queue, dispute cases and committees in a real browser (headless Chromium): a
dispute logged, assigned, resolved and closed by the roles that may, each page showing the new
state and only the actions the state and the role allow; refusals in words, storing nothing."""

from __future__ import annotations

import re
from typing import Any

import pytest

from application.services import Services
from tests.conftest import Browser, define_area

LANGS = ["zh-CN", "en"]
WORDS = {
    "zh-CN": {"queue": "待办案件", "assigned": "已分派", "resolved": "已解决", "closed": "已结案",
              "logged": "已登记", "wages": "劳资纠纷", "future": "今天"},
    "en": {"queue": "Work queue", "assigned": "Assigned", "resolved": "Resolved", "closed": "Closed",
           "logged": "Logged", "wages": "Wages and labour", "future": "today"},
}
ACTION_BUTTONS = ("assign", "note", "mediation", "escalate", "resolve", "close", "reopen")


def buttons(browser: Browser) -> set[str]:
    """The action forms the case page offers."""
    found = {str(b.get_attribute("id")) for b in browser.find_all("#case-actions button[id$='-submit']")}
    return {name for name in ACTION_BUTTONS if f"{name}-submit" in found}


def case_id_of(browser: Browser) -> str:
    found = re.search(r"/ui/cases/([0-9a-f-]{36})", browser.driver.current_url)
    assert found, (browser.driver.current_url, [p.text for p in browser.find_all(".problem, .error")])
    return found.group(1)


def log_dispute(browser: Browser, area: str, description: str) -> str:
    browser.go("/ui/cases")
    browser.submit("log-dispute")
    browser.choose("category", "wages_and_labour")
    browser.fill("description", description)
    browser.fill("party_name_1", "远大印染有限公司")
    browser.choose("party_kind_1", "employer")
    browser.choose("area", area)
    browser.choose("priority", "high")
    browser.submit("log-submit")
    return case_id_of(browser)


@pytest.mark.parametrize("lang", LANGS)
def test_a_dispute_is_logged_assigned_resolved_and_closed(browser: Browser, staff: dict[str, str],
                                                         services: Services, lang: str) -> None:
    words = WORDS[lang]
    area = define_area(services, "纠纷")
    # a caseworker logs a dispute and sees it in the queue
    browser.sign_in(staff["caseworker"], lang=lang)
    assert browser.lang() == lang
    case_id = log_dispute(browser, area, f"三个月工资未发 {lang}")
    assert browser.find("#case-status").get_attribute("data-status") == "logged"
    assert words["logged"] in browser.find("#case-status").text
    assert "assign" not in buttons(browser)  # assigning is a supervisor's
    assert {"resolve", "note", "escalate"} <= buttons(browser)
    assert browser.find_all("#case-timeline tr[data-event='Logged']")
    browser.go(f"/ui/cases?area={area}")
    row = browser.find(f"#case-queue tr[data-case-id='{case_id}']")
    assert words["wages"] in row.text and "2026-11-26" in row.text  # a wage case: response due in one day
    assert words["queue"] in browser.text()
    browser.shot(f"cases-queue-{lang}")

    # a supervisor assigns it to the caseworker
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go(f"/ui/cases/{case_id}")
    assert {"assign", "resolve", "note", "escalate"} <= buttons(browser)
    assert "close" not in buttons(browser) and "reopen" not in buttons(browser)
    browser.choose("assignee", staff["caseworker"])
    browser.submit("assign-submit")
    assert browser.find("#case-status").get_attribute("data-status") == "assigned"
    assert words["assigned"] in browser.find("#case-status").text
    assert staff["caseworker"] in browser.find("#case-assignee").text
    assert "mediation" in buttons(browser)  # an assigned case may have a mediation
    browser.go(f"/ui/cases?assignee={staff['caseworker']}")
    assert browser.find_all(f"#case-queue tr[data-case-id='{case_id}'][data-status='assigned']")

    # the caseworker resolves it
    browser.sign_in(staff["caseworker"], lang=lang)
    browser.go(f"/ui/cases/{case_id}")
    browser.choose("outcome", "mediated_agreement")
    browser.fill("amount_recovered", "12000.00")
    browser.submit("resolve-submit")
    assert browser.find("#case-status").get_attribute("data-status") == "resolved"
    assert words["resolved"] in browser.find("#case-status").text
    assert buttons(browser) == {"note"}  # closing and reopening are a supervisor's
    browser.shot(f"cases-resolved-{lang}")

    # the supervisor closes it
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go(f"/ui/cases/{case_id}")
    assert {"close", "reopen", "note"} == buttons(browser)
    browser.submit("close-submit")
    assert browser.find("#case-status").get_attribute("data-status") == "closed"
    assert words["closed"] in browser.find("#case-status").text
    assert buttons(browser) == {"reopen"}  # no resolve, no close
    events = [r.get_attribute("data-event") for r in browser.find_all("#case-timeline tbody tr")]
    assert events == ["Logged", "Assigned", "Resolved", "Closed"]
    browser.shot(f"cases-closed-{lang}")
    browser.go(f"/ui/cases?area={area}")
    assert not browser.find_all(f"#case-queue tr[data-case-id='{case_id}']")  # closed: off the queue


@pytest.mark.parametrize("lang", LANGS)
def test_a_refused_dispute_shows_the_rule_keeps_the_typing_and_stores_nothing(
    browser: Browser, staff: dict[str, str], services: Services, stored: Any, lang: str
) -> None:
    area = define_area(services, "拒绝")
    browser.sign_in(staff["caseworker"], lang=lang)
    browser.go("/ui/cases/new")
    browser.choose("category", "housing")
    browser.fill("description", "房东扣押押金")
    browser.fill("party_name_1", "王房东")
    browser.choose("party_kind_1", "landlord")
    browser.choose("area", area)
    browser.driver.execute_script("document.getElementById('f-occurred_on').value = '2027-01-05'")
    before = stored()
    browser.submit("log-submit")
    problem = browser.find(".problem")
    assert problem.get_attribute("data-rule") == "effective_date_in_future"
    assert WORDS[lang]["future"] in problem.text
    assert browser.find(".error[data-field='occurred_on']")
    assert browser.find("#f-description").get_attribute("value") == "房东扣押押金"
    assert browser.find("#f-party_name_1").get_attribute("value") == "王房东"
    assert before.unchanged()
    browser.shot(f"cases-refused-{lang}")


@pytest.mark.parametrize("lang", LANGS)
def test_an_auditor_reads_the_queue_and_a_case_but_sees_no_actions(
    browser: Browser, staff: dict[str, str], services: Services, lang: str
) -> None:
    area = define_area(services, "审计")
    browser.sign_in(staff["caseworker"], lang=lang)
    case_id = log_dispute(browser, area, "邻里噪音")
    browser.sign_in(staff["auditor"], lang=lang)
    browser.go(f"/ui/cases?area={area}")
    assert browser.find_all(f"#case-queue tr[data-case-id='{case_id}']")
    assert not browser.find_all("#log-dispute")
    browser.go(f"/ui/cases/{case_id}")
    assert buttons(browser) == set() and browser.find("#no-actions")
    assert not browser.find_all("#case-actions form")
    assert browser.find_all("#case-timeline tr[data-event='Logged']")


def committee_with_a_case(services: Services, supervisor: Any, caseworker: Any) -> tuple[str, str, list[str]]:
    """A committee of three (quorum two) in an area of its own, and an open case there."""
    area = define_area(services, "委员会")
    made = supervisor.post("/committees", {"name": "银杏社区外来人口管理委员会", "area": area,
                                           "established_on": "2026-01-10",
                                           "members": [{"name": "王芳", "role": "chair"}, {"name": "李伟"},
                                                       {"name": "张敏"}]})
    assert made.status_code == 201, made.text
    case = caseworker.post("/disputes", {"category": "neighbours", "description": "夜间噪音",
                                         "parties": [{"name": "12号房", "kind": "other"}], "area": area,
                                         "occurred_on": "2026-11-01"})
    assert case.status_code == 201, case.text
    committee = supervisor.get(f"/committees/{made.json()['id']}").json()
    return made.json()["id"], case.json()["id"], [m["member_id"] for m in committee["members"]]


def set_date(browser: Browser, css: str, value: str) -> None:
    browser.driver.execute_script("document.querySelector(arguments[0]).value = arguments[1]", css, value)


@pytest.mark.parametrize("lang", LANGS)
def test_a_meeting_is_scheduled_with_an_open_case_and_its_minutes_have_a_quorum(
    browser: Browser, staff: dict[str, str], services: Services, supervisor: Any, caseworker: Any, stored: Any,
    lang: str
) -> None:
    committee_id, case_id, members = committee_with_a_case(services, supervisor, caseworker)
    browser.sign_in(staff["caseworker"], lang=lang)
    browser.go("/ui/committees")
    assert browser.lang() == lang
    assert browser.find_all(f"#committee-list tr[data-committee-id='{committee_id}']")
    browser.go(f"/ui/committees/{committee_id}")
    assert "2" in browser.find("#quorum").text and "3" in browser.find("#quorum").text
    set_date(browser, "#f-scheduled_on", "2026-11-24")
    browser.click(f"agenda-case-{case_id}")
    browser.fill("title_1", "垃圾清运排班")
    browser.choose("topic_1", "sanitation")
    browser.submit("schedule-submit")
    upcoming = browser.find("#upcoming .meeting")
    assert upcoming.find_elements("css selector", f"a[data-dispute-id='{case_id}']")
    assert ("环境卫生" if lang == "zh-CN" else "Sanitation") in upcoming.text

    # one of three present cannot decide: refused in words, nothing stored
    browser.click(f"attend-{members[0]}")
    browser.fill("decision_1", "限期整改")
    before = stored()
    browser.submit("minutes-submit-1")
    assert browser.find(".problem").get_attribute("data-rule") == "no_quorum"
    assert before.unchanged()
    assert browser.find(f"#attend-{members[0]}").is_selected()  # the ticks are kept
    # two of three: a quorum
    browser.click(f"attend-{members[1]}")
    browser.submit("minutes-submit-1")
    past = browser.find("#past-meetings tbody tr")
    assert "限期整改" in past.text and browser.find_all("#past-meetings .quorum-yes")
    assert "王芳" in past.text and "李伟" in past.text and "张敏" not in past.text
    assert browser.find("#no-upcoming")
    browser.shot(f"committee-minutes-{lang}")
    browser.go(f"/ui/cases/{case_id}")
    assert browser.find_all("#case-timeline tr[data-event='CommitteeDecisionRecorded']")
