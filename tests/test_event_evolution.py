"""Events that evolve: a registration that gained a field, topics that survive a class
moving, and a catalogue of events generated from the code.

The old-shape events come from ``tests/fixtures/resident_v1.json``: the rows the code of
commit 946556f (``Resident.Registered`` of class version 1, before ``household_relation``)
stored when it registered one resident, changed their employer and moved them to private
housing, byte for byte as they were read back from ``liudong_events``, with the claim on
the identity number and the resident's data key as it was in ``pii_keys``. Their name,
identity number and phone are sealed with that key, which is wrapped by the suite's master
key (``TEST_MASTER_KEY``), so the fixture is exactly what an installation holds today. The
tests insert those rows raw, through the recorder, bypassing the mapper.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import typer
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, resolve_topic
from psycopg import sql
from psycopg.rows import dict_row
from typer.testing import CliRunner

from application import events as catalogue_module
from application.envelope import from_message, to_message
from application.eventdocs import COMMAND, register, render
from application.events import AGGREGATE_KINDS, EventCatalogue
from application.projecting import rebuild
from application.services import Services
from application.store import EVENTS_TABLE, StoredRow
from application.topics import FORMER_TOPICS, TopicRegistryError, check_topics, frozen_topics
from domain.common import ERASED, RuleViolated, Stamp
from domain.identity import IdentityNumber
from domain.residents import HouseholdRelation, Resident
from tests.conftest import NOW, Api
from tests.factories import resident_body, site_body

ROOT = Path(__file__).resolve().parent.parent
FIXTURE: dict[str, Any] = json.loads((Path(__file__).parent / "fixtures" / "resident_v1.json").read_text("utf-8"))
RESIDENT_ID = UUID(FIXTURE["resident_id"])
REGISTERED_V1 = FIXTURE["events"][0]


def _stored(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(originator_id=UUID(row["originator_id"]), originator_version=row["originator_version"],
                       topic=row["topic"], state=row["state"].encode("utf-8"))


@pytest.fixture(scope="module")
def old_resident(services: Services) -> UUID:
    """The fixture's rows in the store (once per database), seen by the views."""
    with services.pool.connection() as conn:
        present = conn.execute(f"SELECT 1 FROM {EVENTS_TABLE} WHERE originator_id = %s",
                               (RESIDENT_ID,)).fetchone()
        if present is None:
            with conn.transaction():
                for key in FIXTURE["pii_keys"]:
                    conn.execute("INSERT INTO pii_keys (key_id, kind, wrapped) VALUES (%s, %s, decode(%s, 'base64'))",
                                 (UUID(key["key_id"]), key["kind"], key["wrapped"]))
                for subject in FIXTURE["pii_key_subjects"]:
                    conn.execute("INSERT INTO pii_key_subjects (key_id, resident_id) VALUES (%s, %s)",
                                 (UUID(subject["key_id"]), UUID(subject["resident_id"])))
    if present is None:
        services.app.recorder.insert_events([_stored(row) for row in FIXTURE["events"]])
    assert services.wait_for("residents", services.head(), 30)
    return RESIDENT_ID


# -- household_relation: one real change, the eventsourcing way ------------------------------
def test_the_fixture_is_a_registration_of_the_old_shape() -> None:
    """What the fixture pins: version 1 bytes (no class_version, no household_relation),
    module-path topics, and personal fields sealed as the PrivateMapper seals them."""
    state = json.loads(REGISTERED_V1["state"])
    assert REGISTERED_V1["topic"] == "domain.residents:Resident.Registered"
    assert state["originator_topic"] == "domain.residents:Resident"
    assert "class_version" not in state and "household_relation" not in state
    assert all(state[f].startswith(f"pii:v1:{RESIDENT_ID.hex}:") for f in ("name", "id_number", "phone"))
    assert Resident.Registered.class_version == 2


