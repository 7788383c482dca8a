"""Security and privacy over real HTTP: bearer tokens, key revocation and rotation, what an
api_consumer sees, areas as reference data, limits, hostile input, headers."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.app import api_routes, create_app
from application.keys import Authenticator, TokenRules, jwks_document
from application.services import Services
from application.settings import Settings
from domain.common import Actor, Role, Stamp
from tests.conftest import NOW, Api, define_area, issue_key, serve_app
from tests.factories import resident_body, site_body, unique, unique_area

ISSUER, AUDIENCE = "https://idp.example", "liudong-api"


# -- bearer tokens ---------------------------------------------------------------------------
@pytest.fixture()
def tokens(services: Services, tmp_path: Path, monkeypatch: Any) -> dict[str, Any]:
    """The service accepts RS256 tokens signed by a key in a JWKS file, and HS256 ones."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(jwks_document({"k1": private.public_key()}))
    rules = TokenRules(issuer=ISSUER, audience=AUDIENCE, jwks_file=jwks, hs256_secret="s" * 32)
    monkeypatch.setattr(services, "authenticator", Authenticator(services.pool, services.app.areas, rules))
    return {"private": private, "secret": "s" * 32}


def token(tokens: dict[str, Any], *, alg: str = "RS256", key: Any = None, **claims: Any) -> str:
    now = datetime.now(UTC)
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "idp-user-1", "exp": now + timedelta(minutes=5),
            "iat": now, "role": "caseworker", **claims}
    body = {k: v for k, v in body.items() if v is not None}
    if alg == "RS256":
        return jwt.encode(body, key or tokens["private"], algorithm="RS256", headers={"kid": "k1"})
    return jwt.encode(body, key or tokens["secret"], algorithm="HS256")


def test_a_valid_token_acts_as_its_user_role_and_areas(http: httpx.Client, tokens: dict[str, Any],
                                                       services: Services) -> None:
    area, elsewhere = unique_area("Token"), unique_area("Other")
    bearer = {"Authorization": f"Bearer {token(tokens, areas=[area], sub='li.token')}"}
    created = http.post("/residents", json=resident_body(area=area), headers=bearer)
    assert created.status_code == 201, created.text
    assert services.app.events.get(uuid.UUID(created.json()["id"])).__next__().actor_id == "li.token"
    foreign = http.post("/residents", json=resident_body(area=elsewhere), headers=bearer)
    assert foreign.status_code == 403 and foreign.json()["rule"] == "area_not_allowed"
    hs = {"Authorization": f"Bearer {token(tokens, alg='HS256', role='auditor')}"}
    assert http.get("/residents", params={"area": area}, headers=hs).status_code == 200


