"""Schemathesis against the app's own OpenAPI document, over real HTTP, as every role and
without a valid key.

Each operation of the document gets a bounded number of generated requests from a fixed
Hypothesis seed: schema-valid ones (positive) and ones that break the schema (negative); then
each operation with path parameters gets a few schema-valid requests on records this test
made in an area of its own (random ids only ever meet 404, so the detail views' schemas would
go unchecked). Each generated request is sent once as each identity: the six district-wide role
keys, no key at all, and a well-formed key the service never issued. The identities are so
compared on the same requests, and generation, the costly part, happens once.

What every answer must satisfy, schemathesis' own checks first:

* ``not_a_server_error``: never a 5xx;
* ``response_schema_conformance``: a documented status with a documented schema matches it;
* ``content_type_conformance``: a documented status comes with a documented media type;
* ``negative_data_rejection``: a request that breaks the schema is refused (4xx);
* ``positive_data_acceptance``: a schema-valid request is not refused for its form: the
  expected answers are 2xx and the legitimate problem statuses 401/403/404/409/412/422/429
  (unknown ids, roles, rules, stale versions, domain validation such as future dates);
* ``ignored_auth``: an operation that declares bearer auth refuses the request without the
  key and with an invalid one (probed on the first success of each operation and identity);
* ``error_schema_conformance`` (here): a problem document sent for a documented status is
  held to that status' documented schema (schemathesis skips a body whose media type the
  document does not list, so ``application/problem+json`` would otherwise go unchecked);
* ``problem_details`` (here): every 4xx is an RFC 9457 problem document whose ``status``
  is the HTTP status, and a status the document does not list is one of the problem
  statuses the API legitimately answers with;
* ``authentication`` (here, without a valid key): every operation but the public ones is
  refused with 401 (``missing_api_key`` / ``invalid_api_key``, ``WWW-Authenticate: Bearer``),
  or with a refusal of the request's form made before any key is looked at, which reveals
  nothing: the guard's 413/415/422 ``control_characters``, or 422 for a body that is not JSON
  at all; the public operations answer without a key;
* ``key_accepted`` (here, with a role's key): an issued key is never refused as a credential.

``status_code_conformance`` is left out on purpose: the document lists only the success status
and 422 of each operation, while 401/403/404/409/412/413/415/429 are legitimate answers of every
operation that it describes in prose; ``problem_details`` holds them to a closed list instead.
A failing check fails the identity's test with each distinct failure and a request reproducing it.
"""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import Case, CheckContext, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
)

from application.services import Services
from domain.common import Actor, Role, Stamp
from tests.conftest import NOW
from tests.factories import resident_body, site_body, unique, unique_area

ROLES = ("caseworker", "supervisor", "finance", "auditor", "api_consumer", "admin")
NO_KEY = "no_key"
BAD_KEY = "bad_key"
IDENTITIES = (*ROLES, NO_KEY, BAD_KEY)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

# Generated requests per operation, each sent as every identity; then, for an operation with
# path parameters, schema-valid requests on records that exist (random ids only ever meet 404).
POSITIVE_EXAMPLES = 6
NEGATIVE_EXAMPLES = 6
PINNED_EXAMPLES = 4
SEED = 20261125

# Statuses the API answers with that the document does not list per operation (see the README
# and api/problems.py): auth, role, unknown id, rule, stale If-Match, size, media type, rate.
PROBLEM_STATUSES = frozenset({401, 403, 404, 409, 412, 413, 415, 422, 429})
PROBLEM_JSON = "application/problem+json"
# Refusals of a request's form that come before any key is looked at (the ASGI guard, or
# FastAPI reading a body that is not JSON): they say nothing about what is stored.
PRE_AUTH_RULES = {413: {"body_too_large"}, 415: {"content_type"}, 422: {"control_characters", "validation"},
                  400: {"content_length"}}

CONFIG = schemathesis.Config.from_dict({
    "generation": {
        # The key is set per identity below; schemathesis must not draw Authorization headers.
        "with-security-parameters": False,
    },
    "checks": {
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429", "5xx"],
        },
    },
})


# -- checks of this file -------------------------------------------------------------------------
def _media_type(response: Response) -> str:
    values = response.headers.get("content-type") or [""]
    return values[0].split(";")[0].strip().lower()


def _problem(response: Response) -> dict[str, Any] | None:
    if _media_type(response) not in (PROBLEM_JSON, "application/json"):
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _documented(case: Case, status: int) -> Any:
    return case.operation.responses.find_by_status_code(status)


