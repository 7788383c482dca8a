"""The auditors' page in the browser's language: who read whose personal data, newest first and
filtered, and how far the tamper-evident chain has come with its checkpoints. Auditors only, as
the API's /audit routes; reading the log is logged."""

from __future__ import annotations

import re
from typing import Any

from typer.testing import CliRunner

from application.cli import cli
from application.services import Services
from tests.conftest import Api
from tests.factories import resident_body
from tests.test_audit import wait_for_chain
from tests.test_web_sites import Html, web

__all__ = ["web"]


def test_an_auditor_finds_who_read_a_resident_newest_first_and_the_read_is_logged(
        web: Any, caseworker: Api, as_role: Any, services: Services) -> None:
    resident = caseworker.post("/residents", resident_body()).json()["id"]
    for _ in range(2):
        assert caseworker.get(f"/residents/{resident}").status_code == 200
    auditor = web("auditor")
    page = auditor.client.get(f"/ui/audit?resident={resident}&lang=en")
    assert page.status_code == 200
    rows = _rows(page.text)
    assert len(rows) >= 2 and rows == sorted(rows, reverse=True)  # newest first
    assert f"/residents/{resident}" in page.text
    assert "Who read whose personal data" in page.text and 'href="/ui/audit"' in page.text  # in the menu
    by_other = auditor.client.get(f"/ui/audit?resident={resident}&user=nobody-at-all&lang=zh-CN")
    none_found = "\u6ca1\u6709\u7b26\u5408\u6761\u4ef6\u7684\u67e5\u9605\u8bb0\u5f55"
    assert _rows(by_other.text) == [] and none_found in by_other.text
    # the auditor's reading of the log is in the log, as the API's is
    logged = as_role("auditor").get("/audit/access-log", params={"user": "web-auditor", "limit": 500}).json()
    assert any(e["route"] == "GET /ui/audit" and resident in (e["detail"] or "") for e in logged["items"])


def test_the_log_pages_on_from_the_last_entry_shown(web: Any, caseworker: Api) -> None:
    resident = caseworker.post("/residents", resident_body()).json()["id"]
    for _ in range(55):
        caseworker.get(f"/residents/{resident}")
    auditor = web("auditor")
    first = auditor.client.get(f"/ui/audit?resident={resident}")
    shown = _rows(first.text)
    assert len(shown) == 50
    page = Html(first.text)
    following = page.by_id["access-pager-next"]["href"].replace("&amp;", "&")
    rest = _rows(auditor.client.get(following).text)
    assert rest and max(rest) < min(shown) and len(set(shown) | set(rest)) == len(shown) + len(rest)
    bad = auditor.client.get(f"/ui/audit?resident={resident}&cursor=garbage&lang=en")
    assert 'id="audit-notice"' in bad.text and _rows(bad.text) == shown


def test_bad_filters_are_named_on_the_form_and_nothing_is_read(web: Any) -> None:
    auditor = web("auditor")
    answer = auditor.client.get("/ui/audit?resident=x&from=2026-13-01&lang=en")
    assert answer.status_code == 422
    page = Html(answer.text)
    assert set(page.errors) == {"resident", "from"} and not page.untied_errors()
    assert page.by_id["q-resident"].get("aria-invalid") == "true" and page.value("q-resident") == "x"
    assert _rows(answer.text) == [] and "Correct the filters above." in answer.text
    backwards = Html(auditor.client.get("/ui/audit?from=2026-12-01&to=2026-11-01").text)
    assert set(backwards.errors) == {"to"} and not backwards.untied_errors()


def test_the_chain_and_its_checkpoints_are_shown(web: Any, caseworker: Api, services: Services,
                                                 database: Any, monkeypatch: Any) -> None:
    caseworker.post("/residents", resident_body())
    wait_for_chain(services)
    monkeypatch.setenv("LIUDONG_DATABASE_URL", database.dsn)
    made = CliRunner().invoke(cli, ["audit", "checkpoint"])
    assert made.exit_code == 0, made.output
    page = Html(web("auditor").client.get("/ui/audit?lang=en").text)
    state = page.by_id["chain-state"]
    assert int(state["data-chained"]) >= 1 and int(state["data-stored"]) >= int(state["data-chained"])
    newest = made.output.split()[1].lstrip("#")
    assert f'data-checkpoint-id="{newest}"' in web("auditor").client.get("/ui/audit").text


def test_only_auditors_open_the_audit_page(web: Any) -> None:
    for role in ("caseworker", "supervisor", "finance", "admin"):
        session = web(role)
        assert session.client.get("/ui/audit").status_code == 403, role
        assert 'href="/ui/audit"' not in session.client.get("/ui/sites").text


def _rows(text: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-entry-id="(\d+)">', text)]


def test_a_refused_statistics_filter_is_tied_to_its_field(web: Any) -> None:
    answer = web("supervisor").client.get("/ui/statistics?lang=en&from=2026-13&area=Atlantis")
    page = Html(answer.text)
    assert {"from", "area"} <= set(page.errors) and not page.untied_errors()
    assert page.by_id["f-from"].get("aria-invalid") == "true"