@pytest.mark.parametrize("claims", [
    {"exp": datetime.now(UTC) - timedelta(minutes=5)},
    {"aud": "someone-else"},
    {"iss": "https://evil.example"},
    {"role": "system"},
    {"role": "king"},
    {"areas": ["nowhere-at-all"]},
    {"sub": None},
])
def test_a_token_that_fails_any_check_is_refused(http: httpx.Client, tokens: dict[str, Any],
                                                 claims: dict[str, Any]) -> None:
    bad = {"Authorization": f"Bearer {token(tokens, **claims)}"}
    answer = http.get("/residents", headers=bad)
    assert answer.status_code == 401 and answer.json()["rule"] == "invalid_api_key"
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_token_signed_with_another_key_is_refused(http: httpx.Client, tokens: dict[str, Any]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert http.get("/residents", headers={"Authorization": f"Bearer {token(tokens, key=other)}"}).status_code == 401
    forged = token(tokens, alg="HS256", key="x" * 32)
    assert http.get("/residents", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


# -- keys ------------------------------------------------------------------------------------
def test_a_revoked_key_fails_within_a_second_and_a_rotated_one_is_replaced(
        http: httpx.Client, keys: dict[str, str], services: Services) -> None:
    admin = Api(http, keys["admin"])
    issued = admin.post("/keys", {"user_id": unique("rotating"), "role": "caseworker", "areas": ["xinqi"]})
    assert issued.status_code == 201, issued.text
    key_id, key = issued.json()["id"], issued.json()["key"]
    caseworker = Api(http, key)
    assert caseworker.get("/residents").status_code == 200  # remembered by the process now
    rotated = admin.post(f"/keys/{key_id}/rotation", {})
    assert rotated.status_code == 201
    started = time.monotonic()
    while caseworker.get("/residents").status_code == 200:
        assert time.monotonic() - started < 1.0, "the rotated (revoked) key still worked after a second"
        time.sleep(0.02)
    assert Api(http, rotated.json()["key"]).get("/residents").status_code == 200
    new_id = rotated.json()["id"]
    assert admin.post(f"/keys/{new_id}/revocation", {"reason": "left the office"}).status_code == 200
    started = time.monotonic()
    while Api(http, rotated.json()["key"]).get("/residents").status_code == 200:
        assert time.monotonic() - started < 1.0
        time.sleep(0.02)
    listed = {k["key_id"]: k for k in admin.get("/keys").json()["items"]}
    assert listed[key_id]["revoked_at"] and listed[new_id]["rotated_from"] == key_id
    assert key not in admin.get("/keys").text
    # Key management is recorded as events, with the admin as the actor.
    events = list(services.app.events.get(uuid.UUID(new_id)))
    assert [type(e).__name__ for e in events] == ["Issued", "Revoked"]
    assert events[-1].actor_id == "test-admin"
    assert Api(http, keys["supervisor"]).get("/keys").status_code == 403


# -- what an api_consumer sees ------------------------------------------------------------------
def test_an_api_consumer_sees_personal_fields_masked_unless_the_key_holds_the_pii_scope(
        http: httpx.Client, keys: dict[str, str], services: Services) -> None:
    caseworker, supervisor = Api(http, keys["caseworker"]), Api(http, keys["supervisor"])
    masked = Api(http, keys["api_consumer"])
    full = Api(http, issue_key(services, unique("pii-consumer"), Role.API_CONSUMER, scopes=["pii"]))
    site = supervisor.post("/sites", site_body()).json()
    body = resident_body(name="Zhang Sanfeng", phone="13912345678")
    born = int(body["id_number"][6:10])
    resident = caseworker.post("/residents", body)
    resident_id, position = resident.json()["id"], resident.json()["position"]
    caseworker.post(f"/residents/{resident_id}/moves", {"site_id": site["id"], "effective_date": "2026-04-01"})
    case = caseworker.post("/disputes", {"category": "neighbours", "description": "Zhang Sanfeng and a neighbour",
                                         "parties": [{"resident_id": resident_id},
                                                     {"name": "Wang Landlord", "kind": "landlord"}],
                                         "area": "xinqi", "occurred_on": "2026-11-01"}).json()
    committee = supervisor.post("/committees", {"name": unique("C"), "area": "xinqi", "established_on": "2026-01-01",
                                                "members": [{"name": "Zhang Sanfeng", "resident_id": resident_id}]})
    committee_id = committee.json()["id"]
    position = committee.json()["position"]

    doc = masked.get(f"/residents/{resident_id}").json()
    assert (doc["name"], doc["phone"], doc["birth_date"], doc["birth_year"]) == ("Zhang*", None, None, born)
    assert doc["id_number_masked"].count("*") >= 10
    doc = full.get(f"/residents/{resident_id}").json()
    assert (doc["name"], doc["phone"], doc["birth_date"][:4]) == ("Zhang Sanfeng", "13912345678", str(born))
    for role in ("auditor", "finance"):  # personal fields in full, as the README's table says (found by a review)
        doc = Api(http, keys[role]).get(f"/residents/{resident_id}").json()
        assert (doc["name"], doc["phone"]) == ("Zhang Sanfeng", "13912345678"), role
    listed = masked.get("/residents", params={"site_id": site["id"], "after": position}).json()["items"]
    assert [(r["name"], r["birth_date"], r["birth_year"]) for r in listed] == [("Zhang*", None, born)]
    assert full.get("/residents", params={"site_id": site["id"]}).json()["items"][0]["name"] == "Zhang Sanfeng"
    assert masked.get("/residents", params={"name": "Zhang"}).status_code == 403  # no probing names
    permit_list = masked.get("/permits").json()["items"]
    assert all(item["name"].endswith("*") or item["name"] in ("[已删除]", "[erased]") for item in permit_list)
    dispute = masked.get(f"/disputes/{case['id']}").json()
    assert dispute["description"] is None
    assert {p.get("name") for p in dispute["parties"]} == {None, "Wang*"}
    assert all(entry["facts"].get("description") is None for entry in dispute["timeline"])
    assert full.get(f"/disputes/{case['id']}").json()["description"] == "Zhang Sanfeng and a neighbour"
    members = masked.get(f"/committees/{committee_id}").json()["members"]
    assert [m["name"] for m in members] == ["Zhang*"]
    agenda = masked.get(f"/committees/{committee_id}/agenda", params={"after": position}).json()
    assert [m["name"] for m in agenda["members"]] == ["Zhang*"]
    assert "Zhang Sanfeng" not in masked.get(f"/committees/{committee_id}").text
    assert supervisor.get(f"/committees/{committee_id}").json()["members"][0]["name"] == "Zhang Sanfeng"
    # A committee's free text and a reason for leaving may name people: hidden from them too.
    meeting = supervisor.post(f"/committees/{committee_id}/meetings",
                              {"scheduled_on": "2026-11-03", "agenda": [{"title": "a bed for Zhang Sanfeng"}]})
    assert meeting.status_code == 200, meeting.text
    left = caseworker.post(f"/residents/{resident_id}/departure",
                           {"effective_date": "2026-11-04", "reason": "Zhang Sanfeng went home"})
    assert left.status_code == 200, left.text
    after = {"after": left.json()["position"]}
    agenda = masked.get(f"/committees/{committee_id}/agenda", params=after).json()
    assert agenda["upcoming"][0]["agenda"][0]["title"] is None
    assert "Zhang Sanfeng" not in masked.get(f"/committees/{committee_id}").text
    assert full.get(f"/committees/{committee_id}/agenda").json()["upcoming"][0]["agenda"][0][
        "title"] == "a bed for Zhang Sanfeng"
    assert masked.get(f"/residents/{resident_id}").json()["departure_reason"] is None
    assert full.get(f"/residents/{resident_id}").json()["departure_reason"] == "Zhang Sanfeng went home"
    assert "Zhang Sanfeng" not in masked.get(f"/residents/{resident_id}/history").text


# -- areas -----------------------------------------------------------------------------------
def test_areas_come_from_the_register_and_a_single_area_key_fills_in_its_area(
        http: httpx.Client, keys: dict[str, str], services: Services) -> None:
    caseworker = Api(http, keys["caseworker"])
    names = {a["code"]: a for a in caseworker.get("/areas", params={"limit": 500}).json()["items"]}
    assert {"新碶街道", "大碶街道", "小港街道", "沿海村", "向家村"} <= {a["name_zh"] for a in names.values()}
    assert names["xinqi-yanhai"]["parent"] == "xinqi" and names["xinqi-yanhai"]["level"] == "village"
    typo = caseworker.post("/residents", resident_body(area="Xinqi Subdistrictt"))
    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "area"
    assert typo.json()["rule"] == "unknown_area"
    by_name = caseworker.post("/residents", resident_body(area="新碶街道"))
    assert by_name.status_code == 201
    assert caseworker.get(f"/residents/{by_name.json()['id']}").json()["area"] == "xinqi"
    assert caseworker.get("/sites", params={"area": "nowhere"}).json()["errors"][0]["field"] == "area"
    # A key of one area registers residents there without being told; a district-wide key must say.
    local = Api(http, issue_key(services, unique("one-area"), Role.CASEWORKER, areas=["xinqi-yanhai"]))
    body = resident_body()
    del body["area"]
    placed = local.post("/residents", body)
    assert placed.status_code == 201, placed.text
    assert local.get(f"/residents/{placed.json()['id']}").json()["area"] == "xinqi-yanhai"
    missing = caseworker.post("/residents", {**body, "id_number": resident_body()["id_number"]})
    assert missing.status_code == 422 and missing.json()["rule"] == "area_missing"
    # A street office's key reaches the villages under it; a village's key does not reach its street office.
    street = Api(http, issue_key(services, unique("street"), Role.CASEWORKER, areas=["xinqi"]))
    assert street.get(f"/residents/{placed.json()['id']}").status_code == 200
    assert local.get(f"/residents/{by_name.json()['id']}").status_code == 404
    # Admins add areas, as events.
    admin = Api(http, keys["admin"])
    code = f"t{uuid.uuid4().hex[:8]}"
    made = admin.post("/areas", {"code": code, "name_zh": "戚家山街道", "name_en": "Qijiashan Subdistrict",
                                 "level": "street_office"})
    assert made.status_code == 201, made.text
    assert caseworker.post("/areas", {"code": code + "x", "name_zh": "x", "name_en": "x",
                                      "level": "town"}).status_code == 403
    assert admin.post("/areas", {"code": code, "name_zh": "x", "name_en": "x", "level": "town"}).status_code == 409
    assert caseworker.post("/residents", resident_body(area="Qijiashan Subdistrict")).status_code == 201


def test_a_key_of_one_area_cannot_reach_into_another_through_a_reference(
        http: httpx.Client, keys: dict[str, str], services: Services) -> None:
    """A move into another area's site, an agenda naming another area's dispute: each is an
    unknown reference (422 naming the field), and nothing changes there."""
    a, b = define_area(services, "RefA"), define_area(services, "RefB")
    district = Api(http, keys["supervisor"])
    local = Api(http, issue_key(services, unique("ref-a"), Role.SUPERVISOR, areas=[a]))
    foreign_site = district.post("/sites", site_body(area=b)).json()["id"]
    resident = local.post("/residents", resident_body(area=a)).json()["id"]
    moved = local.post(f"/residents/{resident}/moves", {"site_id": foreign_site, "effective_date": "2026-11-20"})
    assert moved.status_code == 422 and moved.json()["errors"][0]["field"] == "site_id", moved.text
    assert district.get(f"/sites/{foreign_site}", params={"after": services.head()}).json()["occupants"] == 0
    assert local.get(f"/residents/{resident}").json()["version"] == 1
    foreign_case = district.post("/disputes", {
        "category": "other", "description": "far away", "parties": [{"name": "Li Wei", "kind": "landlord"}],
        "area": b, "occurred_on": "2026-11-01"}).json()["id"]
    committee = local.post("/committees", {"name": unique("Ref Committee"), "area": a,
                                           "established_on": "2026-01-10",
                                           "members": [{"name": "Wang Fang", "role": "chair"}]}).json()["id"]
    agenda = local.post(f"/committees/{committee}/meetings",
                        {"scheduled_on": "2026-11-24", "agenda": [{"title": "x", "dispute_id": foreign_case}]})
    assert agenda.status_code == 422 and agenda.json()["errors"][0]["field"] == "agenda.0.dispute_id", agenda.text
    # Another area's resident named by id: a dispute's party, a committee's new member, a
    # candidate: as unknown as a made-up id (found by a review: they were loaded unchecked, so
    # the answer told whether the id existed and the committee seated them).
    foreign_resident = district.post("/residents", resident_body(area=b)).json()["id"]
    before = services.head()
    case = local.post("/disputes", {"category": "other", "description": "x", "area": a, "occurred_on": "2026-11-01",
                                    "parties": [{"resident_id": foreign_resident}]})
    assert case.status_code == 422 and case.json()["errors"][0]["field"] == "parties.0.resident_id", case.text
    seated = local.post("/committees", {"name": unique("Ref Committee"), "area": a, "established_on": "2026-01-10",
                                        "members": [{"name": "Li Wei", "resident_id": foreign_resident}]})
    assert seated.status_code == 422 and seated.json()["errors"][0]["field"] == "members.0.resident_id", seated.text
    assert services.head() == before
    assert district.get(f"/residents/{foreign_resident}").json()["version"] == 1


def test_an_admin_of_one_area_manages_keys_and_areas_of_that_area_only(
        http: httpx.Client, keys: dict[str, str], services: Services) -> None:
    a, b = define_area(services, "AdmA"), define_area(services, "AdmB")
    admin = Api(http, issue_key(services, unique("admin-a"), Role.ADMIN, areas=[a]))
    own = unique("cw")
    made = admin.post("/keys", {"user_id": own, "role": "caseworker", "areas": [a]})
    assert made.status_code == 201, made.text
    for areas in ([], [b], [a, b]):  # district-wide, another area, partly another
        refused = admin.post("/keys", {"user_id": unique("cw"), "role": "admin", "areas": areas})
        assert refused.status_code == 403 and refused.json()["rule"] == "area_not_allowed", refused.text
    district_key = services.app.issue_key(user_id=unique("dw"), role="caseworker", areas=[], scopes=[],
                                          stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))[0].id
    other_key = services.app.issue_key(user_id=unique("ob"), role="caseworker", areas=[b], scopes=[],
                                       stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))[0].id
    for key_id in (district_key, other_key):
        assert admin.post(f"/keys/{key_id}/revocation", {"reason": "x"}).status_code == 404
        assert admin.post(f"/keys/{key_id}/rotation", {}).status_code == 404
    listed = {k["key_id"] for k in admin.get("/keys").json()["items"]}
    assert made.json()["id"] in listed and str(district_key) not in listed and str(other_key) not in listed
    assert admin.post(f"/keys/{made.json()['id']}/revocation", {"reason": "left"}).status_code == 200
    renamed = admin.post(f"/areas/{a}/names", {"name_zh": "改名街道", "name_en": "Renamed"})
    assert renamed.status_code == 403 and renamed.json()["rule"] == "area_not_allowed"
    # Not under the name of someone acting beyond its areas, nor as the office's own actor
    # (found by a review: the audit trail would put their name on what the key does).
    district_user = unique("dw-user")
    services.users.create(user_id=district_user, role="supervisor", areas=[], password="x" * 12, created_by="test")
    before = services.head()
    for user_id, rule, status in ((district_user, "area_not_allowed", 403), ("system", "user_id_reserved", 422),
                                  (" System ", "user_id_reserved", 422)):
        refused = admin.post("/keys", {"user_id": user_id, "role": "caseworker", "areas": [a]})
        assert refused.status_code == status and refused.json()["rule"] == rule, refused.text
        assert refused.json()["errors"][0]["field"] == "user_id", refused.text
    assert services.head() == before
    assert admin.post("/keys", {"user_id": own, "role": "caseworker", "areas": [a]}).status_code == 201  # its own
    # Nor an auditor (who reads every area), nor a rotation handing over another's name.
    auditor = admin.post("/keys", {"user_id": unique("aud"), "role": "auditor", "areas": [a]})
    assert auditor.status_code == 403 and auditor.json()["rule"] == "area_not_allowed", auditor.text
    theirs = services.app.issue_key(user_id=district_user, role="caseworker", areas=[a], scopes=[],
                                    stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))[0].id
    rotated = admin.post(f"/keys/{theirs}/rotation", {})
    assert rotated.status_code == 403 and rotated.json()["rule"] == "area_not_allowed", rotated.text
    # An auditor's key naming the area is not the area admin's to rotate or revoke (found by a
    # review: a rotation handed it a fresh secret that reads every area).
    audits = services.app.issue_key(user_id=unique("aud"), role="auditor", areas=[a], scopes=[],
                                    stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))[0].id
    before = services.head()
    assert admin.post(f"/keys/{audits}/rotation", {}).status_code == 404
    assert admin.post(f"/keys/{audits}/revocation", {"reason": "x"}).status_code == 404
    assert services.head() == before and str(audits) not in {k["key_id"] for k in admin.get("/keys").json()["items"]}
    assert admin.post("/keys", {"user_id": district_user.upper(), "role": "caseworker",
                                "areas": [a]}).status_code == 403  # case makes no other person
    assert admin.post("/keys", {"user_id": "dave\u200b", "role": "caseworker", "areas": [a]}).status_code == 422


