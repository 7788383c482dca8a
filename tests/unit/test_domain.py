"""Domain rules, checked without any I/O: the aggregates alone."""

from datetime import UTC, date, datetime

import pytest

from domain.common import Actor, InvalidValue, Role, RuleViolated, Stamp
from domain.identity import IdentityNumber
from domain.residents import Resident
from domain.sites import HousingSite
from tests.factories import id_number

STAMP = Stamp(Actor("cw-1", Role.CASEWORKER), datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


def a_site(capacity: int = 2) -> HousingSite:
    return HousingSite.register(
        name="Ginkgo", area="Xinqiao", address="1 Road", operator_type="employer", operator_name="Hengli",
        capacity=capacity, facilities=["canteen"], stamp=STAMP,
    )


def a_resident(registered_on: date = date(2026, 3, 1)) -> Resident:
    return Resident.register(
        id_number=IdentityNumber.parse(id_number(birth=date(1990, 1, 2), male=True)), name="Li Wei",
        phone="13800138000", hometown="Anhui", employer=None, area="Xinqiao", registered_on=registered_on,
        stamp=STAMP,
    )


def test_registration_derives_sex_and_birth_date_and_records_who_and_when() -> None:
    resident = a_resident()
    assert (resident.sex, resident.birth_date) == ("male", date(1990, 1, 2))
    (registered,) = resident.collect_events()
    assert registered.actor_id == "cw-1"  # type: ignore[attr-defined]
    assert registered.actor_role == "caseworker"  # type: ignore[attr-defined]
    assert registered.recorded_at == STAMP.recorded_at  # type: ignore[attr-defined]


def test_a_move_into_a_site_takes_a_bed_and_a_later_move_frees_it() -> None:
    first, second = a_site(), a_site()
    resident = a_resident()
    resident.move_into_site(first, date(2026, 4, 1), STAMP)
    assert first.free_beds == 1 and resident.site_id == first.id
    resident.move_into_site(second, date(2026, 5, 1), STAMP, previous_site=first)
    assert first.free_beds == 2 and second.free_beds == 1
    assert resident.status == "in_site" and resident.since == date(2026, 5, 1)


def test_no_move_puts_a_site_over_capacity() -> None:
    site = a_site(capacity=1)
    a_resident().move_into_site(site, date(2026, 4, 1), STAMP)
    with pytest.raises(RuleViolated) as refused:
        a_resident().move_into_site(site, date(2026, 4, 1), STAMP)
    assert refused.value.rule == "site_full"


def test_no_move_into_a_closed_site() -> None:
    site = a_site()
    site.close(closed_on=date(2026, 6, 1), reason="demolished", stamp=STAMP)
    with pytest.raises(RuleViolated) as refused:
        a_resident().move_into_site(site, date(2026, 7, 1), STAMP)
    assert refused.value.rule == "site_closed"


def test_an_occupied_site_cannot_close_and_capacity_cannot_drop_below_occupants() -> None:
    site = a_site(capacity=3)
    a_resident().move_into_site(site, date(2026, 4, 1), STAMP)
    a_resident().move_into_site(site, date(2026, 4, 1), STAMP)
    with pytest.raises(RuleViolated) as closing:
        site.close(closed_on=date(2026, 6, 1), reason="x", stamp=STAMP)
    assert closing.value.rule == "site_has_occupants"
    with pytest.raises(RuleViolated) as shrinking:
        site.change_capacity(1, STAMP)
    assert shrinking.value.rule == "capacity_below_occupants"


def test_a_departed_resident_cannot_move_until_they_return() -> None:
    site = a_site()
    resident = a_resident()
    resident.move_into_site(site, date(2026, 4, 1), STAMP)
    resident.depart(effective_date=date(2026, 5, 1), reason="went home", stamp=STAMP, previous_site=site)
    assert site.free_beds == 2 and resident.status == "departed"
    with pytest.raises(RuleViolated) as refused:
        resident.move_into_site(site, date(2026, 6, 1), STAMP)
    assert refused.value.rule == "resident_departed"
    resident.return_to_district(area="Xinqiao", effective_date=date(2026, 6, 1), stamp=STAMP)
    resident.move_into_site(site, date(2026, 6, 2), STAMP)
    assert resident.status == "in_site"


@pytest.mark.parametrize(
    ("effective", "error", "rule"),
    [
        (date(2026, 11, 26), InvalidValue, "effective_date_in_future"),
        (date(2026, 2, 28), RuleViolated, "effective_date_before_registration"),
    ],
)
def test_effective_dates_are_never_in_the_future_nor_before_registration(
    effective: date, error: type[Exception], rule: str
) -> None:
    with pytest.raises(error) as refused:
        a_resident().move_into_site(a_site(), effective, STAMP)
    assert refused.value.rule == rule  # type: ignore[attr-defined]


def test_late_reports_are_accepted_but_history_stays_in_order() -> None:
    resident = a_resident(registered_on=date(2025, 1, 1))
    resident.move_into_site(a_site(), date(2025, 6, 1), STAMP)  # reported 17 months late: fine
    with pytest.raises(RuleViolated) as refused:
        resident.move_to_private_housing(area="Xinqiao", effective_date=date(2025, 5, 1), stamp=STAMP,
                                         previous_site=None)
    assert refused.value.rule == "effective_date_before_last_change"


def test_today_is_the_offices_today_in_shanghai() -> None:
    # 20:00 UTC on the 25th is already the 26th in Shanghai.
    late_evening = Stamp(Actor("cw", Role.CASEWORKER), datetime(2026, 11, 25, 20, 0, tzinfo=UTC))
    assert late_evening.today == date(2026, 11, 26)


def test_capacity_must_be_positive_and_facilities_from_the_vocabulary() -> None:
    with pytest.raises(InvalidValue) as zero:
        HousingSite.register(name="x", area="a", address="b", operator_type="employer", operator_name="c",
                             capacity=0, facilities=[], stamp=STAMP)
    assert zero.value.field == "capacity"
    with pytest.raises(InvalidValue) as spa:
        a_site().change_facilities(["spa"], STAMP)
    assert spa.value.rule == "facility_unknown"


def test_an_erasure_note_that_names_the_resident_is_refused() -> None:
    """The note outlives the erasure (it says why): it may not spell out what is erased."""
    resident = a_resident()
    resident.collect_events()
    full_width = "\uff2c\uff29 \uff37\uff25\uff29 asked"
    digits = "".join(c for c in resident.phone if c.isdigit())
    phone_dashed = f"called from {digits[:3]}-{digits[3:7]}-{digits[7:]}"
    for note in ("request from li  wei", full_width, f"number {resident.id_number.lower()}", phone_dashed):
        with pytest.raises(InvalidValue) as refused:
            resident.erase_personal_data(legal_basis="data_subject_request", note=note, stamp=STAMP)
        assert (refused.value.field, refused.value.rule) == ("note", "note_names_the_resident")
        assert resident.collect_events() == [] and resident.erased_on is None
    resident.erase_personal_data(legal_basis="data_subject_request", note="request 2026-117", stamp=STAMP)
    assert resident.erased_on is not None


def test_mentions_folds_case_width_and_spaces_and_ignores_erased_and_one_letter_names() -> None:
    from domain.common import ERASED, mentions

    assert mentions("a bed for 王 芳", ["王芳"]) and mentions("CALL LI WEI", ["Li Wei"])
    assert not mentions("a bed for 王芳", [ERASED, "王", ""]) and not mentions(None, ["王芳"])


# -- beds from a date on -----------------------------------------------------------------------
def test_a_move_recorded_late_counts_the_beds_the_site_had_on_its_days() -> None:
    """Found by a review: capacity changes had no date, so a move dated before the site grew was
    counted against beds it did not have yet. One bed until September, two from then."""
    site = a_site(capacity=1)
    a_resident().move_into_site(site, date(2026, 6, 1), STAMP)
    site.change_capacity(2, STAMP, effective_date=date(2026, 9, 1))
    assert site.capacity == 2 and site.capacity_on("2026-08-31") == 1 and site.capacity_on("2026-09-01") == 2
    with pytest.raises(RuleViolated) as refused:
        a_resident().move_into_site(site, date(2026, 8, 15), STAMP)
    assert (refused.value.rule, refused.value.details["full_on"], refused.value.details["capacity"]) == (
        "site_full", "2026-08-15", 1)
    a_resident().move_into_site(site, date(2026, 9, 1), STAMP)
    assert site.free_beds == 0


def test_beds_cannot_fall_below_the_residents_of_any_day_since_the_change() -> None:
    site = a_site(capacity=3)
    first, second = a_resident(), a_resident()
    first.move_into_site(site, date(2026, 4, 1), STAMP)
    second.move_into_site(site, date(2026, 4, 1), STAMP)
    second.depart(effective_date=date(2026, 7, 1), reason="went home", stamp=STAMP, previous_site=site)
    with pytest.raises(RuleViolated) as shrinking:
        site.change_capacity(1, STAMP, effective_date=date(2026, 6, 1))  # two lived there in June
    assert (shrinking.value.rule, shrinking.value.details["occupants"], shrinking.value.details["on"]) == (
        "capacity_below_occupants", 2, "2026-06-01")
    site.change_capacity(1, STAMP, effective_date=date(2026, 7, 1))  # the bed was freed that day
    assert site.capacity_from == [["", 3], ["2026-07-01", 1]]


def test_a_change_of_beds_is_dated_today_by_default_never_in_the_future_nor_before_the_latest() -> None:
    site = a_site(capacity=2)
    site.change_capacity(4, STAMP)
    assert site.capacity_from == [["", 2], [STAMP.today.isoformat(), 4]]
    with pytest.raises(InvalidValue) as future:
        site.change_capacity(5, STAMP, effective_date=date(2026, 12, 1))
    assert future.value.rule == "effective_date_in_future"
    with pytest.raises(RuleViolated) as earlier:
        site.change_capacity(5, STAMP, effective_date=date(2026, 10, 1))
    assert (earlier.value.rule, earlier.value.details["earliest"]) == ("capacity_change_before_latest",
                                                                       STAMP.today.isoformat())
    site.change_capacity(4, STAMP)  # no change: nothing recorded
    assert [type(e).__name__ for e in site.collect_events()] == ["Registered", "CapacityChanged"]


def test_a_change_of_beds_recorded_before_they_were_dated_counts_on_every_date() -> None:
    """Old events and snapshots read as they did: today's beds on every date."""
    state: dict[str, object] = {"capacity": 7}
    HousingSite.CapacityChanged.upcast_v1_v2(state)
    assert state["effective_date"] is None
    site = a_site(capacity=1)
    site._capacity_changed(capacity=3, effective_date=None, **STAMP.event_fields())
    assert site.capacity_from == [["", 3]] and site.capacity_on("2020-01-01") == 3
    snapshot: dict[str, object] = {"capacity": 3}
    HousingSite.upcast_v3_v4(snapshot)
    assert snapshot["capacity_from"] == [["", 3]]


def test_a_site_cannot_close_before_its_last_move_out() -> None:
    """Found by a review: a site dated closed in April showed a resident living there in May."""
    site = a_site()
    resident = a_resident()
    resident.move_into_site(site, date(2026, 3, 1), STAMP)
    resident.move_to_private_housing(area="Xinqiao", effective_date=date(2026, 6, 1), stamp=STAMP,
                                     previous_site=site)
    with pytest.raises(RuleViolated) as early:
        site.close(closed_on=date(2026, 4, 1), reason="demolished", stamp=STAMP)
    assert (early.value.rule, early.value.details["earliest"]) == ("closed_before_last_move", "2026-06-01")
    site.close(closed_on=date(2026, 6, 1), reason="demolished", stamp=STAMP)
    assert site.is_closed


def test_nothing_new_is_recorded_of_an_erased_person_nor_dated_while_they_were_away() -> None:
    """Found by a review: a permit was applied for and services recorded for an erased
    resident; a service and an employer were dated in months the resident was gone."""
    from domain.common import RuleViolated

    resident = a_resident(registered_on=date(2026, 1, 5))
    resident.depart(effective_date=date(2026, 3, 1), reason="home", stamp=STAMP)
    resident.return_to_district(area="xinqi", effective_date=date(2026, 8, 1), stamp=STAMP)
    for action in (lambda: resident.deliver_service(kind="legal_aid", delivered_on=date(2026, 5, 1),
                                                    provider="Legal Aid Centre", stamp=STAMP),
                   lambda: resident.change_employer(employer="Shenzhou", effective_date=date(2026, 5, 1),
                                                    stamp=STAMP)):
        with pytest.raises(RuleViolated) as away:
            action()
        assert away.value.rule == "resident_away_then"
    resident.deliver_service(kind="legal_aid", delivered_on=date(2026, 2, 1), provider="Legal Aid Centre",
                             stamp=STAMP)  # before the departure, recorded late: taken
    resident.erase_personal_data(legal_basis="data_subject_request", note="request 2026-117", stamp=STAMP)
    with pytest.raises(RuleViolated) as erased:
        resident.apply_for_permit(applied_on=date(2026, 11, 1), stamp=STAMP)
    assert erased.value.rule == "already_erased"
