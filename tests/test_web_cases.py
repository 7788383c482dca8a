"""The work queue, dispute cases and committees in a real browser (headless Chromium): a
dispute logged, assigned, resolved and closed by the roles that may, each page showing the new
state and only the actions the state and the role allow; refusals in words, storing nothing.
The queue a page at a time over HTTP: overdue first, every case once, filters kept."""

from __future__ import annotations

import contextlib
import html
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.web.pages.cases import PAGE_SIZE, queue_page
from application.services import Services
from projections.disputes import CaseFilter
from projections.pages import BadCursor
from tests.conftest import NOW, WEB_PASSWORD, Api, Browser, Clock, define_area

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


# -- the queue a page at a time ----------------------------------------------------------------------
@contextlib.contextmanager
def signed_in(base_url: str, user: str, lang: str = "en") -> Iterator[httpx.Client]:
    """An HTTP client with a web session of ``user``."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.get(f"/login?lang={lang}")
        token = login.text.split('name="csrf" value="')[1].split('"')[0]
        signed = client.post("/login", data={"username": user, "password": WEB_PASSWORD, "csrf": token})
        assert signed.status_code == 303, signed.text
        yield client


def queue_rows(page: str) -> list[tuple[str, bool]]:
    """The queue's rows as (case id, overdue), in the order shown."""
    found = re.findall(r'<tr class="(overdue)?" data-case-id="([0-9a-f-]{36})"', page)
    return [(case_id, bool(overdue)) for overdue, case_id in found]


