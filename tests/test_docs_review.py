"""What the README and the OpenAPI document promise holds (found by a newcomer's review):
every request body has an example the API takes, every part of an answer is described,
every setting is in the README's table, a masked reader sees a dispute's outcome where it is
no free text, and a read of a resident as of a moment logs only the moments asked for."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import httpx

from api.app import api_routes, create_app
from api.schemas import Body
from application.settings import Settings
from tests.conftest import Api
from tests.factories import resident_body, unique_area

README = Path(__file__).resolve().parent.parent / "README.md"


def _body_model(endpoint: Any) -> type[Body] | None:
    hints = typing.get_type_hints(endpoint)
    models = [hint for hint in hints.values() if isinstance(hint, type) and issubclass(hint, Body)]
    return models[0] if models else None


def test_every_request_body_has_an_example_the_api_takes() -> None:
    """The OpenAPI page shows an example for each body, and each example passes the body's own checks."""
    app = create_app()
    checked, missing = 0, []
    for route in api_routes(app):
        model = _body_model(route.endpoint)
        if model is None:
            continue
        examples = model.model_json_schema().get("examples")
        if not examples:
            missing.append(f"{route.method} {route.path} ({model.__name__})")
            continue
        for example in examples:
            model.model_validate(example)
        checked += 1
    assert not missing, missing
    assert checked > 60


def _bare_objects(document: dict[str, Any]) -> list[str]:
    """Properties of response schemas typed only as "an object", naming nothing in it."""
    components = document["components"]["schemas"]
    found: list[str] = []
    seen: set[str] = set()

    def bare(schema: dict[str, Any]) -> bool:
        return (schema.get("type") == "object" and "properties" not in schema
                and not isinstance(schema.get("additionalProperties"), dict))

    def walk(schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                walk(components[name], name)
            return
        for part in [*schema.get("anyOf", []), *schema.get("oneOf", []), *schema.get("allOf", [])]:
            walk(part, where)
        if isinstance(schema.get("items"), dict):
            walk(schema["items"], where)
        if isinstance(schema.get("additionalProperties"), dict):
            walk(schema["additionalProperties"], where)
        for name, prop in schema.get("properties", {}).items():
            shapes = [prop, *prop.get("anyOf", []), *([prop["items"]] if isinstance(prop.get("items"), dict) else [])]
            if any(bare(s) for s in shapes) and not prop.get("description"):
                found.append(f"{where}.{name}")
            walk(prop, where)

    for operations in document["paths"].values():
        for operation in operations.values():
            for answer in operation.get("responses", {}).values():
                for media in answer.get("content", {}).values():
                    if media.get("schema"):
                        walk(media["schema"], "response")
    return found


def test_every_part_of_an_answer_is_described(http: httpx.Client) -> None:
    """No response property is an object the document says nothing about (a site's assessment, a
    committee's meetings, the ledger's rows were; a dispute timeline's facts, which differ by event,
    say so in words)."""
    document = http.get("/openapi.json").json()
    assert _bare_objects(document) == []
    site = document["components"]["schemas"]["SitePublic"]["properties"]
    assert any(s.get("$ref", "").endswith("/SiteAssessmentPublic") for s in site["assessment"]["anyOf"])


def _readme_settings() -> dict[str, list[str]]:
    """The README's configuration table: each row's variables and the defaults it gives them."""
    text = README.read_text("utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`LIUDONG_"):
            continue
        names = re.findall(r"`LIUDONG_([A-Z0-9_]+)`", cells[0])
        defaults = re.findall(r"`([^`]*)`", cells[1])
        for n, name in enumerate(names):
            rows[name.lower()] = [defaults[n]] if len(defaults) == len(names) else []
    return rows


def _same(written: str, default: Any) -> bool:
    try:
        parsed = json.loads(written)
    except json.JSONDecodeError:
        parsed = written
    if isinstance(default, bool) or isinstance(parsed, bool):
        return parsed == default
    if isinstance(default, int | float) or isinstance(parsed, int | float):
        try:
            return float(parsed) == float(default)
        except (TypeError, ValueError):
            return False
    return parsed == default or written == str(default)


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    """`liudong config` prints every field of Settings: the README's table names each, and where it
    gives a default, the one the code has."""
    rows = _readme_settings()
    assert sorted(set(Settings.model_fields) - set(rows)) == []
    defaults = Settings.model_construct().model_dump(mode="json")
    wrong = {name: (given[0], defaults[name]) for name, given in rows.items()
             if given and defaults.get(name) is not None and not _same(given[0], defaults[name])}
    assert wrong == {}


def _log_dispute(api: Api) -> str:
    made = api.post("/disputes", {"category": "wages_and_labour", "description": "Three months of wages unpaid",
                                  "parties": [{"name": "Yuanda Dyeing Co.", "kind": "employer"}],
                                  "area": unique_area("Area"), "occurred_on": "2026-11-20"})
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def test_a_masked_reader_sees_a_resolutions_outcome_but_not_a_mediations(
        caseworker: Api, supervisor: Api, http: httpx.Client, keys: dict[str, str]) -> None:
    """A resolution's outcome is one of four values, shown at the dispute's top level to every
    reader; a mediation's outcome is free text that may name people. The timeline hid both from an
    api_consumer without the pii scope."""
    case = _log_dispute(caseworker)
    path = f"/disputes/{case}"
    for api, action, body in [
            (supervisor, "assignment", {"assignee": "test-caseworker"}),
            (caseworker, "mediations", {"held_on": "2026-11-22", "participants": ["Li", "Yuanda"],
                                        "outcome": "Li Wei's employer will pay by the 30th"}),
            (caseworker, "resolution", {"outcome": "mediated_agreement"})]:
        answer = api.post(f"{path}/{action}", body)
        assert answer.status_code == 200, (action, answer.text)
    masked = Api(http, keys["api_consumer"]).get(path).json()
    facts = {e["event"]: e["facts"] for e in masked["timeline"]}
    assert masked["outcome"] == "mediated_agreement"
    assert facts["Resolved"]["outcome"] == "mediated_agreement"
    assert facts["MediationHeld"]["outcome"] is None and facts["MediationHeld"]["participants"] is None
    assert facts["Logged"]["description"] is None
    full = {e["event"]: e["facts"] for e in caseworker.get(path).json()["timeline"]}
    assert full["MediationHeld"]["outcome"] == "Li Wei's employer will pay by the 30th"


def test_a_read_of_a_resident_as_of_a_date_logs_only_what_was_asked(
        caseworker: Api, http: httpx.Client, keys: dict[str, str]) -> None:
    """The access log's detail names the moments a read asked for, as given, and nothing of the
    ones it did not (it said "known_at=None effective_at=2026-05-01")."""
    resident = caseworker.post("/residents", resident_body()).json()["id"]
    assert caseworker.get(f"/residents/{resident}", params={"effective_at": "2026-05-01"}).status_code == 200
    assert caseworker.get(f"/residents/{resident}").status_code == 200
    log = Api(http, keys["auditor"]).get("/audit/access-log", params={"resident_id": resident}).json()["items"]
    assert [(e["route"], e["detail"]) for e in log] == [
        (f"GET /residents/{resident}", "effective_at=2026-05-01"), (f"GET /residents/{resident}", None)]