def test_a_registration_of_version_1_loads_and_folds_with_no_household_relation(
        services: Services, old_resident: UUID) -> None:
    """The application loads the old events (upcast by eventsourcing's mapper) and folds them
    with the later ones: household_relation is None, everything else as recorded."""
    resident = services.app.repository.get(old_resident, version=3)
    assert resident.household_relation is None
    assert (resident.name, resident.id_number, resident.phone) == ("王秀英", FIXTURE["identity_number"], "13912345678")
    assert (resident.sex, resident.birth_date, resident.registered_on) == ("female", date(1988, 5, 12),
                                                                         date(2026, 2, 20))
    assert (resident.employer, resident.employer_since) == ("宁波恒力纺织", date(2026, 3, 9))
    assert (resident.status, resident.area, resident.since) == ("private_housing", "daqi", date(2026, 3, 28))
    registered = services.app.mapper.to_domain_event(_stored(REGISTERED_V1))
    assert type(registered) is Resident.Registered and registered.household_relation is None


def test_a_move_of_version_1_reads_as_housing_of_kind_other(services: Services, old_resident: UUID) -> None:
    """Moves out of sites recorded before housing kinds (issue 10) read as kind other, in
    the aggregate and in the view."""
    moved = services.app.mapper.to_domain_event(_stored(FIXTURE["events"][3]))
    assert type(moved) is Resident.MovedToPrivateHousing
    assert (moved.housing_kind, moved.address, moved.landlord) == ("other", None, None)
    resident = services.app.repository.get(old_resident, version=3)
    assert resident.housing == {"kind": "other", "address": None, "landlord": None}
    with services.pool.connection() as conn:
        row = conn.execute("SELECT housing_kind FROM residents WHERE id = %s", (old_resident,)).fetchone()
    assert row is not None and row["housing_kind"] == "other"


def test_commands_on_an_old_registration_apply_after_its_events(
        services: Services, old_resident: UUID, stamp: Stamp) -> None:
    """A move and an employer change recorded now apply on top of the version 1 history,
    and the residents view follows."""
    before = services.app.load(Resident, old_resident)
    site = services.app.register_site(**{**_site(), "stamp": stamp})
    services.app.change_employer(old_resident, f"employer-{uuid.uuid4().hex[:6]}", stamp.today, stamp)
    moved = services.app.move_resident_into_site(old_resident, site.id, stamp.today, stamp)
    after = services.app.load(Resident, old_resident)
    assert after.version == before.version + 2 == moved.version
    assert (after.site_id, after.status, after.household_relation, after.name) == (site.id, "in_site", None, "王秀英")
    assert services.wait_for("residents", moved.position, 30)
    with services.pool.connection() as conn:
        row = conn.execute("SELECT site_id, version, name_masked FROM residents WHERE id = %s",
                           (old_resident,)).fetchone()
    assert row is not None and (row["site_id"], row["version"], row["name_masked"]) == (site.id, after.version, "王*")


def test_the_old_claim_still_refuses_the_identity_number(services: Services, old_resident: UUID,
                                                         stamp: Stamp) -> None:
    with pytest.raises(RuleViolated) as refused:
        services.app.register_resident(id_number=IdentityNumber.parse(FIXTURE["identity_number"]), name="王秀英",
                                       phone="13912345678", hometown="Henan", employer=None, area="xinqi",
                                       registered_on=date(2026, 3, 1), stamp=stamp)
    assert refused.value.rule == "identity_number_registered"
    assert refused.value.details["existing_resident_id"] == str(old_resident)


def test_the_api_shows_an_old_registration_without_household_relation(caseworker: Api, old_resident: UUID) -> None:
    doc = caseworker.get(f"/residents/{old_resident}").json()
    assert doc["household_relation"] is None and doc["name"] == "王秀英"


