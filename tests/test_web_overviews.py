"""The sites' pipeline to a community (``/ui/sites/pipeline``), a page the JSON API served before
the web application did, from the API's own query (``GET /sites/pipeline``) and within the same
areas, each site with what it lacks in words; over HTTP, in zh-CN and (``?lang=en``) English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from application.services import Services
from domain.common import Role
from tests.conftest import WEB_PASSWORD, Api, define_area, issue_key
from tests.factories import site_body, unique
from tests.test_web_sites import READY, Staff, web

__all__ = ["web"]

LANGS = ["zh-CN", "en"]
PIPELINE_ROW = re.compile(r'<tr class="pipeline-site" data-id="([0-9a-f-]{36})" data-stage="([a-z_]+)" '
                          r'data-ready="(yes|no)">(.*?)</tr>', re.S)


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