def error_schema_conformance(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A problem document answering a documented status matches that status' documented JSON schema."""
    if _media_type(response) != PROBLEM_JSON:
        return None
    definition = _documented(case, response.status_code)
    if definition is None or definition.get_schema("application/json").schema is None:
        return None
    headers = {name: list(values) for name, values in response.headers.items()}
    headers["content-type"] = ["application/json"]
    as_json = Response(status_code=response.status_code, headers=headers, content=response.content,
                       request=response.request, elapsed=response.elapsed, verify=response.verify,
                       message=response.message, http_version=response.http_version, encoding=response.encoding)
    try:
        response_schema_conformance(ctx, as_json, case)
    except Failure as failure:  # reported under this check's name, not as a plain schema violation
        raise AssertionError(f"{failure.title}: {failure.message}") from None
    return None


def problem_details(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Every 4xx is an RFC 9457 problem document; an undocumented status is a known problem status."""
    status = response.status_code
    if status < 400 or status >= 500:
        return None
    if _documented(case, status) is None:
        assert status in PROBLEM_STATUSES, (
            f"status {status} is neither documented for {case.operation.label} nor one of the problem statuses "
            f"the API answers with ({sorted(PROBLEM_STATUSES)})")
    assert _media_type(response) == PROBLEM_JSON, f"a {status} is sent as {_media_type(response)!r}, not {PROBLEM_JSON}"
    body = _problem(response)
    assert body is not None, f"a {status} problem document is not a JSON object"
    for member in ("type", "title", "detail"):
        assert isinstance(body.get(member), str), f"problem member {member!r} is missing or not a string"
    assert body.get("status") == status, f"problem member 'status' is {body.get('status')!r}, the response {status}"
    return None


def _is_public(case: Case) -> bool:
    return case.operation.path in PUBLIC_PATHS


def authentication(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """Without a valid key: 401 everywhere but the public operations (or a pre-auth refusal of the form)."""
    status = response.status_code
    if _is_public(case):
        assert status not in (401, 403), f"public operation {case.operation.label} refused a caller without a key"
        return None
    body = _problem(response) or {}
    rule = body.get("rule")
    if status == 401:
        assert rule in ("missing_api_key", "invalid_api_key"), f"401 with rule {rule!r}"
        challenge = response.headers.get("www-authenticate") or [""]
        assert challenge[0].lower().startswith("bearer"), "401 without 'WWW-Authenticate: Bearer'"
        return None
    errors = [e.get("rule") for e in body.get("errors", []) if isinstance(e, dict)]
    # "validation" before the key check only for a body that is not JSON at all (FastAPI reads it first).
    before_auth = rule in PRE_AUTH_RULES.get(status, ()) and (rule != "validation" or errors == ["json_invalid"])
    assert before_auth, (
        f"a request without a valid key got {status} (rule {rule!r}, errors {errors}) from {case.operation.label}: "
        "it must be refused with 401 before anything is read or done")
    return None


def key_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """A district-wide key the service issued is never refused as a credential."""
    assert response.status_code != 401, f"a valid key was refused: {response.content[:200]!r}"
    return None


class IgnoredAuthOnce:
    """``ignored_auth`` on the first success of each operation (it re-sends the request twice
    without the key and with an invalid one); the schemathesis engine does the same per run."""

    def __init__(self) -> None:
        self.confirmed: set[str] = set()

    def __call__(self, ctx: CheckContext, response: Response, case: Case) -> bool | None:
        if not 200 <= response.status_code < 300 or case.operation.label in self.confirmed:
            return None
        ignored_auth(ctx, response, case)
        self.confirmed.add(case.operation.label)
        return None


def _checks(identity: str) -> list[Callable[..., bool | None]]:
    common: list[Callable[..., bool | None]] = [
        not_a_server_error, response_schema_conformance, content_type_conformance, error_schema_conformance,
        negative_data_rejection, positive_data_acceptance, problem_details]
    once = IgnoredAuthOnce()
    once.__name__ = "ignored_auth"  # type: ignore[attr-defined]
    if identity in ROLES:
        return [*common, key_accepted, once]
    return [*common, authentication, once]


# -- the campaign --------------------------------------------------------------------------------
@dataclass
class Finding:
    identity: str
    check: str
    operation: str
    status: int
    title: str
    message: str
    request: str
    body: str
    count: int = 1


@dataclass
class Campaign:
    operations: list[str] = field(default_factory=list)
    generated: collections.Counter[str] = field(default_factory=collections.Counter)  # by mode
    examples: collections.Counter[str] = field(default_factory=collections.Counter)  # by operation
    requests: collections.Counter[str] = field(default_factory=collections.Counter)  # by identity
    statuses: dict[str, collections.Counter[int]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    pre_auth: collections.Counter[str] = field(default_factory=collections.Counter)
    succeeded: set[str] = field(default_factory=set)  # operations that answered 2xx at least once
    no_negative: list[str] = field(default_factory=list)
    world: dict[str, str] = field(default_factory=dict)
    pinned: list[str] = field(default_factory=list)
    findings: dict[tuple[str, str, str, int, str], Finding] = field(default_factory=dict)
    seconds: float = 0.0
    auth_confirmed: dict[str, int] = field(default_factory=dict)  # operations ``ignored_auth`` probed

    def failures(self, identity: str | None = None) -> list[Finding]:
        return [f for f in self.findings.values() if identity is None or f.identity == identity]


def _check_name(failure: Failure, names: set[str]) -> str:
    for name in failure.checks:
        if name in names:
            return name
    if "`" in failure.title:  # "Custom check failed: `name`"
        return failure.title.split("`")[1]
    return type(failure).__name__


def _first_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ``/{collection}/{aggregate_id}/...`` names the record by the collection it is in.
COLLECTION_IDS = {"sites": "site_id", "residents": "resident_id", "disputes": "case_id",
                  "committees": "committee_id", "subsidy-programs": "program_id",
                  "subsidy-applications": "application_id", "keys": "key_id", "areas": "code"}


def _existing(path: str, names: list[str], world: dict[str, str]) -> dict[str, str] | None:
    """Path parameters naming this test's own records, if it has one for each parameter."""
    collection = path.strip("/").split("/")[0]
    values = {}
    for name in names:
        key = COLLECTION_IDS.get(collection, name) if name == "aggregate_id" else name
        if key not in world:
            return None
        values[name] = world[key]
    return values or None


class Runner:
    def __init__(self, base_url: str, keys: dict[str, str], services: Services) -> None:
        self.base_url = base_url
        self.services = services
        self.session = requests.Session()
        self.headers = {role: {"Authorization": f"Bearer {keys[role]}"} for role in ROLES}
        self.headers[NO_KEY] = {}
        # Shaped like an issued key (``ld_`` and 43 URL-safe characters), but never issued.
        self.headers[BAD_KEY] = {"Authorization": "Bearer ld_fuzzNeverIssued" + "0" * 27}
        self.checks = {identity: _checks(identity) for identity in IDENTITIES}
        self.campaign = Campaign()

    def run(self, world: dict[str, str]) -> Campaign:
        started = time.monotonic()
        self.campaign.world = world
        schema = schemathesis.openapi.from_url(self.base_url + "/openapi.json", config=CONFIG)
        operations = [result.ok() for result in schema.get_all_operations()]
        for operation in operations:
            self.campaign.operations.append(operation.label)
            for mode, examples in ((GenerationMode.POSITIVE, POSITIVE_EXAMPLES),
                                   (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES)):
                self._fuzz(operation, mode, examples)
        # Reads before commands, so that the commands' effects (closure, erasure, revocation) come last.
        for operation in sorted(operations, key=lambda op: op.method.upper() != "GET"):
            pinned = _existing(operation.path, [p.name for p in operation.path_parameters], world)
            if pinned:
                self.campaign.pinned.append(operation.label)
                self._fuzz(operation, GenerationMode.POSITIVE, PINNED_EXAMPLES, path_parameters=pinned)
        self.campaign.seconds = time.monotonic() - started
        for identity, checks in self.checks.items():
            self.campaign.auth_confirmed[identity] = sum(
                len(check.confirmed) for check in checks if isinstance(check, IgnoredAuthOnce))
        return self.campaign

    def _fuzz(self, operation: Any, mode: GenerationMode, examples: int,
              path_parameters: dict[str, str] | None = None) -> None:
        head = max(1, self.services.head())
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @hypothesis.seed(SEED)
        @hypothesis.settings(max_examples=examples, database=None, deadline=None, phases=[Phase.generate],
                             suppress_health_check=list(HealthCheck), print_blob=False)
        @hypothesis.given(case=strategy)
        def send_as_everyone(case: Case) -> None:
            self.campaign.generated[mode.value] += 1
            self.campaign.examples[operation.label] += 1
            self._bound_waits(case, head)
            for identity in IDENTITIES:
                self._send(case.derive(), identity)

        try:
            send_as_everyone()
        except hypothesis.errors.Unsatisfiable:
            # No parameters and no body (/healthz, /readyz): nothing can break the schema.
            self.campaign.no_negative.append(operation.label)

    @staticmethod
    def _bound_waits(case: Case, head: int) -> None:
        # ``?after=`` beyond the store's head waits the whole read timeout (5 s in tests) by design;
        # a valid position past the head is moved onto it. Values outside the schema are left alone.
        after = case.query.get("after") if isinstance(case.query, dict) else None
        if isinstance(after, int) and not isinstance(after, bool) and head < after <= 2**62:
            case.query["after"] = head

    def _send(self, case: Case, identity: str) -> None:
        headers = self.headers[identity]
        if identity == NO_KEY and case.headers:
            for name in [n for n in case.headers if n.lower() == "authorization"]:
                del case.headers[name]
        campaign = self.campaign
        campaign.requests[identity] += 1
        try:
            response = case.call(base_url=self.base_url, session=self.session, headers=headers, timeout=30)
        except Exception as error:  # the request never got an answer
            self._record(identity, "transport", case.operation.label, 0, type(error).__name__, str(error),
                         case, headers, "")
            return
        campaign.statuses[identity][response.status_code] += 1
        if 200 <= response.status_code < 300:
            campaign.succeeded.add(case.operation.label)
        if identity in (NO_KEY, BAD_KEY) and response.status_code != 401 and not _is_public(case):
            problem = _problem(response) or {}
            errors = sorted({f"{e.get('location')}:{e.get('rule')}" for e in problem.get("errors", [])
                             if isinstance(e, dict)})
            campaign.pre_auth[f"{response.status_code} {problem.get('rule')} {','.join(errors)}"] += 1
        checks = self.checks[identity]
        try:
            case.validate_response(response, checks=checks, headers=headers,
                                   transport_kwargs={"base_url": self.base_url, "headers": headers, "timeout": 30})
        except FailureGroup as group:
            names = {getattr(check, "__name__", "") for check in checks}
            for failure in group.exceptions:
                self._record(identity, _check_name(failure, names), case.operation.label, response.status_code,
                             failure.title, failure.message, case, headers, response.text)

    def _record(self, identity: str, check: str, operation: str, status: int, title: str, message: str,
                case: Case, headers: dict[str, str], body: str) -> None:
        key = (identity, check, operation, status, title)
        found = self.campaign.findings.get(key)
        if found is not None:
            found.count += 1
            return
        self.campaign.findings[key] = Finding(
            identity=identity, check=check, operation=operation, status=status, title=title,
            message=_first_line(message, 400), request=case.as_curl_command(headers=headers, base_url=self.base_url),
            body=_first_line(body, 400))


def build_world(base_url: str, keys: dict[str, str], services: Services) -> dict[str, str]:
    """Records of this test's own, in an area of its own: path parameters that name something.

    A record the service refuses to create is left out (its operations then meet random ids only)."""
    area = unique_area("Fuzz")
    world = {"code": area}
    http = requests.Session()

    def create(path: str, body: dict[str, Any], name: str, member: str = "id") -> None:
        for role in ("caseworker", "supervisor", "finance", "admin"):  # whoever may create it
            answer = http.post(base_url + path, json=body, headers={"Authorization": f"Bearer {keys[role]}"},
                               timeout=30)
            if answer.status_code in (200, 201) and answer.json().get(member):
                world[name] = str(answer.json()[member])
                return
            if answer.status_code != 403:
                return

    create("/sites", site_body(area=area), "site_id")
    create("/residents", resident_body(area=area), "resident_id")
    create("/disputes", {"category": "neighbours", "description": "noise at night", "area": area,
                         "parties": [{"name": "Room 12", "kind": "other"}], "occurred_on": "2026-11-01"}, "case_id")
    create("/committees", {"name": unique("Committee"), "area": area, "established_on": "2026-01-01",
                           "members": [{"name": "Wang"}, {"name": "Zhao"}]}, "committee_id")
    if "committee_id" in world:
        agenda = [{"dispute_id": world["case_id"]}] if "case_id" in world else [{"title": "Sanitation rota"}]
        create(f"/committees/{world['committee_id']}/meetings", {"scheduled_on": "2026-11-24", "agenda": agenda},
               "meeting_id", member="meeting_id")
    create("/subsidy-programs", {"name": unique("Facilities"), "purpose": "facilities", "fiscal_year": 2026,
                                 "budget": "1000000.00", "modes": ["one_off", "phased"]}, "program_id")
    if "program_id" in world and "site_id" in world:
        create("/subsidy-applications", {"program_id": world["program_id"], "site_id": world["site_id"],
                                         "amount": "100.00", "mode": "one_off",
                                         "justification": "a canteen for 300 residents"}, "application_id")
    # A key of its own to rotate and revoke, never one the other tests use.
    issued, _ = services.app.issue_key(user_id=unique("fuzz-key"), role=Role.CASEWORKER.value, areas=[area],
                                       scopes=[], stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))
    world["key_id"] = str(issued.id)
    return world


@pytest.fixture(scope="module")
def campaign(base_url: str, keys: dict[str, str], services: Services) -> Campaign:
    return Runner(base_url, keys, services).run(build_world(base_url, keys, services))


def _describe(findings: list[Finding]) -> str:
    """Distinct failures grouped by check, title and status, with one reproducing request each."""
    groups: dict[tuple[str, str, int], list[Finding]] = collections.defaultdict(list)
    for finding in findings:
        groups[(finding.check, finding.title, finding.status)].append(finding)
    lines = []
    for (check, title, status), members in sorted(groups.items()):
        operations = sorted({m.operation for m in members})
        first = min(members, key=lambda m: len(m.request))  # the shortest request that shows it
        lines.append(f"[{check}] {title} (status {status}): {sum(m.count for m in members)} requests, "
                     f"{len(operations)} operations: {', '.join(operations[:8])}{' …' if len(operations) > 8 else ''}")
        lines.append(f"    e.g. as {first.identity}: {first.request}")
        lines.append(f"    answer: {first.body}")
        lines.append(f"    check: {first.message}")
    return "\n".join(lines)


# -- tests ---------------------------------------------------------------------------------------
def test_the_document_declares_bearer_auth_on_every_operation_but_the_public_ones(base_url: str) -> None:
    document = requests.get(base_url + "/openapi.json", timeout=30).json()
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("type") == "http" and s.get("scheme") == "bearer" for s in schemes.values())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            declared = bool(operation.get("security") or document.get("security"))
            assert declared == (path not in PUBLIC_PATHS), f"{method.upper()} {path}: security {declared}"


