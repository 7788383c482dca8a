"""Founding a management committee and changing its members in the web application, over HTTP
and in a real browser (headless Chromium): a supervisor founds a committee with a members table
(named people and a registered resident picked by name or id), adds a member and removes one;
the committee's page shows each member's role, since when, and a seat left vacant by a
departure from the district. A refused command shows the rule in words, keeps what was typed and
stores nothing; the forms are only for the roles the API allows (supervisors and admins)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from application.services import Services
from domain.residents import Resident
from tests.conftest import Api, Browser, define_area
from tests.factories import resident_body
from tests.test_web_sites import Html, web

LANGS = ["zh-CN", "en"]
MEMBER_FORMS = {"form-add-member"}
__all__ = ["web"]  # the signed-in HTTP sessions' fixture, shared with the sites' pages


def resident(api: Api, area: str, name: str) -> str:
    """A resident registered in ``area`` and in the residents view (searchable by name)."""
    made = api.post("/residents", resident_body(area=area, name=name))
    assert made.status_code == 201, made.text
    assert api.get("/residents", params={"after": made.json()["position"]}).status_code == 200
    return str(made.json()["id"])


def committee(api: Api, area: str, members: list[dict[str, Any]]) -> tuple[str, list[str]]:
    made = api.post("/committees", {"name": "银杏社区外来人口管理委员会", "area": area, "established_on": "2026-06-01",
                                    "members": members})
    assert made.status_code == 201, made.text
    document = api.get(f"/committees/{made.json()['id']}").json()
    return str(made.json()["id"]), [m["member_id"] for m in document["members"]]


def landed(response: httpx.Response) -> str:
    """A form that worked answers with the committee's page (reading its own write): its id."""
    assert response.status_code == 303, response.text[:3000]
    found = re.fullmatch(r"/ui/committees/([0-9a-f-]{36})\?after=\d+&done=\w+", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def member_rows(text: str) -> dict[str, str]:
    """The members table of a committee's page: member id -> the seat (sitting or vacant)."""
    return dict(re.findall(r'<tr data-member-id="([0-9a-f]+)" data-seat="(\w+)">', text))


def named(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:4]}"


# -- over HTTP -----------------------------------------------------------------------------------
def test_a_supervisor_founds_a_committee_with_a_resident_picked_by_id_and_lands_on_its_page(
        web: Any, supervisor: Api, services: Services) -> None:
    area = define_area(services, "成立")
    chosen = named("赵秀英")
    resident_id = resident(supervisor, area, chosen)
    boss = web("supervisor")
    assert "found-committee" in boss.page("/ui/committees").by_id
    assert "committee-new-form" in boss.page("/ui/committees/new").post_forms()
    made = boss.post("/ui/committees/new", {
        "name": "枫林社区外来人口管理委员会", "area": area, "site_id": "", "established_on": "2026-09-01",
        "member_name_1": "王芳", "member_role_1": "chair", "member_resident_1": "",
        "member_name_2": "", "member_role_2": "member", "member_resident_2": "",  # an empty row: skipped
        "member_name_3": "", "member_role_3": "group_leader", "member_resident_3": resident_id,
        "member_name_4": "李伟", "member_role_4": "deputy_chair"})
    committee_id = landed(made)
    document = supervisor.get(f"/committees/{committee_id}").json()
    assert (document["name"], document["area"], document["established_on"]) == (
        "枫林社区外来人口管理委员会", area, "2026-09-01")
    members = [(m["name"], m["role"], m.get("resident_id")) for m in document["members"]]
    assert members == [("王芳", "chair", None), (chosen, "group_leader", resident_id), ("李伟", "deputy_chair", None)]
    held = services.app.load(Resident, uuid.UUID(resident_id)).committee_seats  # the resident holds the seat
    assert held == {committee_id: document["members"][1]["member_id"]}
    page = boss.client.get(made.headers["location"])
    assert page.status_code == 200
    shown = Html(page.text)
    assert shown.text("committee-done") and len(member_rows(page.text)) == 3
    table = shown.text("members")
    assert "主任" in table and "组长" in table and "副主任" in table and "2026-09-01" in table and chosen in table
    assert set(member_rows(page.text).values()) == {"sitting"}
    assert f'href="/ui/residents/{resident_id}"' in page.text


