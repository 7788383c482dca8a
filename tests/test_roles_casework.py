"""Every casework command with every role: who may, and that refusals store nothing."""

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.factories import resident_body, unique, unique_area

ROLES = ["caseworker", "supervisor", "finance", "auditor", "api_consumer", "admin"]
WORKERS = {"caseworker", "supervisor", "admin"}
SUPERVISORS = {"supervisor", "admin"}


def new_case(caseworker: Api) -> str:
    return str(caseworker.post("/disputes", {
        "category": "other", "description": "d", "parties": [{"name": "X", "kind": "other"}],
        "area": unique_area("Roles"), "occurred_on": "2026-11-01"}).json()["id"])


def resolved_case(caseworker: Api, supervisor: Api) -> str:
    case = new_case(caseworker)
    supervisor.post(f"/disputes/{case}/resolution", {"outcome": "withdrawn"})
    return case


def closed_case(caseworker: Api, supervisor: Api) -> str:
    case = new_case(caseworker)
    caseworker.post(f"/disputes/{case}/resolution", {"outcome": "withdrawn"})
    supervisor.post(f"/disputes/{case}/closure", {})
    return case


def committee(supervisor: Api) -> tuple[str, str]:
    committee_id = supervisor.post("/committees", {"name": unique("C"), "area": "xinqi", "established_on": "2026-01-01",
                                                   "members": [{"name": "W"}, {"name": "L"}]}).json()["id"]
    member = supervisor.get(f"/committees/{committee_id}").json()["members"][0]["member_id"]
    return committee_id, member


def meeting(caseworker: Api, supervisor: Api) -> tuple[str, str, str]:
    committee_id, member = committee(supervisor)
    meeting_id = caseworker.post(f"/committees/{committee_id}/meetings", {
        "scheduled_on": "2026-11-24", "agenda": [{"title": "t"}]}).json()["meeting_id"]
    return committee_id, meeting_id, member


def eligible_resident(caseworker: Api) -> str:
    return str(caseworker.post("/residents", resident_body(registered_on="2025-01-01")).json()["id"])


def applied_resident(caseworker: Api) -> str:
    rid = eligible_resident(caseworker)
    caseworker.post(f"/residents/{rid}/permit", {"applied_on": "2025-08-01"})
    return rid


def issued_resident(caseworker: Api) -> str:
    rid = applied_resident(caseworker)
    caseworker.post(f"/residents/{rid}/permit/issuance", {"number": unique("JZZ"), "issued_on": "2025-08-05"})
    return rid


Setup = Callable[[Api, Api], tuple[str, dict[str, Any]]]

COMMANDS: dict[str, tuple[Setup, set[str]]] = {
    "log dispute": (lambda c, s: ("/disputes", {"category": "other", "description": "d", "area": "xinqi",
                                                "parties": [{"name": "X", "kind": "other"}],
                                                "occurred_on": "2026-11-01"}), WORKERS),
    "assign": (lambda c, s: (f"/disputes/{new_case(c)}/assignment", {"assignee": "test-caseworker"}), SUPERVISORS),
    "note": (lambda c, s: (f"/disputes/{new_case(c)}/notes", {"text": "t"}), WORKERS),
    "mediation": (lambda c, s: (f"/disputes/{_assigned(c, s)}/mediations",
                                {"held_on": "2026-11-02", "participants": ["a"], "outcome": "o"}), WORKERS),
    "escalate": (lambda c, s: (f"/disputes/{new_case(c)}/escalation",
                               {"to": "management_committee", "reason": "r"}), WORKERS),
    "resolve": (lambda c, s: (f"/disputes/{new_case(c)}/resolution", {"outcome": "withdrawn"}), WORKERS),
    "close": (lambda c, s: (f"/disputes/{_resolved_by_caseworker(c)}/closure", {}), SUPERVISORS),
    "reopen": (lambda c, s: (f"/disputes/{closed_case(c, s)}/reopening", {"reason": "r"}), SUPERVISORS),
    "establish committee": (lambda c, s: ("/committees", {"name": "C", "area": "xinqi", "established_on": "2026-01-01",
                                                          "members": [{"name": "W"}]}), SUPERVISORS),
    "add member": (lambda c, s: (f"/committees/{committee(s)[0]}/members",
                                 {"name": "Z", "joined_on": "2026-02-01"}), SUPERVISORS),
    "remove member": (lambda c, s: _removal(s), SUPERVISORS),
    "schedule meeting": (lambda c, s: (f"/committees/{committee(s)[0]}/meetings",
                                       {"scheduled_on": "2026-11-24", "agenda": [{"title": "t"}]}), WORKERS),
    "record minutes": (lambda c, s: _minutes(c, s), WORKERS),
    "apply for permit": (lambda c, s: (f"/residents/{eligible_resident(c)}/permit",
                                       {"applied_on": "2025-08-01"}), WORKERS),
    "issue permit": (lambda c, s: (f"/residents/{applied_resident(c)}/permit/issuance",
                                   {"number": unique("JZZ"), "issued_on": "2025-08-05"}), WORKERS),
    "endorse permit": (lambda c, s: (f"/residents/{issued_resident(c)}/permit/endorsements",
                                     {"endorsed_on": "2026-08-01"}), WORKERS),
}


def _assigned(caseworker: Api, supervisor: Api) -> str:
    case = new_case(caseworker)
    supervisor.post(f"/disputes/{case}/assignment", {"assignee": "test-caseworker"})
    return case


def _resolved_by_caseworker(caseworker: Api) -> str:
    case = new_case(caseworker)
    caseworker.post(f"/disputes/{case}/resolution", {"outcome": "withdrawn"})
    return case


def _removal(supervisor: Api) -> tuple[str, dict[str, Any]]:
    committee_id, member = committee(supervisor)
    return f"/committees/{committee_id}/member-removals", {"member_id": member, "reason": "r",
                                                           "left_on": "2026-03-01"}


def _minutes(caseworker: Api, supervisor: Api) -> tuple[str, dict[str, Any]]:
    committee_id, meeting_id, member = meeting(caseworker, supervisor)
    return f"/committees/{committee_id}/meetings/{meeting_id}/minutes", {"held_on": "2026-11-24",
                                                                          "attendees": [member]}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_send_only_its_casework_commands(
    as_role: Any, caseworker: Api, supervisor: Api, stored: Any, role: str, command: str
) -> None:
    setup, allowed = COMMANDS[command]
    path, body = setup(caseworker, supervisor)
    snapshot = stored()
    response = as_role(role).post(path, body)
    if role in allowed:
        assert response.status_code in (200, 201), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["rule"] == "role_not_allowed"
        assert snapshot.unchanged()


def test_everyone_with_a_key_reads_casework(as_role: Any) -> None:
    for role in ROLES:
        api = as_role(role)
        for path in ("/disputes", "/committees", "/permits", "/statistics"):
            assert api.get(path).status_code == 200, (role, path)