# -- limits and hostile input ---------------------------------------------------------------
def test_a_second_authorization_or_cookie_header_is_refused(base_url: str, keys: dict[str, str]) -> None:
    """Found by a review: the rate limit's bucket read the last Authorization header and the
    authenticator the first, so a made-up second header escaped the limit."""
    import http.client

    host, port = base_url.removeprefix("http://").split(":")
    for name, values in (("Authorization", [f"Bearer {keys['caseworker']}", "Bearer ld_made-up"]),
                         ("Cookie", ["liudong_session=made-up", "liudong_session=another"])):
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.putrequest("GET", "/residents")
        for value in values:
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        body = json.loads(answer.read())
        connection.close()
        assert answer.status == 400 and body["rule"] == "header_repeated", body
        assert body["errors"][0]["field"] == name


def test_answers_are_not_kept_in_caches_but_the_pages_scripts_may_be(
        caseworker: Api, http: httpx.Client) -> None:
    """Found by a review: lists of residents and an operator's contact had no Cache-Control."""
    for path in ("/residents", "/permits", "/committees", "/operators", "/statistics/population"):
        answer = caseworker.get(path)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store", (path, answer.headers)
    assert "no-store" not in http.get("/static/app.css").headers.get("cache-control", "")


def test_a_body_over_the_cap_is_refused_before_it_is_read_or_the_key_is_checked(base_url: str) -> None:
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /residents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n" + b"{" * 1000)
        answer = ""
        while "body_too_large" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk.decode()
    assert time.monotonic() - started < 2
    assert answer.startswith("HTTP/1.1 413") and "application/problem+json" in answer and "body_too_large" in answer
    with httpx.Client(base_url=base_url) as client:
        def chunks() -> Any:
            for _ in range(2000):
                yield b" " * 1024
        streamed = client.post("/residents", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.parametrize("bad", ["A\x00B", "A\x07B", "tab\tin a name", "\ud800", "A\x85B", "Li\u202eieW"])
def test_control_characters_and_broken_unicode_in_text_are_refused(caseworker: Api, bad: str,
                                                                  stored: Any) -> None:
    snapshot = stored()
    raw = json.dumps({**resident_body(), "name": bad}).encode()  # \ud800 stays an escape: a lone surrogate
    answer = caseworker.client.post("/residents", content=raw,
                                    headers=caseworker.headers({"Content-Type": "application/json"}))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "name"
    assert snapshot.unchanged()


def test_a_nul_in_a_query_is_refused(caseworker: Api) -> None:
    answer = caseworker.get("/disputes", params={"assignee": "a\x00b"})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["field"] == "assignee"  # the parameter, not "query" (found by a review)
    assert answer.json()["instance"] == "/disputes"  # as every problem names what was asked (a review)
    media = caseworker.client.post("/residents", content=b"x",
                                   headers=caseworker.headers({"Content-Type": "text/plain"}))
    assert media.status_code == 415 and media.json()["instance"] == "/residents"
    named = caseworker.get("/residents", params={"area": "xinqi", "name": "\x1b"})
    assert named.status_code == 422 and named.json()["errors"][0]["field"] == "name"


@pytest.mark.parametrize("raw", [b"\xff\xfe{\"name\": 1}", b"[" * 100_000 + b"]" * 100_000, b'{"name": "\xc3"}'])
def test_bodies_that_are_not_json_get_422(caseworker: Api, raw: bytes, stored: Any) -> None:
    snapshot = stored()
    answer = caseworker.client.post("/residents", content=raw, headers=caseworker.headers(
        {"Content-Type": "application/json"}))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert snapshot.unchanged()


@pytest.mark.parametrize("value", ['"²"', '"' + "9" * 5000 + '"', "W/", "*", '"-1"'])
def test_if_match_values_that_are_not_versions_get_422(caseworker: Api, supervisor: Api, value: str) -> None:
    site = supervisor.post("/sites", site_body()).json()
    answer = supervisor.client.post(f"/sites/{site['id']}/capacity", json={"capacity": 5},
                                    headers={**supervisor.headers(), "If-Match": value.encode()})
    assert answer.status_code in (412, 422), answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_every_error_is_a_problem_document_and_every_answer_has_security_headers(http: httpx.Client,
                                                                                  caseworker: Api) -> None:
    for answer in (http.delete("/residents"), http.get("/nowhere"), caseworker.post("/residents", {}),
                   http.get("/residents"), http.get("/healthz"), caseworker.get("/areas")):
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "access-control-allow-origin" not in answer.headers  # CORS closed unless configured
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == "application/problem+json"
    assert http.delete("/residents").json()["status"] == 405


def test_the_openapi_page_and_document_carry_a_strict_policy_and_fetch_nothing_from_elsewhere(
        http: httpx.Client) -> None:
    """The page lives on the web application's origin (its session cookie, its CSRF tokens):
    found by a review, it loaded Swagger UI from a CDN and answered without a policy."""
    import base64
    import hashlib
    import re

    document = http.get("/openapi.json")
    assert document.status_code == 200 and "default-src 'none'" in document.headers["content-security-policy"]
    page = http.get("/docs")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    directives = {name: value for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))}
    assert directives["default-src"] == "'none'" and "frame-ancestors" in directives
    for directive in ("script-src", "style-src", "img-src", "connect-src"):
        assert not re.search(r"https?:|\*|'unsafe-inline'|'unsafe-eval'", directives[directive]), policy
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert inline, page.text
    for script in inline:  # allowed by its hash, nothing else inline
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives["script-src"]
    assert not re.search(r"https?://", re.sub(r"<script>.*?</script>", "", page.text, flags=re.DOTALL))
    assert not re.search(r"https?://", "".join(inline))
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert {a.rsplit(".", 1)[-1] for a in assets} >= {"js", "css"}, assets
    for asset in assets:
        assert asset.startswith("/docs/assets/"), asset
        answer = http.get(asset)
        assert answer.status_code == 200 and answer.content, asset
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert http.get("/redoc").status_code == 404  # not served: it would need inline styles and a worker


