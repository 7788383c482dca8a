"""API keys: a missing or wrong key is 401; roles decide which commands a key may send."""

from typing import Any

import pytest

from tests.conftest import Api
from tests.factories import resident_body, site_body


def test_a_missing_key_is_401(http: Any, stored: Any) -> None:
    snapshot = stored()
    response = Api(http, None).post("/residents", resident_body())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["rule"] == "missing_api_key"
    assert Api(http, None).get("/residents").status_code == 401
    assert snapshot.unchanged()


def test_a_wrong_key_is_401(http: Any, stored: Any) -> None:
    snapshot = stored()
    response = Api(http, "ld_not-a-real-key").post("/residents", resident_body())
    assert response.status_code == 401 and response.json()["rule"] == "invalid_api_key"
    assert snapshot.unchanged()


def test_keys_are_stored_hashed(services: Any, keys: dict[str, str]) -> None:
    with services.pool.connection() as conn:
        hashes = [row["key_hash"] for row in conn.execute("SELECT key_hash FROM api_keys").fetchall()]
    assert keys["caseworker"] not in hashes
    assert all(len(h) == 64 for h in hashes)


def test_the_key_names_the_actor_recorded_on_the_event(caseworker: Api, services: Any) -> None:
    created = caseworker.post("/residents", resident_body()).json()
    events = list(services.app.events.get(__import__("uuid").UUID(created["id"])))
    assert events[0].actor_id == "test-caseworker"
    assert events[0].actor_role == "caseworker"


# Which role may send which command, in this issue. Everyone with a key may read.
SITE_WRITERS = {"supervisor", "admin"}
RESIDENT_WRITERS = {"caseworker", "supervisor", "admin"}
ROLES = ["caseworker", "supervisor", "finance", "auditor", "api_consumer", "admin"]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_send_only_its_commands(as_role: Any, supervisor: Api, role: str, stored: Any) -> None:
    api = as_role(role)
    site = supervisor.post("/sites", site_body()).json()
    resident = supervisor.post("/residents", resident_body()).json()
    commands = {
        "register site": ("/sites", site_body(), SITE_WRITERS),
        "change capacity": (f"/sites/{site['id']}/capacity", {"capacity": 11}, SITE_WRITERS),
        "change facilities": (f"/sites/{site['id']}/facilities", {"facilities": ["bank"]}, SITE_WRITERS),
        "community committee": (f"/sites/{site['id']}/community-committee",
                                {"established_on": "2026-01-01", "members": [{"name": "A"}]}, SITE_WRITERS),
        "register resident": ("/residents", resident_body(), RESIDENT_WRITERS),
        "change employer": (f"/residents/{resident['id']}/employer",
                            {"employer": "B", "effective_date": "2026-04-01"}, RESIDENT_WRITERS),
        "move": (f"/residents/{resident['id']}/moves",
                 {"site_id": site["id"], "effective_date": "2026-04-02"}, RESIDENT_WRITERS),
        "departure": (f"/residents/{resident['id']}/departure",
                      {"effective_date": "2026-04-03", "reason": "home"}, RESIDENT_WRITERS),
        "return": (f"/residents/{resident['id']}/return",
                   {"effective_date": "2026-04-04", "area": "daqi"}, RESIDENT_WRITERS),
        "close site": (f"/sites/{site['id']}/closure", {"closed_on": "2026-11-25", "reason": "x"}, SITE_WRITERS),
    }
    for name, (path, body, allowed) in commands.items():
        snapshot = stored()
        response = api.post(path, body)
        if role in allowed:
            assert response.status_code in (200, 201), (name, response.text)
        else:
            assert response.status_code == 403, (name, response.text)
            assert response.json()["rule"] == "role_not_allowed"
            assert snapshot.unchanged()
    assert api.get("/residents").status_code == 200
    assert api.get(f"/sites/{site['id']}").status_code == 200