def pager_link(page: str, kind: str) -> str | None:
    found = re.search(rf'<a [^>]*class="[^"]*\bpager-{kind}\b[^"]*"[^>]*href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def log_case(api: Api, area: str, category: str = "neighbours") -> tuple[str, int]:
    made = api.post("/disputes", {"category": category, "description": "楼道堆物", "area": area,
                                  "parties": [{"name": "3号楼住户", "kind": "other"}], "occurred_on": "2026-10-01"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"]), int(made.json()["position"])


def queue_in_parts(clock: Clock, caseworker: Api, supervisor: Api, area: str, fresh: int
                   ) -> tuple[list[str], list[str], list[str], int]:
    """Cases in ``area``: three logged ten days ago and assigned (not overdue), four wage cases
    logged five days ago and never assigned (overdue), and ``fresh`` logged today; the ids of
    each part and the last position."""
    old, overdue, today = [], [], []
    try:
        clock.now = NOW - timedelta(days=10)
        for _ in range(3):
            case_id, _position = log_case(caseworker, area)
            assigned = supervisor.post(f"/disputes/{case_id}/assignment", {"agency": "street_office"})
            assert assigned.status_code == 200, assigned.text
            old.append(case_id)
        clock.now = NOW - timedelta(days=5)
        for _ in range(4):
            overdue.append(log_case(caseworker, area, "wages_and_labour")[0])
    finally:
        clock.now = NOW
    position = 0
    for _ in range(fresh):
        case_id, position = log_case(caseworker, area)
        today.append(case_id)
    return old, overdue, today, position


def in_parts(shown: list[str], *parts: list[str]) -> bool:
    """``shown`` is each part in turn, every id once (within a part, cases of one day are in
    the order of their ids)."""
    at = 0
    for part in parts:
        if sorted(shown[at:at + len(part)]) != sorted(part):
            return False
        at += len(part)
    return at == len(shown)


def walk(client: httpx.Client, first: str) -> list[tuple[str, list[tuple[str, bool]]]]:
    """Every page from ``first`` on, by its next links: each page's address and rows."""
    pages, url = [], first
    while url:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        pages.append((url, queue_rows(answer.text)))
        url = pager_link(answer.text, "next")
        assert len(pages) < 20, "the next links go round in circles"
    return pages


def test_the_queue_pages_overdue_first_and_the_next_links_visit_every_case_once_with_the_filters(
        base_url: str, staff: dict[str, str], services: Services, clock: Clock, caseworker: Api,
        supervisor: Api, browser: Browser) -> None:
    area = define_area(services, "翻页")
    old, overdue, today, position = queue_in_parts(clock, caseworker, supervisor, area, fresh=PAGE_SIZE - 4)
    others = log_case(caseworker, define_area(services, "别处"))  # another area: never on these pages
    with signed_in(base_url, staff["caseworker"]) as client:
        first = client.get(f"/ui/cases?area={area}&after={position}")
        assert first.status_code == 200
        assert 'data-shown="50" data-total="53"' in first.text and "Showing 50 of 53 open cases" in first.text
        assert pager_link(first.text, "first") is None
        pages = walk(client, f"/ui/cases?area={area}")
        assert [len(rows) for _, rows in pages] == [PAGE_SIZE, 3]
        shown = [case_id for _, rows in pages for case_id, _ in rows]
        assert sorted(shown) == sorted(old + overdue + today)  # every case once, none twice
        assert others[0] not in shown
        # overdue first (though logged after the assigned ones), then the rest by the day logged
        assert in_parts(shown, overdue, old, today)
        assert [flag for _, rows in pages for _, flag in rows] == [True] * 4 + [False] * (len(shown) - 4)
        second_url = pages[1][0]
        assert f"area={area}" in second_url and "cursor=" in second_url and "after=" not in second_url
        second = client.get(second_url)
        assert "Showing 3 of 53 open cases" in second.text
        assert pager_link(second.text, "first") == f"/ui/cases?area={area}"

        # filters travel with the cursor: the wage cases only, then the overdue only
        wages = walk(client, f"/ui/cases?area={area}&category=wages_and_labour")
        assert sorted(r for _, rows in wages for r, _ in rows) == sorted(overdue)
        neighbours = walk(client, f"/ui/cases?category=neighbours&area={area}")
        assert all("category=neighbours" in url and f"area={area}" in url for url, _ in neighbours)
        assert sorted(r for _, rows in neighbours for r, _ in rows) == sorted(old + today)
        late = walk(client, f"/ui/cases?area={area}&overdue=1")
        assert sorted(r for _, rows in late for r, _ in rows) == sorted(overdue) and len(late) == 1

    # In the browser: the next page and back to the first, the filter still chosen.
    browser.sign_in(staff["caseworker"], lang="zh-CN")
    browser.go(f"/ui/cases?area={area}")
    count = browser.find("#case-count").text
    assert "显示 50 件" in count and "共 53 件未结案件" in count
    assert not browser.find_all("#case-pager-first")
    browser.shot("cases-queue-page-1-zh-CN")
    browser.submit("case-pager-next")
    assert len(browser.find_all("#case-queue tbody tr[data-case-id]")) == 3
    assert browser.find("#filter-area option:checked").get_attribute("value") == area
    browser.driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    browser.shot("cases-queue-page-2-zh-CN")
    browser.submit("case-pager-first")
    assert len(browser.find_all("#case-queue tbody tr[data-case-id]")) == PAGE_SIZE


def test_a_page_boundary_falls_anywhere_in_the_overdue_part_or_the_rest(
        base_url: str, staff: dict[str, str], services: Services, clock: Clock, caseworker: Api,
        supervisor: Api) -> None:
    area = define_area(services, "分页")
    old, overdue, today, position = queue_in_parts(clock, caseworker, supervisor, area, fresh=3)
    with signed_in(base_url, staff["caseworker"]) as client:  # waits until the queue has them all
        assert client.get(f"/ui/cases?area={area}&after={position}").status_code == 200
    flt = CaseFilter(area=area)
    for size in (1, 2, 3, 4, 5, 7, 9, 10, 11):
        cursor, seen, pages = None, [], 0
        with services.pool.connection() as conn:
            while True:
                found = queue_page(conn, flt, services.today(), cursor, size)
                assert found.total == 10 and (len(found.rows) == size or found.next_cursor is None)
                seen += [str(r["id"]) for r in found.rows]
                pages += 1
                if found.next_cursor is None:
                    break
                cursor = found.next_cursor
        assert in_parts(seen, overdue, old, today), size
        assert pages == -(-10 // size), size  # never an empty page at the end
    with services.pool.connection() as conn, pytest.raises(BadCursor):
        queue_page(conn, CaseFilter(area=area, overdue=True), services.today(), "r.", 2)


def test_a_bad_cursor_shows_the_first_page_with_a_word_not_an_error(
        base_url: str, staff: dict[str, str], services: Services, caseworker: Api) -> None:
    area = define_area(services, "坏游标")
    case_id, position = log_case(caseworker, area)
    with signed_in(base_url, staff["supervisor"], lang="zh-CN") as client:
        assert client.get(f"/ui/cases?area={area}&after={position}").status_code == 200
        for cursor in ("garbage", "r.garbage", "x.abc", "o.eyJhIjoxfQ", "r.WyJub3QtYS1kYXkiLCAieCJd",
                       "%E4%B8%AD.%E6%96%87"):
            answer = client.get(f"/ui/cases?area={area}&cursor={cursor}")
            assert answer.status_code == 200, (cursor, answer.text[:300])
            assert 'id="bad-cursor"' in answer.text and "该翻页链接无效" in answer.text
            assert [r for r, _ in queue_rows(answer.text)] == [case_id]
        answer = client.get(f"/ui/cases?area={area}&overdue=1&cursor=r.")  # the rest, asked of the overdue only
        assert answer.status_code == 200 and 'id="bad-cursor"' in answer.text
        plain = client.get(f"/ui/cases?area={area}")
        assert 'id="bad-cursor"' not in plain.text and pager_link(plain.text, "next") is None


def test_a_refused_action_and_a_refused_case_tie_the_error_to_its_field(
        base_url: str, staff: dict[str, str], services: Services, caseworker: Api, stored: Any) -> None:
    """Found by a review: the case page's and the new case's errors were written by hand with no
    id and no aria-invalid, so a screen reader did not say them with their field."""
    from tests.test_web_sites import Html

    area = define_area(services, "无障碍")
    case_id, position = log_case(caseworker, area)
    with signed_in(base_url, staff["caseworker"]) as client:
        page = client.get(f"/ui/cases/{case_id}?after={position}").text
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        before = stored()
        refused = client.post(f"/ui/cases/{case_id}/note", data={"csrf": csrf, "text": "  "})
        shown = Html(refused.text)
        assert refused.status_code == 422, shown.problems
        assert shown.by_id["f-text"].get("aria-invalid") == "true"
        assert shown.by_id["f-text"]["aria-describedby"] == "f-text-error"
        assert shown.text("f-text-error") and not shown.untied_errors()
        empty = client.post("/ui/cases/new", data={"csrf": csrf, "category": "housing", "description": " ",
                                                   "party_name_1": "王房东", "party_kind_1": "landlord",
                                                   "area": area, "priority": "normal", "occurred_on": "2026-11-01"})
        assert empty.status_code == 422
        shown = Html(empty.text)
        assert shown.by_id["f-description"].get("aria-invalid") == "true" and not shown.untied_errors()
        assert before.unchanged()