def test_followers_decode_an_old_registration_from_the_store_and_from_kafka() -> None:
    """The views and the Kafka workers decode through the catalogue, which upcasts too; on
    Kafka an old event's data is as stored (no household_relation) and decodes to None."""
    catalogue = EventCatalogue.of_domain()
    state = REGISTERED_V1["state"].encode("utf-8")
    decoded = catalogue.decode_stored(REGISTERED_V1["topic"], RESIDENT_ID, 1, state)
    assert type(decoded) is Resident.Registered and decoded.household_relation is None
    assert decoded.name.startswith("pii:v1:")  # followers get sealed values; the office opens them
    message = to_message(StoredRow(10, RESIDENT_ID, 1, REGISTERED_V1["topic"], state), 9, catalogue,
                         source="urn:test", topic_prefix="liudong")
    data = json.loads(message.value)["data"]
    assert message.topic == "liudong.residents" and "household_relation" not in data
    _, from_kafka = from_message(message.value, catalogue, key=message.key)
    assert type(from_kafka) is Resident.Registered and from_kafka.household_relation is None


def test_a_rebuild_over_old_shape_events_equals_the_live_view(services: Services, old_resident: UUID) -> None:
    """The residents view rebuilt from the store (beside the live one, in a schema of its
    own) holds the old registration as the live view does."""
    assert services.wait_for("residents", services.head(), 30)
    schema = f"evolution_{uuid.uuid4().hex[:8]}"
    dsn = services.database.dsn
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            rebuild(dsn, services.projections["residents"], schema=schema, master_key=services.settings.master_key())
            query = "SELECT * FROM {}.residents WHERE id = %s"
            rebuilt = conn.execute(sql.SQL(query).format(sql.Identifier(schema)), (old_resident,)).fetchone()
            live = conn.execute(sql.SQL(query).format(sql.Identifier("public")), (old_resident,)).fetchone()
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    assert rebuilt is not None and rebuilt == live
    assert (rebuilt["name_masked"], rebuilt["registered_on"]) == ("王*", date(2026, 2, 20))


def _raw_registration(services: Services, resident_id: str) -> dict[str, Any]:
    with services.pool.connection() as conn:
        row = conn.execute(f"SELECT state FROM {EVENTS_TABLE} WHERE originator_id = %s AND originator_version = 1",
                           (UUID(resident_id),)).fetchone()
    assert row is not None
    state: dict[str, Any] = json.loads(bytes(row["state"]))
    return state


def test_a_new_registration_records_household_relation_sealed(caseworker: Api, as_role: Any,
                                                              services: Services) -> None:
    """New registrations are stored as version 2; the relation is personal data, sealed
    with the resident's key and shown only to those who see personal data."""
    created = caseworker.post("/residents", json=resident_body(household_relation="spouse"))
    assert created.status_code == 201, created.text
    resident_id = created.json()["id"]
    assert caseworker.get(f"/residents/{resident_id}").json()["household_relation"] == "spouse"
    assert as_role("api_consumer").get(f"/residents/{resident_id}").json()["household_relation"] is None
    state = _raw_registration(services, resident_id)
    assert state["class_version"] == 2
    assert state["household_relation"].startswith(f"pii:v1:{UUID(resident_id).hex}:")
    assert services.app.vault.open(state["household_relation"]) == "spouse"


def test_household_relation_stays_optional(caseworker: Api, services: Services) -> None:
    created = caseworker.post("/residents", json=resident_body())
    assert created.status_code == 201, created.text
    resident_id = created.json()["id"]
    assert caseworker.get(f"/residents/{resident_id}").json()["household_relation"] is None
    state = _raw_registration(services, resident_id)
    assert state["class_version"] == 2 and state["household_relation"] is None


def test_an_unknown_household_relation_is_refused_naming_the_field(caseworker: Api, stored: Any) -> None:
    snapshot = stored()
    answer = caseworker.post("/residents", json=resident_body(household_relation="cousin"))
    assert answer.status_code == 422, answer.text
    assert "household_relation" in [e["field"] for e in answer.json()["errors"]]
    assert snapshot.unchanged()
    assert {r.value for r in HouseholdRelation} == {"head", "spouse", "child", "parent", "other_relative",
                                                    "unrelated"}