def test_a_refused_founding_shows_the_rule_keeps_the_members_typed_and_stores_nothing(
        web: Any, services: Services, stored: Any) -> None:
    area = define_area(services, "拒绝成立")
    boss = web("supervisor")
    before = stored()
    typed = {"name": "东湖社区外来人口管理委员会", "area": area, "established_on": "2027-01-05",
             "member_name_1": "王芳", "member_role_1": "chair", "member_name_2": "孙丽", "member_role_2": "secretary"}
    refused = boss.post("/ui/committees/new?lang=en", typed)
    assert refused.status_code == 422
    page = Html(refused.text)
    assert page.problems[0] == ("effective_date_in_future", "The date cannot be after today.")
    assert page.errors.get("established_on")
    assert page.value("f-name") == "东湖社区外来人口管理委员会" and page.value("f-member_name_2") == "孙丽"
    assert re.search(r'<option value="secretary"\s+selected>', refused.text)
    no_members = boss.post("/ui/committees/new?lang=zh-CN", {**typed, "established_on": "2026-11-01",
                                                              "member_name_1": "", "member_name_2": ""})
    assert no_members.status_code == 422
    assert Html(no_members.text).problems[0] == ("committee_without_members", "管理委员会至少要有一名委员。")
    unknown = boss.post("/ui/committees/new", {**typed, "established_on": "2026-11-01",
                                               "member_resident_2": str(uuid.uuid4())})
    assert Html(unknown.text).problems[0][0] == "resident_unknown"
    both = boss.post("/ui/committees/new", {**typed, "established_on": "2026-11-01", "site_id": str(uuid.uuid4())})
    assert Html(both.text).problems[0][0] == "committee_area_or_site" and Html(both.text).errors.get("site_id")
    assert Html(unknown.text).errors.get("member_resident_2")
    assert Html(unknown.text).by_id["f-member_resident_2"].get("aria-invalid") == "true"
    assert not Html(unknown.text).untied_errors() and not Html(refused.text).untied_errors()
    assert before.unchanged()


def test_a_supervisor_adds_a_resident_by_name_and_removes_a_member(
        web: Any, supervisor: Api, services: Services) -> None:
    area = define_area(services, "增补")
    committee_id, (chair, second) = committee(supervisor, area, [{"name": "王芳", "role": "chair"}, {"name": "李伟"}])
    chosen = named("钱国强")
    resident_id = resident(supervisor, area, chosen)
    boss = web("supervisor")
    page = boss.page(f"/ui/committees/{committee_id}")
    assert MEMBER_FORMS | {f"remove-form-{chair}", f"remove-form-{second}"} <= page.post_forms()
    # what the resident field offers as one types the start of the name
    options = boss.client.get("/ui/committees/resident-options", params={"resident": chosen[:3]})
    assert options.status_code == 200 and f'<option value="{resident_id}">{chosen}' in options.text
    # the full name typed (no list used) is that resident; the register's name is taken
    added = boss.post(f"/ui/committees/{committee_id}/members", {"name": "", "role": "secretary",
                                                                 "resident": chosen, "joined_on": "2026-11-20"})
    landed(added)
    document = supervisor.get(f"/committees/{committee_id}").json()
    joined = document["members"][-1]
    assert (joined["name"], joined["role"], joined["resident_id"], joined["joined_on"]) == (
        chosen, "secretary", resident_id, "2026-11-20")
    removed = boss.post(f"/ui/committees/{committee_id}/member-removals", {
        "member_id": second, "left_on": "2026-11-24", "reason": "工作调动", "confirm": "yes"})
    landed(removed)
    document = supervisor.get(f"/committees/{committee_id}").json()
    assert [m["member_id"] for m in document["members"]] == [chair, joined["member_id"]]
    shown = boss.client.get(removed.headers["location"]).text
    assert set(member_rows(shown)) == {chair, joined["member_id"]}


