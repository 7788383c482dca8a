"""A page's id that is no id (``/ui/residents/x``, ``/ui/sites/overview``) answers as an id that
names nothing does: the not-found page in HTML, in the reader's language, not the API's English
problem document (found by a review: only /ui/cases/x did)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from api.web.i18n import gettext_for
from tests.factories import site_body
from tests.test_web_sites import Html, web

__all__ = ["web"]

NO_RECORD = "There is no such page or record."
# (path, the sentence the page answers with)
PAGES = [
    ("/ui/residents/{id}", "No such resident in your areas."),
    ("/ui/sites/{id}", "No such site in your areas."),
    ("/ui/cases/{id}", "No such case in your areas."),
    ("/ui/operators/{id}", NO_RECORD),
    ("/ui/pairings/{id}", NO_RECORD),
    ("/ui/active-members/{id}", NO_RECORD),
    ("/ui/committees/{id}", NO_RECORD),
    ("/ui/subsidies/{id}", "Not found"),
    ("/ui/history/sites/{id}", "Not found"),
]
POSTS = ["/ui/residents/{id}/departure", "/ui/sites/{id}/closure", "/ui/operators/{id}/contact-erasure",
         "/ui/pairings/{id}/ending", "/ui/active-members/{id}/loss", "/ui/committees/{id}/member-removals",
         "/ui/subsidies/{id}/revoke", "/ui/cases/{id}/close"]


def shows(response: httpx.Response, lang: str, sentence: str) -> None:
    assert response.status_code == 404, (response.request.url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html"), response.request.url
    assert f'<html lang="{lang}">' in response.text
    words = gettext_for(lang).gettext(sentence)
    assert words in response.text, (response.request.url, words)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_malformed_id_in_any_page_answers_the_translated_not_found_page(web: Any, lang: str) -> None:
    session = web("supervisor")
    for template, sentence in PAGES:
        for record in ("x", "12345", str(uuid.uuid4())):  # made up, digits, a well-formed id naming nothing
            shows(session.client.get(template.format(id=record) + f"?lang={lang}"), lang, sentence)
    # a word that is no site's id (the pipeline, /ui/sites/pipeline, is a page of its own)
    shows(session.client.get(f"/ui/sites/overview?lang={lang}"), lang, "No such site in your areas.")


def test_a_form_posted_to_a_malformed_id_answers_not_found_and_stores_nothing(web: Any, stored: Any) -> None:
    session = web("supervisor")
    before = stored()
    for template in POSTS:
        answer = session.post(template.format(id="x") + "?lang=en", {"confirm": "yes", "reason": "r"})
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html"), template
    assert before.unchanged()


def test_signed_out_a_malformed_id_leads_to_the_sign_in(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        answer = client.get("/ui/sites/overview")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


def test_the_api_still_answers_a_malformed_id_with_a_problem_document(web: Any) -> None:
    answer = web("supervisor").client.get("/sites/not-an-id")
    assert answer.status_code in (401, 422) and answer.headers["content-type"].startswith("application/problem+json")


def test_unicode_digits_in_a_query_or_a_form_are_no_number_and_no_error(
        web: Any, supervisor: Any, stored: Any) -> None:
    """Found by a review: "\u00b2" is a digit to str.isdigit(), int() refuses it, and the pages
    answered 500 (after=, page=, year=, fiscal_year=, a form's counts)."""
    site = supervisor.post("/sites", site_body()).json()["id"]
    session = web("supervisor")
    for path in (f"/ui/sites/{site}?after=\u00b2", "/ui/committees?after=\u00b2", "/ui/cases?after=\u00b2",
                 "/ui/ledger?fiscal_year=\u00b2", "/ui/active-members?page=\u00b2", "/ui/services?year=\u00b2",
                 "/ui/subsidies?after=\u00b2", "/ui/operators?after=\u00b2", "/ui/pairings?after=\u00b2",
                 "/ui/sites/pipeline?after=\u00b2", "/ui/statistics/reporting-delays?after=\u00b2",
                 "/ui/subsidy-programs?after=\u00b2&fiscal_year=\u00b2", f"/ui/sites/{site}?after={'9' * 40}"):
        assert session.client.get(path).status_code == 200, path
    before = stored()
    refused = session.post(f"/ui/sites/{site}/capacity", {"capacity": "\u00b2"})
    assert refused.status_code == 422 and before.unchanged()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_form_naming_a_record_that_is_not_there_says_which_kind_in_the_reader_s_language(
        web: Any, caseworker: Any, stored: Any, lang: str) -> None:
    """Found by a review: the refusal ended in English in the Chinese pages ("未找到: housing site")."""
    from tests.factories import resident_body

    made = caseworker.post("/residents", resident_body())
    assert made.status_code == 201, made.text
    session = web("caseworker")
    before = stored()
    answer = session.post(f"/ui/residents/{made.json()['id']}/move-in?lang={lang}",
                          {"site_id": str(uuid.uuid4()), "effective_date": "2026-11-20"})
    assert answer.status_code in (404, 409, 422), answer.status_code
    words = {"zh-CN": "\u672a\u627e\u5230: \u96c6\u4e2d\u5c45\u4f4f\u70b9", "en": "Not found: housing site"}[lang]
    assert f'data-rule="not_found">{words}<' in answer.text, answer.text[:3000]
    assert before.unchanged()


def test_a_stale_page_link_of_the_residents_list_says_so_above_the_first_page(web: Any) -> None:
    """Found by a review: the queue, the subsidies and the other lists say so; the residents' list
    showed its first page without a word."""
    worker = web("caseworker")
    page = Html(worker.client.get("/ui/residents?name=Li&cursor=garbage&lang=en").text)
    assert page.text("bad-cursor") == "That page link is not valid (any more); here is the first page."
    assert "bad-cursor" not in Html(worker.client.get("/ui/residents?name=Li&lang=en").text).by_id