def test_erasure_blanks_household_relation(caseworker: Api, supervisor: Api, services: Services) -> None:
    """Erased like the name: the aggregate blanks it, the sealed bytes stay and read [erased]."""
    resident_id = caseworker.post("/residents", json=resident_body(household_relation="child")).json()["id"]
    sealed_before = _raw_registration(services, resident_id)["household_relation"]
    answer = supervisor.post(f"/residents/{resident_id}/erasure",
                             json={"legal_basis": "data_subject_request", "note": "request 2026-118"})
    assert answer.status_code == 200, answer.text
    doc = caseworker.get(f"/residents/{resident_id}").json()
    assert doc["household_relation"] is None and doc["erased_on"] is not None
    assert services.app.load(Resident, UUID(resident_id)).household_relation is None
    assert _raw_registration(services, resident_id)["household_relation"] == sealed_before
    assert services.app.vault.open(sealed_before) == ERASED


# -- stable topics ---------------------------------------------------------------------------
def _domain_classes() -> list[type]:
    """Every aggregate class the domain defines, and every event class on them."""
    import domain

    classes: list[type] = []
    for path in sorted(Path(domain.__file__).parent.glob("[a-z]*.py")):
        module = importlib.import_module(f"domain.{path.stem}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, Aggregate) and value is not Aggregate
                    and value.__module__ == module.__name__):
                classes.append(value)
                classes += [v for k, v in vars(value).items() if isinstance(v, type)
                            and issubclass(v, Aggregate.Event) and k not in ("Event", "Created")]
    return classes


def test_every_domain_event_and_aggregate_class_has_a_frozen_topic() -> None:
    """Each class is written and resolved under its registry entry, and the registry names
    no class the domain does not have."""
    frozen = frozen_topics()
    classes = _domain_classes()
    check_topics(classes)
    assert set(classes) == set(frozen)
    assert set(AGGREGATE_KINDS) <= set(frozen)
    for cls in classes:
        assert get_topic(cls) == frozen[cls] and resolve_topic(frozen[cls]) is cls


def test_every_topic_in_the_store_resolves_through_the_registry(services: Services, old_resident: UUID) -> None:
    """Stored topics and the aggregates' originator topics are all frozen strings."""
    known = set(frozen_topics().values()) | set(FORMER_TOPICS)
    with services.pool.connection() as conn:
        topics = {r["topic"] for r in conn.execute(f"SELECT DISTINCT topic FROM {EVENTS_TABLE}").fetchall()}
        originators = {r["t"] for r in conn.execute(
            f"SELECT DISTINCT convert_from(state, 'UTF8')::jsonb ->> 'originator_topic' AS t FROM {EVENTS_TABLE}"
            " WHERE originator_version = 1").fetchall()}
    assert "domain.residents:Resident.Registered" in topics
    assert topics <= known and originators <= known


class Parcel(Aggregate):
    """A class nobody has registered: what a new aggregate looks like before its entry."""

    @event("Sent")
    def __init__(self, *, to: str) -> None:
        self.to = to


def test_a_class_without_an_entry_is_refused_saying_how_to_add_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strict, not a fallback to module paths: a class stored under its path by default would
    be frozen by accident, and a later move would orphan its events unless someone remembered
    to add the entry then. Refusing makes the entry part of adding the class, when its path
    is still the right string; the catalogue (built by every process) refuses too."""
    with pytest.raises(TopicRegistryError) as refused:
        check_topics([Parcel, Parcel.Sent])
    message = str(refused.value)
    assert "application/topics.py" in message
    assert '"Sent": "tests.test_event_evolution:Parcel.Sent" in the events of the Parcel entry' in message
    assert 'Frozen(Parcel, "tests.test_event_evolution:Parcel"' in message
    monkeypatch.setitem(catalogue_module.AGGREGATE_KINDS, Parcel, "parcels")
    with pytest.raises(TopicRegistryError, match=re.escape("no stable topic for tests.test_event_evolution:Parcel")):
        EventCatalogue.of_domain()


MOVED_CODE = """
import json, sys
from datetime import datetime
from pathlib import Path
from uuid import UUID