def test_refused_member_changes_show_the_rule_keep_the_typing_and_store_nothing(
        web: Any, supervisor: Api, services: Services, stored: Any) -> None:
    area = define_area(services, "拒绝")
    chosen = named("周建华")
    resident_id = resident(supervisor, area, chosen)
    committee_id, (chair, _member) = committee(supervisor, area, [
        {"name": "王芳", "role": "chair"}, {"name": chosen, "resident_id": resident_id}])
    boss = web("supervisor")
    before = stored()
    # the same resident a second time
    twice = boss.post(f"/ui/committees/{committee_id}/members", {"name": "周师傅", "role": "member",
                                                                 "resident": resident_id, "joined_on": "2026-11-20"})
    assert twice.status_code == 409
    page = Html(twice.text)
    assert page.problems[0] == ("already_a_member", "该人员已是本委员会委员。")
    assert page.value("f-name") == "周师傅" and page.value("f-resident") == resident_id
    assert not page.untied_errors()
    # joining before the committee was established
    early = boss.post(f"/ui/committees/{committee_id}/members?lang=en", {"name": "赵六", "role": "member",
                                                                         "resident": "", "joined_on": "2026-01-01"})
    assert Html(early.text).problems[0] == ("joined_before_establishment",
                                            "A member cannot join before the committee was established.")
    assert Html(early.text).value("f-joined_on") == "2026-01-01"
    assert not Html(early.text).untied_errors()
    # a removal dated in the future: the member's form stays open with what was typed
    future = boss.post(f"/ui/committees/{committee_id}/member-removals", {
        "member_id": chair, "left_on": "2026-12-31", "reason": "换届", "confirm": "yes"})
    assert future.status_code == 422
    page = Html(future.text)
    assert page.problems[0][0] == "effective_date_in_future" and page.errors.get("left_on")
    assert page.value(f"remove-reason-{chair}") == "换届" and page.value(f"remove-left_on-{chair}") == "2026-12-31"
    assert page.by_id[f"remove-left_on-{chair}"].get("aria-invalid") == "true" and not page.untied_errors()
    assert re.search(rf'<details open><summary id="remove-open-{chair}">', future.text)
    # someone who is not a member (a stale page: removed meanwhile, or never one)
    stranger = boss.post(f"/ui/committees/{committee_id}/member-removals?lang=zh-CN", {
        "member_id": "0123456789ab", "left_on": "2026-11-24", "reason": "离开", "confirm": "yes"})
    assert stranger.status_code == 422
    assert Html(stranger.text).problems[0] == ("unknown_member", "该人员不是本委员会委员。")
    assert before.unchanged()
    assert len(supervisor.get(f"/committees/{committee_id}").json()["members"]) == 2


def test_a_removal_without_the_confirmation_box_is_refused_and_stores_nothing(
        web: Any, supervisor: Api, services: Services, stored: Any) -> None:
    """Found by a review: one click removed a member for good. The form's box "I understand
    this cannot be undone" is required in the page and checked again on the server."""
    area = define_area(services, "\u786e\u8ba4")
    committee_id, (chair, member) = committee(supervisor, area, [
        {"name": "\u738b\u82b3", "role": "chair"}, {"name": "\u674e\u4f1f"}])
    boss = web("supervisor")
    page = boss.page(f"/ui/committees/{committee_id}")
    box = page.by_id[f"remove-{member}-confirm"]
    assert box["type"] == "checkbox" and "required" in box and box["name"] == "confirm"
    before = stored()
    for lang, words in (("zh-CN", "\u65e0\u6cd5\u64a4\u9500"), ("en", "cannot be undone")):
        refused = boss.post(f"/ui/committees/{committee_id}/member-removals?lang={lang}", {
            "member_id": member, "left_on": "2026-11-24", "reason": "moved away"})
        assert refused.status_code == 422
        shown = Html(refused.text)
        assert shown.problems[0][0] == "confirmation_required" and words in shown.problems[0][1]
        assert words in shown.errors["confirm"]
        assert shown.value(f"remove-reason-{member}") == "moved away"
        assert shown.by_id[f"remove-{member}-confirm"].get("aria-invalid") == "true"
    assert before.unchanged()
    assert len(supervisor.get(f"/committees/{committee_id}").json()["members"]) == 2
    landed(boss.post(f"/ui/committees/{committee_id}/member-removals", {
        "member_id": member, "left_on": "2026-11-24", "reason": "moved away", "confirm": "yes"}))
    assert [m["member_id"] for m in supervisor.get(f"/committees/{committee_id}").json()["members"]] == [chair]