@pytest.mark.parametrize("identity", IDENTITIES)
def test_fuzzing_finds_no_failures(campaign: Campaign, identity: str) -> None:
    assert campaign.requests[identity] > 0
    failures = campaign.failures(identity)
    if failures:
        pytest.fail(f"{len(failures)} distinct failures as {identity}:\n" + _describe(failures), pytrace=False)


def test_fuzzing_summary(campaign: Campaign, figures: list[str]) -> None:
    operations = len(campaign.operations)
    per_identity = ", ".join(f"{identity} {campaign.requests[identity]}" for identity in IDENTITIES)
    failures = campaign.failures()
    distinct = {(f.check, f.title, f.status) for f in failures}
    figures.append(
        f"fuzz (schemathesis {schemathesis.__version__}, seed {SEED}): {operations} operations, "
        f"{campaign.generated['positive']} positive + {campaign.generated['negative']} negative examples "
        f"(≤{POSITIVE_EXAMPLES}+{NEGATIVE_EXAMPLES} per operation, +≤{PINNED_EXAMPLES} on existing records for "
        f"{len(campaign.pinned)}), each sent as every identity: {per_identity}; "
        f"{sum(campaign.requests.values())} requests in {campaign.seconds:.0f} s; failures: {len(failures)} "
        f"(identity, check, operation) findings of {len(distinct)} distinct kinds")
    print(f"\nstatuses by identity: { {i: dict(sorted(c.items())) for i, c in campaign.statuses.items()} }")
    print(f"refused without a valid key before the key check: {dict(campaign.pre_auth)}")
    print(f"no negative data possible: {campaign.no_negative}")
    print(f"operations ignored_auth probed without and with an invalid key: {campaign.auth_confirmed}")
    print(f"never answered 2xx: {sorted(set(campaign.operations) - campaign.succeeded)}")
    print(f"records of its own: {sorted(campaign.world)}; pinned operations: {len(campaign.pinned)}")
    assert operations > 0
    assert not [label for label in campaign.operations if campaign.examples[label] == 0]