# Only the copy of the code is importable: not the checkout the editable install points at.
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
from eventsourcing.utils import TopicError, construct_topic, get_topic, resolve_topic
from domain.people import Resident

if sys.argv[1] == "without-registry":
    out = {"path": construct_topic(Resident.Registered)}
    try:
        resolve_topic("domain.residents:Resident.Registered")
        out["old_topic_resolves"] = True
    except TopicError:
        out["old_topic_resolves"] = False
    print(json.dumps(out))
    raise SystemExit(0)

from application.database import Database
from application.services import Services
from application.settings import Settings
from domain.common import Actor, Role, Stamp
from domain.identity import IdentityNumber

out = {"path": construct_topic(Resident.Registered)}
dsn, resident_id, number, data_dir = sys.argv[2], UUID(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
now = datetime.fromisoformat(sys.argv[6])
services = Services.open(Settings(data_dir=data_dir, sweep_interval_seconds=0), run_projections=False,
                         database=Database(dsn=dsn, embedded=False, location="test"))
try:
    stamp = Stamp(Actor("moved-code", Role.CASEWORKER), now)
    resident = services.app.load(Resident, resident_id)
    out.update(name=resident.name, household_relation=resident.household_relation, old_topic_resolves=True,
               aggregate_topic=get_topic(Resident), event_topic=get_topic(Resident.Registered))
    changed = services.app.change_employer(resident_id, "moved " + str(now.timestamp()), stamp.today, stamp)
    new = services.app.register_resident(id_number=IdentityNumber.parse(number), name="Moved Code", phone="13800000000",
                                         hometown="Anhui", employer=None, area="xinqi", registered_on=stamp.today,
                                         stamp=stamp, household_relation="head")
    with services.pool.connection() as conn:
        def row(id_, version):
            r = conn.execute("SELECT topic, convert_from(state, 'UTF8')::jsonb ->> 'originator_topic' AS o"
                             " FROM liudong_events WHERE originator_id = %s AND originator_version = %s",
                             (id_, version)).fetchone()
            return [r["topic"], r["o"]]
        out.update(changed=row(resident_id, changed.version), registered=row(new.id, 1))
finally:
    services.close()
out["original_module_loaded"] = "domain.residents" in sys.modules
print(json.dumps(out))
"""


def _moved_code(tmp_path: Path) -> Path:
    """A copy of the code in which domain/residents.py moved to domain/people.py: imports
    follow the class; the registry's strings (and the sealing policy's) stay as they are."""
    code = tmp_path / "code"
    for package in ("domain", "projections", "application"):
        shutil.copytree(ROOT / package, code / package, ignore=shutil.ignore_patterns("__pycache__"))
    (code / "domain" / "residents.py").rename(code / "domain" / "people.py")
    for path in code.rglob("*.py"):
        text = path.read_text("utf-8")
        moved = re.sub(r"\bfrom domain\.residents import\b", "from domain.people import", text)
        if moved != text:
            path.write_text(moved, "utf-8")
    return code


def _run_moved(code: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(MOVED_CODE), *args], cwd=code, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_moved_class_still_reads_old_events_and_writes_the_same_topics(
        services: Services, old_resident: UUID, tmp_path: Path) -> None:
    """In a copy of the code where the residents module moved, the old topic strings no
    longer resolve by themselves and the classes' paths changed; with the registry the
    version 1 events load, and new events (and a new resident's originator topic) are written
    under the strings stored before the move."""
    from tests.factories import id_number

    code = _moved_code(tmp_path)
    bare = _run_moved(code, "without-registry")
    assert bare == {"path": "domain.people:Resident.Registered", "old_topic_resolves": False}
    moved = _run_moved(code, "with-registry", services.database.dsn, str(old_resident), id_number(),
                       str(tmp_path / "data"), NOW.isoformat())
    assert moved["path"] == "domain.residents:Resident.Registered"  # TOPIC, set by the registry
    assert (moved["name"], moved["household_relation"]) == ("王秀英", None)
    assert moved["aggregate_topic"] == "domain.residents:Resident"
    assert moved["changed"] == ["domain.residents:Resident.EmployerChanged", None]
    assert moved["registered"] == ["domain.residents:Resident.Registered", "domain.residents:Resident"]
    assert moved["original_module_loaded"] is False


# -- docs/events.md ------------------------------------------------------------------------
def test_docs_events_md_is_what_the_code_generates() -> None:
    committed = (ROOT / "docs" / "events.md").read_text("utf-8")
    assert render() == committed, f"docs/events.md differs from the code: run `{COMMAND}` and commit docs/events.md"


def test_the_catalogue_names_every_event_with_its_version_and_fields() -> None:
    text = render()
    for event_type in EventCatalogue.of_domain().by_name.values():
        assert f"### {event_type.name}\n" in text and f"`{event_type.topic}`" in text
    registered = text.split("### Resident.Registered\n", 1)[1].split("\n### ", 1)[0]
    assert "- version: 2" in registered and "from version 1:" in registered
    assert "| `household_relation` | `str \\| None` | sealed (the resident's key) |" in registered
    assert "## How to change an event" in text


def test_the_command_writes_the_catalogue_and_checks_it(tmp_path: Path) -> None:
    cli = typer.Typer()

    @cli.callback()
    def main() -> None:
        """liudong, as far as this test needs it."""

    register(cli)
    out = tmp_path / "events.md"
    runner = CliRunner()
    written = runner.invoke(cli, ["events", "doc", "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text("utf-8") == render()
    assert runner.invoke(cli, ["events", "doc", "--out", str(out), "--check"]).exit_code == 0
    out.write_text(render().replace("Resident.Registered", "Resident.Enrolled"), "utf-8")
    stale = runner.invoke(cli, ["events", "doc", "--out", str(out), "--check"])
    assert stale.exit_code == 1 and "run `liudong events doc`" in stale.output


def _site() -> dict[str, Any]:
    body = site_body(capacity=5)
    operator = body.pop("operator")
    return {**body, "operator_type": operator["type"], "operator_name": operator["name"]}



def test_an_api_keys_verifier_never_leaves_the_office_on_kafka() -> None:
    """The access topic says who got which key and when; the key's hash stays in the office
    (found by a review) and the message still decodes."""
    catalogue = EventCatalogue.of_domain()
    key_id = uuid.uuid4()
    state = json.dumps({"user_id": "li.wei", "role": "caseworker", "areas": [], "scopes": [],
                        "key_hash": "ab" * 32, "rotated_from": None, "actor_id": "admin", "actor_role": "admin",
                        "recorded_at": "2026-11-25T02:00:00+00:00", "timestamp": "2026-11-25T02:00:00+00:00",
                        "originator_topic": "domain.access:ApiKey"}).encode()
    message = to_message(StoredRow(11, key_id, 1, "domain.access:ApiKey.Issued", state), 10, catalogue,
                         source="urn:test", topic_prefix="liudong")
    assert message.topic == "liudong.access" and b"abab" not in message.value
    data = json.loads(message.value)["data"]
    assert data["key_hash"] is None and data["user_id"] == "li.wei"
    from_message(message.value, catalogue, key=message.key)


def test_an_identity_numbers_claim_names_who_registered_the_resident(caseworker: Api, services: Services) -> None:
    """Found by a review: every stored event carries its actor, but the claim on an identity number
    carried only its time (so its Kafka message had no actor); claims stored before read none."""
    body = resident_body()
    assert caseworker.post("/residents", body).status_code == 201
    (claimed,) = services.app.events.get(services.app.vault.claim_id(body["id_number"]))
    assert (claimed.actor_id, claimed.actor_role) == ("test-caseworker", "caseworker")  # type: ignore[attr-defined]
