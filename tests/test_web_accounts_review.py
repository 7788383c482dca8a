"""Found by a review of the accounts and their pages: a rule the English catalogue lacked showed
the domain's own message; a disabled account was offered and taken as a case's assignee; the
accounts page listed area codes, took only ASCII commas between areas, and said "account
created" of any name in its address."""

from __future__ import annotations

import re
from typing import Any

from tests.factories import id_number
from tests.test_web_sites import Html, Staff

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_a_rule_reads_in_english_words_without_field_names_or_ids(
        base_url: str, staff: dict[str, str], stored: Any) -> None:
    """A registration dated 1900 showed "registered_on 1900-01-01 is before 1990-01-01, ..."."""
    worker = Staff(base_url, staff["caseworker"])
    before = stored()
    refused = worker.post("/ui/residents/new?lang=en", {
        "id_number": id_number(), "name": "Early Bird", "phone": "13800138000", "hometown": "Anhui",
        "area": "xinqi", "household_relation": "head", "registered_on": "1900-01-01"})
    assert refused.status_code == 422, refused.text[-2000:]
    page = Html(refused.text)
    assert page.problems and page.problems[0][0] == "effective_date_too_early", page.problems
    shown = " ".join([*page.errors.values(), *(text for _, text in page.problems)])
    assert "The date cannot be before 1990-01-01" in shown, shown
    assert "registered_on" not in shown and not UUID.search(shown), shown
    assert before.unchanged()
    worker.client.close()
