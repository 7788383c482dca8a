"""Snapshots of housing sites: a site that has taken hundreds of moves loads from a snapshot,
its committee members' names are sealed in the snapshot as in the events, and an erased
member reads as erased there too."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any
from uuid import UUID

import psycopg

from application.services import Services
from application.settings import Settings
from domain.common import ERASED, Actor, Role, Stamp
from domain.identity import IdentityNumber
from tests.conftest import NOW, define_area
from tests.factories import id_number

SUPERVISOR = Stamp(Actor("test-supervisor", Role.SUPERVISOR), NOW)
CASEWORKER = Stamp(Actor("test-caseworker", Role.CASEWORKER), NOW)
MEMBER_NAME = "Snapshot Zhangsan"


def _snapshot_rows(dsn: str, site_id: UUID) -> list[tuple[int, bytes]]:
    with psycopg.connect(dsn) as conn:
        table = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_name LIKE '%snapshots'"
                             " AND table_schema = current_schema()").fetchone()
        assert table is not None
        rows = conn.execute(f"SELECT originator_version, state FROM {table[0]} WHERE originator_id = %s"
                            " ORDER BY originator_version", (site_id,)).fetchall()
    return [(int(v), bytes(s)) for v, s in rows]


def _register(services: Services, area: str, name: str = "Snapshot resident") -> UUID:
    return services.app.register_resident(
        id_number=IdentityNumber.parse(id_number()), name=name, phone="13800138000", hometown="Henan",
        employer=None, area=area, registered_on=date(2026, 3, 1), stamp=CASEWORKER).id


def test_a_busy_site_loads_from_a_snapshot_with_member_names_sealed(services: Services, settings: Settings,
                                                                     database: Any) -> None:
    area = define_area(services, "Snap")
    site_id = services.app.register_site(name="Snapshot site", area=area, address="1 Road",
                                         operator_type="employer", operator_name="Hengli", capacity=500,
                                         facilities=[], stamp=SUPERVISOR).id
    member = _register(services, area, MEMBER_NAME)
    services.app.establish_community_committee(
        site_id, date(2026, 3, 2), [{"name": MEMBER_NAME, "role": "chair", "resident_id": str(member)},
                                    {"name": "Outside Helper", "role": "member"}], SUPERVISOR)
    residents = [_register(services, area) for _ in range(120)]
    for resident in residents:
        services.app.move_resident_into_site(resident, site_id, date(2026, 4, 1), CASEWORKER)
    for resident in residents[:10]:
        services.app.move_resident_to_private_housing(resident, area, date(2026, 5, 1), CASEWORKER)

    snapshots = _snapshot_rows(database.dsn, site_id)
    assert [v for v, _ in snapshots] == [100]  # every 100 events of the site
    assert MEMBER_NAME.encode() not in snapshots[0][1]  # sealed, as in the events
    assert b"Outside Helper" not in snapshots[0][1]  # known by name only: under the event's own key

    # A process that has not seen the site reads it from the snapshot and the events after it.
    other = Services.open(settings, run_projections=False, database=database)
    try:
        site: Any = other.app.repository.get(site_id)
        assert len(site.occupants) == 110 and site.version == 2 + 120 + 10
        names = [other.app.vault.open(m["name"]) for m in site.community_committee["members"]]
        assert names == [MEMBER_NAME, "Outside Helper"]  # the second kept sealed, opened by its reader
        clone = copy.deepcopy(site)  # what the aggregate cache hands out: its own occupants
        clone.occupants.clear()
        assert len(site.occupants) == 110
    finally:
        other.close()

    services.app.erase_resident(member, legal_basis="data_subject_request", note="test", stamp=SUPERVISOR)
    fresh = Services.open(settings, run_projections=False, database=database)
    try:
        site = fresh.app.repository.get(site_id)
        names = [fresh.app.vault.open(m["name"]) for m in site.community_committee["members"]]
        assert names == [ERASED, "Outside Helper"]
    finally:
        fresh.close()
