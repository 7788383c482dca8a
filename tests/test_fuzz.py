"""Exploration (temporary)."""

from __future__ import annotations

import collections
import time

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, response_schema_conformance, negative_data_rejection, ignored_auth,
          content_type_conformance, status_code_conformance]


def test_explore(base_url, keys):
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    session = requests.Session()
    statuses = collections.Counter()
    fails = collections.Counter()
    examples = []
    started = time.monotonic()
    for role in ["admin"]:
        headers = {"Authorization": f"Bearer {keys[role]}"} if role else {}
        for result in schema.get_all_operations():
            op = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run_one(op, mode, role, headers, base_url, session, statuses, fails, examples)
    print("elapsed", time.monotonic() - started)
    for k, v in sorted(statuses.items(), key=str):
        print("S", k, v)
    for k, v in sorted(fails.items(), key=str):
        print("F", k, v)
    for e in examples:
        print("E", e)


def run_one(op, mode, role, headers, base_url, session, statuses, fails, examples):
                @hypothesis.given(case=op.as_strategy(generation_mode=mode))
                @hypothesis.settings(max_examples=5, derandomize=True, database=None, deadline=None,
                                     suppress_health_check=list(HealthCheck), phases=[Phase.generate])
                def probe(case):
                    if case.query and isinstance(case.query.get("after"), int) and case.query["after"] > 10:
                        case.query["after"] = 1
                    response = case.call(base_url=base_url, session=session, headers=headers)
                    statuses[(role, op.label, mode.value, response.status_code)] += 1
                    if response.elapsed > 0.2: print('SLOW', response.elapsed, case.as_curl_command(headers=headers)[:300], response.status_code, response.text[:200])
                    try:
                        case.validate_response(response, checks=CHECKS, headers=headers,
                                               transport_kwargs={"base_url": base_url, "headers": headers})
                    except FailureGroup as group:
                        for f in group.exceptions:
                            key = (role, op.label, mode.value, type(f).__name__, f.title, response.status_code)
                            if key not in fails:
                                examples.append((key, case.as_curl_command(headers=headers), response.text[:300],
                                                 f.message[:600]))
                            fails[key] += 1
                try:
                    probe()
                except hypothesis.errors.Unsatisfiable:
                    statuses[(role, op.label, mode.value, "unsat")] += 1