def test_a_departed_members_seat_is_shown_vacant_with_the_day(
        web: Any, supervisor: Api, caseworker: Api, services: Services) -> None:
    area = define_area(services, "空缺")
    chosen = named("吴桂兰")
    resident_id = resident(supervisor, area, chosen)
    committee_id, (chair, member) = committee(supervisor, area, [
        {"name": "王芳", "role": "chair"}, {"name": chosen, "resident_id": resident_id}])
    departed = caseworker.post(f"/residents/{resident_id}/departure",
                               {"effective_date": "2026-11-10", "reason": "返乡"})
    assert departed.status_code == 200, departed.text
    text = web("caseworker").client.get(f"/ui/committees/{committee_id}?lang=en").text
    assert member_rows(text) == {chair: "sitting", member: "vacant"}
    row = text.split(f'data-member-id="{member}"')[1].split("</tr>")[0]
    assert "Seat vacant" in row and "Left the district on 2026-11-10" in row and "2026-06-01" in row
    # the committee's history gives the seat's reason in words, not "departed the district"
    history = web("supervisor").client.get(f"/ui/history/committees/{committee_id}?lang=zh-CN").text
    reasons = [re.sub(r"\s+", " ", r).strip() for r in re.findall(r'<td class="reason">(.*?)</td>', history, re.S)]
    assert "\u79bb\u5f00\u672c\u533a" in reasons and "departed the district" not in history


def test_an_auditor_and_a_caseworker_see_no_member_forms_and_may_post_none(
        web: Any, supervisor: Api, services: Services, stored: Any) -> None:
    area = define_area(services, "审计")
    committee_id, (chair,) = committee(supervisor, area, [{"name": "王芳", "role": "chair"}])
    for role in ("auditor", "caseworker"):
        session = web(role)
        assert "found-committee" not in session.page("/ui/committees").by_id
        assert session.client.get("/ui/committees/new").status_code == 403
        assert session.client.get("/ui/committees/resident-options?resident=王").status_code == 403
        page = session.page(f"/ui/committees/{committee_id}")
        assert not page.post_forms() & (MEMBER_FORMS | {f"remove-form-{chair}"}), role
        assert "王芳" in page.text("members")  # the members are read all the same
        before = stored()
        for path, body in (("/ui/committees/new", {"name": "x", "area": area, "established_on": "2026-11-01",
                                                   "member_name_1": "y"}),
                           (f"/ui/committees/{committee_id}/members", {"name": "y", "joined_on": "2026-11-01"}),
                           (f"/ui/committees/{committee_id}/member-removals", {
                               "member_id": chair, "left_on": "2026-11-01", "reason": "z"})):
            assert session.post(path, body).status_code == 403, (role, path)
        assert before.unchanged()
    assert web("auditor").page(f"/ui/committees/{committee_id}").post_forms() == set()


