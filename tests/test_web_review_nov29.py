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
from typing import Any

from application.services import Services
from tests.conftest import Api, define_area
from tests.factories import site_body, unique
from tests.test_web_sites import Staff


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