def test_cors_rate_limits_and_page_caps_follow_the_settings(services: Services, settings: Settings) -> None:
    tight = settings.model_copy(update={"rate_limit_per_minute": 60, "rate_limit_burst": 3,
                                        "cors_origins": ["https://office.example"], "max_page_size": 10})
    key = issue_key(services, unique("limited"), Role.CASEWORKER)
    with serve_app(create_app(tight, services)) as url, httpx.Client(base_url=url) as client:
        auth = {"Authorization": f"Bearer {key}"}
        preflight = client.options("/residents", headers={"Origin": "https://office.example",
                                                          "Access-Control-Request-Method": "POST"})
        assert preflight.headers["access-control-allow-origin"] == "https://office.example"
        assert client.options("/residents", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "POST"}).status_code == 400
        page = client.get("/residents", params={"limit": 500}, headers=auth)
        assert page.status_code == 200 and len(page.json()["items"]) <= 10
        answers = [client.get("/areas", headers=auth) for _ in range(6)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited and int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["rule"] == "rate_limited"
        # Another key has its own allowance.
        other = issue_key(services, unique("other"), Role.CASEWORKER)
        assert client.get("/areas", headers={"Authorization": f"Bearer {other}"}).status_code == 200
        # Made-up keys, a new one each time, do not each get an allowance: an address whose keys
        # keep being refused is slowed (found by a review); the good key of another client is not.
        made_up = [client.get("/areas", headers={"Authorization": f"Bearer ld_{uuid.uuid4().hex}"}).status_code
                   for _ in range(6)]
        assert made_up[:3] == [401, 401, 401] and made_up[-1] == 429, made_up


def test_waiting_reads_hold_no_thread_and_are_capped_per_key(services: Services, settings: Settings) -> None:
    """150 reads waiting for a position that never comes do not slow /healthz; past the
    per-key cap a read is refused at once."""
    relaxed = settings.model_copy(update={"max_waits_per_key": 200, "read_wait_timeout": 3.0})
    key = issue_key(services, unique("waiter"), Role.CASEWORKER)
    far = services.head() + 10_000_000
    with serve_app(create_app(relaxed, services)) as url:
        results: list[int] = []

        def wait() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                results.append(client.get("/residents", params={"after": far},
                                          headers={"Authorization": f"Bearer {key}"}).status_code)

        threads = [threading.Thread(target=wait) for _ in range(150)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        with httpx.Client(base_url=url) as client:
            started = time.monotonic()
            assert client.get("/healthz").status_code == 200
            # Well before the reads' 3 s: not queued behind them (with room for a loaded machine).
            assert time.monotonic() - started < 1.5
        for t in threads:
            t.join(30)
        assert results.count(200) == 150
    capped = settings.model_copy(update={"max_waits_per_key": 2, "read_wait_timeout": 2.0})
    with serve_app(create_app(capped, services)) as url:
        statuses: list[int] = []

        def wait_capped() -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                statuses.append(client.get("/residents", params={"after": far},
                                           headers={"Authorization": f"Bearer {key}"}).status_code)

        threads = [threading.Thread(target=wait_capped) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses.count(429) == 3 and statuses.count(200) == 2


def test_every_write_route_refuses_the_fields_the_service_sets(http: httpx.Client, keys: dict[str, str]) -> None:
    """ids, versions, actors, status and positions are never taken from a request."""
    app = create_app()
    with_body = {path for path, ops in app.fastapi.openapi()["paths"].items()
                 if "application/json" in ops.get("post", {}).get("requestBody", {}).get("content", {})}
    writes = [r for r in api_routes(app) if r.method == "POST" and r.path in with_body]
    assert len(writes) > 30
    mismatches = []
    for route in writes:
        path = route.path
        for name in ("resident_id", "site_id", "case_id", "committee_id", "application_id", "key_id"):
            path = path.replace("{" + name + "}", str(uuid.uuid4()))
        path = path.replace("{meeting_id}", "m1").replace("{code}", "xinqi")
        role = ("finance" if path.endswith("/payments") else
                "supervisor" if path.endswith("/outcome-verification") else "admin")  # a supervisor's alone
        for field in ("id", "version", "position", "actor_id", "status", "recorded_at"):
            answer = http.post(path, json={field: "x"}, headers={"Authorization": f"Bearer {keys[role]}"})
            fields = [e["field"] for e in answer.json().get("errors", [])] if answer.status_code == 422 else []
            if answer.status_code != 422 or field not in fields:
                mismatches.append((path, field, answer.status_code, answer.text[:200]))
    assert mismatches == []


def test_a_system_stamp_cannot_be_issued_a_key(services: Services) -> None:
    with pytest.raises(Exception, match="role"):
        services.app.issue_key(user_id="x", role="system", areas=[], scopes=[],
                               stamp=Stamp(Actor("test-admin", Role.ADMIN), NOW))


def test_residents_are_found_by_the_end_of_their_identity_number_which_the_view_does_not_hold(
    caseworker: Api, services: Any, as_role: Any
) -> None:
    from tests.factories import id_number, resident_body

    number = id_number()
    created = caseworker.post("/residents", resident_body(id_number=number)).json()
    for suffix in (number[-4:], number[-5:], number[-6:].lower()):
        found = caseworker.get("/residents", params={"id_number_suffix": suffix, "after": created["position"]})
        assert found.status_code == 200, found.text
        assert created["id"] in {r["id"] for r in found.json()["items"]}
    with services.pool.connection() as conn:
        row = conn.execute("SELECT id_suffix_tokens::text AS t FROM residents WHERE id = %s",
                           (created["id"],)).fetchone()
    assert number[-6:] not in row["t"] and number[-4:] not in row["t"]
    assert caseworker.get("/residents", params={"id_number_suffix": "12"}).status_code == 422
    assert as_role("api_consumer").get("/residents", params={"id_number_suffix": number[-4:]}).status_code == 403
    # Each search that showed them is a read of their data, logged without the words searched
    # (found by a review: lists and searches left no trace); a masked list reads none.
    as_role("api_consumer").get("/residents", params={"after": created["position"]})
    with services.pool.connection() as conn:
        logged = conn.execute("SELECT user_id, route, detail FROM access_log WHERE resident_id = %s",
                              (created["id"],)).fetchall()
    assert [(r["user_id"], r["route"], r["detail"]) for r in logged] == [
        ("test-caseworker", "GET /residents", "search: id_number_suffix")] * 3


def test_a_known_identity_number_names_its_holder_only_to_who_may_read_them_and_is_free_after_erasure(
        http: httpx.Client, keys: dict[str, str], services: Services) -> None:
    """Found by a review: the 409 named the holder's record to a caseworker of any area, and
    an erased resident's number stayed claimed (and linked to the record) for ever."""
    a, b = define_area(services, "NumA"), define_area(services, "NumB")
    district, supervisor = Api(http, keys["caseworker"]), Api(http, keys["supervisor"])
    local = Api(http, issue_key(services, unique("num-a"), Role.CASEWORKER, areas=[a]))
    elsewhere = Api(http, issue_key(services, unique("num-b"), Role.CASEWORKER, areas=[b]))
    body = resident_body(area=a)
    first = local.post("/residents", body)
    assert first.status_code == 201, first.text
    refused = elsewhere.post("/residents", {**body, "area": b, "name": "Someone Else"})
    assert refused.status_code == 409 and refused.json()["rule"] == "identity_number_registered", refused.text
    assert "existing_resident_id" not in refused.json() and first.json()["id"] not in refused.text
    named = district.post("/residents", {**body, "name": "Someone Else"})
    assert named.status_code == 409 and named.json()["existing_resident_id"] == first.json()["id"]

    erased = supervisor.post(f"/residents/{first.json()['id']}/erasure",
                             json={"legal_basis": "data_subject_request", "note": "request 2026-140"})
    assert erased.status_code == 200, erased.text
    again = elsewhere.post("/residents", {**body, "area": b})
    assert again.status_code == 201, again.text
    twice = district.post("/residents", {**body, "area": b})
    assert twice.status_code == 409 and twice.json()["existing_resident_id"] == again.json()["id"]
    claim_id = services.app.vault.claim_id(body["id_number"])
    claim = services.app.repository.get(claim_id)
    assert claim.holder() == uuid.UUID(again.json()["id"])
    # The first claim's event now names nobody: the link from the number to the erased record is gone.
    assert services.app.repository.get(claim_id, version=1).holder() is None


def test_areas_keys_and_statistics_come_a_page_at_a_time(http: httpx.Client, keys: dict[str, str],
                                                         caseworker: Api) -> None:
    """Found by a review: /areas, /keys and /statistics answered every row, ignoring limit and cursor,
    as no other list does; /keys took a made-up cursor."""
    from tests.factories import unique_area

    admin = Api(http, keys["admin"])
    area = unique_area("Paged")
    for month in ("2026-01-10", "2026-03-10", "2026-05-10"):
        last = caseworker.post("/residents", resident_body(area=area, registered_on=month))
    statistics = {"area": area, "after": last.json()["position"]}

    def walk(path: str, limit: int, params: dict[str, Any]) -> tuple[list[Any], int]:
        seen: list[Any] = []
        page = admin.get(path, params={**params, "limit": limit}).json()
        total = page["total"]
        while True:
            assert len(page["items"]) <= limit and page["total"] == total, path
            seen += page["items"]
            if page["next"] is None:
                return seen, total
            page = admin.get(path, params={**params, "limit": limit, "cursor": page["next"]}).json()

    for path, params in (("/areas", {}), ("/keys", {}), ("/statistics", statistics)):
        small, total = walk(path, 2, params)
        large, _ = walk(path, 7, params)
        assert total >= 2 and len(small) == total and small == large, (path, total, len(small))
        refused = admin.get(path, params={**params, "cursor": "bm90LWEtY3Vyc29y"})
        assert refused.status_code == 422 and refused.json()["rule"] == "invalid_cursor", (path, refused.text)


def test_an_erased_residents_record_and_rows_keep_no_hometown_employer_or_birth_date(
        caseworker: Api, supervisor: Api) -> None:
    """Found by a review: after an erasure the record still gave the hometown, the employer and
    the birth date, which with the area and the dates point at one person."""
    from tests.factories import unique_area

    area = unique_area("Erased")
    resident = caseworker.post("/residents", resident_body(area=area, hometown="Anhui Fuyang",
                                                           employer="Shenzhou Knitting")).json()["id"]
    erased = supervisor.post(f"/residents/{resident}/erasure", {"legal_basis": "data_subject_request",
                                                                 "note": "request 2026-88"})
    assert erased.status_code == 200, erased.text
    record = supervisor.get(f"/residents/{resident}", headers={"Accept-Language": "en"}).json()
    assert (record["hometown"], record["employer"], record["birth_date"]) == ("[erased]", None, None)
    (row,) = supervisor.get("/residents", params={"area": area, "after": erased.json()["position"]},
                            headers={"Accept-Language": "en"}).json()["items"]
    assert (row["hometown"], row["employer"], row["birth_date"]) == ("[erased]", None, None)
    assert "Fuyang" not in str(row) and "Shenzhou" not in str(record)