# -- in the browser ------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGS)
def test_a_supervisor_founds_a_committee_adds_a_member_and_removes_one(
        browser: Browser, staff: dict[str, str], supervisor: Api, services: Services, stored: Any,
        lang: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    words = {"zh-CN": {"chair": "主任", "secretary": "秘书", "sitting": "在任", "future": "今天"},
             "en": {"chair": "Chair", "secretary": "Secretary", "sitting": "Sitting", "future": "today"}}[lang]
    journey = f"committee-members-{lang}"
    area = define_area(services, "委员会")
    chosen = named("陈淑珍")
    resident_id = resident(supervisor, area, chosen)
    browser.sign_in(staff["supervisor"], lang=lang)
    browser.go("/ui/committees")
    assert browser.lang() == lang
    browser.submit("found-committee")
    browser.fill("name", "银杏社区外来人口管理委员会" if lang == "zh-CN" else "Ginkgo Migrant Management Committee")
    browser.choose("area", area)
    browser.driver.execute_script("document.getElementById('f-established_on').value = '2026-10-08'")
    browser.fill("member_name_1", "王芳")
    browser.choose("member_role_1", "chair")
    browser.fill("member_name_2", "李伟")
    browser.choose("member_role_2", "deputy_chair")
    # the third member is a resident: typing the start of the name offers them (htmx fills the list)
    browser.fill("member_resident_3", chosen[:3])
    WebDriverWait(browser.driver, 10).until(
        lambda d: browser.find_all(f"#f-member_resident_3-options option[value='{resident_id}']"))
    browser.shot(f"{journey}-1-found")
    browser.fill("member_resident_3", resident_id)  # what picking the offered resident puts in the field
    browser.choose("member_role_3", "group_leader")
    browser.submit("found-submit")
    assert "/ui/committees/" in browser.driver.current_url, browser.text()
    committee_id = browser.driver.current_url.split("/ui/committees/")[1].split("?")[0]
    rows = browser.find_all("#members tbody tr[data-member-id]")
    assert len(rows) == 3 and all(r.get_attribute("data-seat") == "sitting" for r in rows)
    assert words["chair"] in rows[0].text and "2026-10-08" in rows[0].text and words["sitting"] in rows[0].text
    assert chosen in rows[2].text
    browser.shot(f"{journey}-2-founded")

    # a member added: a secretary, from today
    browser.fill("name", "孙丽")
    browser.choose("role", "secretary")
    browser.submit("add-member-submit")
    rows = browser.find_all("#members tbody tr[data-member-id]")
    assert len(rows) == 4 and "孙丽" in rows[3].text and words["secretary"] in rows[3].text
    assert "2026-11-25" in rows[3].text
    browser.shot(f"{journey}-3-added")

    # a removal dated in the future is refused in words, the reason kept, nothing stored
    second = rows[1].get_attribute("data-member-id")
    browser.click(f"remove-open-{second}")
    browser.driver.execute_script(f"document.getElementById('remove-left_on-{second}').value = '2026-12-31'")
    browser.fill(f"remove-reason-{second}", "工作调动" if lang == "zh-CN" else "moved to another job")
    before = stored()
    browser.click(f"remove-{second}-confirm")  # "I understand this cannot be undone"
    browser.submit(f"remove-{second}")
    problem = browser.find(".problem")
    assert problem.get_attribute("data-rule") == "effective_date_in_future" and words["future"] in problem.text
    assert browser.find(f"#remove-reason-{second}").get_attribute("value") in ("工作调动", "moved to another job")
    assert before.unchanged()
    browser.shot(f"{journey}-4-refused")
    browser.driver.execute_script(f"document.getElementById('remove-left_on-{second}').value = '2026-11-24'")
    assert not browser.find(f"#remove-{second}-confirm").is_selected()  # confirmed again after a refusal
    browser.click(f"remove-{second}-confirm")
    browser.submit(f"remove-{second}")
    ids = [r.get_attribute("data-member-id") for r in browser.find_all("#members tbody tr[data-member-id]")]
    assert len(ids) == 3 and second not in ids and not browser.find_all(".problem")
    browser.shot(f"{journey}-5-removed")
    document = supervisor.get(f"/committees/{committee_id}").json()
    assert [m["name"] for m in document["members"]] == ["王芳", chosen, "孙丽"]


def test_a_case_logged_after_the_meeting_was_scheduled_is_added_to_its_agenda_from_the_page(
        web: Any, supervisor: Api, caseworker: Api, services: Services) -> None:
    """Issue 11: the committee's page adds open cases to the agenda of its upcoming meeting (found
    by a review: cases could be ticked only when the meeting was scheduled)."""
    area = define_area(services, "\u8bae\u7a0b")
    committee_id, _ = committee(supervisor, area, [{"name": "\u738b\u82b3", "role": "\u4e3b\u4efb"}])
    meeting = caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": "2026-11-26", "agenda": [{"title": "rota"}]}).json()["meeting_id"]
    case = caseworker.post("/disputes", {"category": "neighbours", "description": "noise", "area": area,
                                         "parties": [{"name": "X", "kind": "other"}],
                                         "occurred_on": "2026-11-20"}).json()
    worker = web("caseworker")
    page = worker.page(f"/ui/committees/{committee_id}?after={case['position']}")
    assert f"form-agenda-{meeting}" in page.post_forms()
    assert f"add-case-{meeting}-{case['id']}" in page.by_id
    nothing = worker.post(f"/ui/committees/{committee_id}/meetings/{meeting}/agenda?lang=en", {})
    assert nothing.status_code == 422 and Html(nothing.text).problems[0][0] == "agenda_empty"
    added = worker.post(f"/ui/committees/{committee_id}/meetings/{meeting}/agenda", {"dispute_id": case["id"]})
    landed(added)
    after = added.headers["location"].split("after=")[1].split("&")[0]
    agenda = caseworker.get(f"/committees/{committee_id}/agenda", params={"after": after}).json()["upcoming"][0][
        "agenda"]
    assert [i.get("dispute_id") for i in agenda] == [None, case["id"]]
    again = worker.page(f"/ui/committees/{committee_id}")
    assert f"form-agenda-{meeting}" not in again.post_forms()  # no open case left to add


@pytest.mark.parametrize("lang", LANGS)
def test_an_action_typed_under_an_undecided_item_is_refused_beside_it_keeping_the_minutes_typed(
        web: Any, supervisor: Api, caseworker: Api, services: Services, stored: Any, lang: str) -> None:
    """Found by a review: an action item filled in under an item whose decision was left empty
    was dropped without a word, and the minutes stored without it."""
    area = define_area(services, "\u4efb\u52a1")
    committee_id, members = committee(supervisor, area, [{"name": n} for n in ("Wang", "Li", "Zhao")])
    meeting = caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": "2026-11-24", "agenda": [{"title": "rota"}, {"title": "wages"}]}).json()["meeting_id"]
    worker = web("caseworker")
    typed = {"held_on": "2026-11-24", "attendee": members[:2], "decision_1": "a rota from December",
             "decision_2": "", "action_2": "ask the employer", "owner_2": members[0], "due_2": "2026-12-10"}
    before = stored()
    refused = worker.post(f"/ui/committees/{committee_id}/meetings/{meeting}/minutes?lang={lang}", typed)
    assert refused.status_code == 422, refused.text[:2000]
    page = Html(refused.text)
    words = ("An action needs a decision on its item" if lang == "en"
             else "\u4efb\u52a1\u987b\u4f9d\u9644\u4e8e\u8be5\u8bae\u9898\u7684\u51b3\u5b9a")
    assert page.problems[0][0] == "action_without_decision" and words in page.errors["action_2"], page.errors
    assert page.by_id[f"f-action-{meeting}-2"].get("aria-invalid") == "true" and not page.untied_errors()
    assert page.value(f"f-action-{meeting}-2") == "ask the employer"
    assert page.text(f"f-decision-{meeting}-1") == "a rota from December"
    assert before.unchanged()
    decided = worker.post(f"/ui/committees/{committee_id}/meetings/{meeting}/minutes",
                          {**typed, "decision_2": "the chair writes to the employer"})
    landed(decided)
    after = decided.headers["location"].split("after=")[1].split("&")[0]
    actions = caseworker.get(f"/committees/{committee_id}/agenda", params={"after": after}).json()["actions"]
    assert [a["description"] for a in actions] == ["ask the employer"]
