"""The pages link only to what the reader may open: a role is offered no link that answers 403
(found by a review: finance saw a site's open cases linked to case pages it may not open). A case
names a resident party by name, linked to their page; a site and a committee link their history."""

from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import Api
from tests.factories import resident_body, unique
from tests.test_web_money import created
from tests.test_web_sites import Html, Staff, new_site, web

__all__ = ["web"]
LINK = re.compile(r'href="([^"#]+)')
MOST_PAGES = 400  # a crawl's bound: the suite's other records fill the lists


def a_site_with_everything(supervisor: Api, caseworker: Api) -> dict[str, str]:
    """A site with a resident, an open case with the resident as a party, a committee and a pairing."""
    site = new_site(supervisor)
    resident = created(caseworker.post("/residents", resident_body(name=unique("\u674e\u56db"))))
    moved = caseworker.post(f"/residents/{resident}/moves", {"site_id": site, "effective_date": "2026-11-20"})
    assert moved.status_code == 200, moved.text
    case = created(caseworker.post("/disputes", {
        "category": "wages_and_labour", "description": "wages unpaid", "site_id": site, "occurred_on": "2026-11-01",
        "parties": [{"resident_id": resident}, {"name": "Yuanda Dyeing Co.", "kind": "employer"}]}))
    committee = created(supervisor.post("/committees", {
        "name": unique("\u7ba1\u59d4\u4f1a"), "site_id": site, "established_on": "2026-06-01",
        "members": [{"name": "Wang", "role": "chair"}, {"resident_id": resident, "name": "Li"}]}))
    paired = supervisor.post("/pairings", {"site_id": site, "partner_type": "enterprise",
                                           "partner_name": unique("Shenzhou"), "agreed_on": "2026-03-01"})
    pairing = created(paired)
    for listing in ("/open-cases", "/committees", "/pairings", "/residents", "/sites"):  # the views have it all
        assert supervisor.get(listing, params={"after": paired.json()["position"]}).status_code == 200, listing
    return {"site": site, "resident": resident, "case": case, "committee": committee, "pairing": pairing}


def crawl(session: Staff, start: list[str]) -> dict[str, int]:
    """Every page reachable by a GET link from ``start`` (a page's other pages of a list are
    left out), with the status each answered."""
    seen: dict[str, int] = {}
    queue = deque(start)
    while queue and len(seen) < MOST_PAGES:
        url = queue.popleft()
        if url in seen:
            continue
        answer = session.client.get(url)
        seen[url] = answer.status_code
        if answer.status_code != 200 or not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        for href in LINK.findall(answer.text):
            target = urljoin(url, href.replace("&amp;", "&"))
            parts = urlsplit(target)
            if parts.netloc and parts.netloc != urlsplit(str(session.client.base_url)).netloc:
                continue
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            if (not (parts.path == "/" or parts.path.startswith("/ui/")) or "cursor" in parts.query
                    or "lang=" in parts.query or path in seen):
                continue
            queue.append(path)
    return seen


@pytest.mark.parametrize("role", ["finance", "auditor"])
def test_a_reader_is_offered_no_link_to_a_page_its_role_may_not_open(
        web: Any, supervisor: Api, caseworker: Api, role: str) -> None:
    made = a_site_with_everything(supervisor, caseworker)
    session = web(role)
    seen = crawl(session, ["/", f"/ui/sites/{made['site']}"])
    reached = {f"/ui/pairings/{made['pairing']}", f"/ui/history/sites/{made['site']}", "/ui/sites", "/ui/subsidies"}
    if role == "auditor":
        reached |= {f"/ui/cases/{made['case']}", f"/ui/committees/{made['committee']}",
                    f"/ui/residents/{made['resident']}"}
    assert reached <= set(seen), sorted(reached - set(seen))
    refused = {url: status for url, status in seen.items() if status != 200}
    assert not refused, refused


def test_finance_reads_a_site_s_cases_and_committees_as_text_and_staff_follow_them(
        web: Any, supervisor: Api, caseworker: Api) -> None:
    made = a_site_with_everything(supervisor, caseworker)
    site = f"/ui/sites/{made['site']}?lang=en"
    finance = web("finance").client.get(site).text
    for path in (f"/ui/cases/{made['case']}", f"/ui/committees/{made['committee']}"):
        assert f'href="{path}"' not in finance, path
    cases = Html(finance).text("site-cases")
    assert "Wages and labour" in cases or "wages" in cases.lower(), cases  # the case itself is still listed
    staff = web("caseworker").client.get(site).text
    for path in (f"/ui/cases/{made['case']}", f"/ui/committees/{made['committee']}"):
        assert f'href="{path}"' in staff, path


def test_a_case_names_its_resident_party_links_their_page_and_logs_the_read(
        web: Any, supervisor: Api, caseworker: Api, services: Any) -> None:
    made = a_site_with_everything(supervisor, caseworker)
    name = caseworker.get(f"/residents/{made['resident']}").json()["name"]
    for role in ("caseworker", "auditor"):
        session = web(role)
        page = session.client.get(f"/ui/cases/{made['case']}?lang=en")
        assert page.status_code == 200
        parties = Html(page.text).text("case-parties")
        assert name in parties and made["resident"] not in parties, parties  # a name, not a bare id
        assert f'href="/ui/residents/{made["resident"]}"' in page.text
        assert "Yuanda Dyeing Co." in parties
        with services.pool.connection() as conn:
            logged = conn.execute("SELECT count(*) AS n FROM access_log WHERE user_id = %s AND resident_id = %s"
                                  " AND detail = %s", (f"web-{role}", made["resident"], made["case"])).fetchone()
        assert logged["n"] >= 1, role  # the name shown is a read of the resident, logged with the case's


def test_a_site_and_a_committee_link_their_history(web: Any, supervisor: Api, caseworker: Api) -> None:
    made = a_site_with_everything(supervisor, caseworker)
    for role in ("caseworker", "supervisor", "auditor", "finance"):
        session = web(role)
        site = Html(session.client.get(f"/ui/sites/{made['site']}?lang=en").text)
        assert site.by_id["site-history"]["href"] == f"/ui/history/sites/{made['site']}", role
        assert session.client.get(site.by_id["site-history"]["href"]).status_code == 200
        if role == "finance":
            continue  # finance opens no committee's page
        committee = Html(session.client.get(f"/ui/committees/{made['committee']}?lang=en").text)
        assert committee.by_id["committee-history"]["href"] == f"/ui/history/committees/{made['committee']}"
        assert session.client.get(committee.by_id["committee-history"]["href"]).status_code == 200
