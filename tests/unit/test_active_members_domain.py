"""Active members (骨干) and services to residents: every rule, with its name."""

from datetime import UTC, date, datetime

import pytest

from domain.active_members import ActiveMember, active_member_id
from domain.common import Actor, InvalidValue, Role, RuleViolated, Stamp
from domain.identity import IdentityNumber
from domain.residents import Resident
from tests.factories import id_number

STAMP = Stamp(Actor("cw-1", Role.CASEWORKER), datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
FUTURE = date(2026, 12, 1)


def a_resident() -> Resident:
    return Resident.register(id_number=IdentityNumber.parse(id_number()), name="Li Wei", phone="13800138000",
                             hometown="Anhui", employer="Hengli", area="xinqiao", registered_on=date(2026, 1, 5),
                             stamp=STAMP)


def a_member(resident: Resident | None = None) -> ActiveMember:
    resident = resident or a_resident()
    return ActiveMember.identify(resident=resident, site_id=None, area="xinqiao", identified_on=date(2026, 2, 1),
                                 stamp=STAMP)


def rule(error: pytest.ExceptionInfo[Exception]) -> str:
    value = error.value
    assert isinstance(value, InvalidValue | RuleViolated)
    return value.rule


# -- active members -----------------------------------------------------------------
def test_the_id_is_derived_from_the_resident_so_one_resident_is_one_record() -> None:
    resident = a_resident()
    assert a_member(resident).id == active_member_id(resident.id) == a_member(resident).id


def test_only_a_resident_present_in_the_district_can_be_identified() -> None:
    resident = a_resident()
    resident.depart(effective_date=date(2026, 3, 1), reason="went home", stamp=STAMP)
    with pytest.raises(RuleViolated) as refused:
        a_member(resident)
    assert rule(refused) == "resident_departed"


def test_identification_is_not_in_the_future_nor_before_registration() -> None:
    resident = a_resident()
    with pytest.raises(InvalidValue) as future:
        ActiveMember.identify(resident=resident, site_id=None, area="x", identified_on=FUTURE, stamp=STAMP)
    assert rule(future) == "effective_date_in_future" and future.value.field == "identified_on"
    with pytest.raises(RuleViolated) as early:
        ActiveMember.identify(resident=resident, site_id=None, area="x", identified_on=date(2026, 1, 1), stamp=STAMP)
    assert rule(early) == "identified_before_registration"


def test_dates_are_not_in_the_future_nor_before_identification() -> None:
    member = a_member()
    with pytest.raises(RuleViolated) as early:
        member.record_training(course="mediation", trained_on=date(2026, 1, 31), stamp=STAMP)
    assert rule(early) == "date_before_identification"
    with pytest.raises(InvalidValue) as future:
        member.appoint(role="group_leader", appointed_on=FUTURE, stamp=STAMP)
    assert rule(future) == "effective_date_in_future"
    with pytest.raises(RuleViolated) as lost_early:
        member.lose(lost_on=date(2026, 1, 1), reason="resigned", stamp=STAMP)
    assert rule(lost_early) == "date_before_identification"
    with pytest.raises(RuleViolated) as liaison_early:
        member.agree_employer_liaison(employer="Hengli", agreed_on=date(2026, 1, 1), note="day shifts", stamp=STAMP)
    assert rule(liaison_early) == "date_before_identification"


def test_a_role_is_held_once_at_a_time_and_can_be_taken_again_after_it_ended() -> None:
    member = a_member()
    member.appoint(role="group_leader", appointed_on=date(2026, 3, 1), stamp=STAMP)
    member.appoint(role="representative", appointed_on=date(2026, 3, 1), stamp=STAMP)
    with pytest.raises(RuleViolated) as twice:
        member.appoint(role="group_leader", appointed_on=date(2026, 4, 1), stamp=STAMP)
    assert rule(twice) == "role_already_held"
    with pytest.raises(RuleViolated) as before:
        member.end_role(role="group_leader", ended_on=date(2026, 2, 15), stamp=STAMP)
    assert rule(before) == "role_ended_before_appointment"
    member.end_role(role="group_leader", ended_on=date(2026, 5, 1), stamp=STAMP)
    with pytest.raises(RuleViolated) as not_held:
        member.end_role(role="group_leader", ended_on=date(2026, 5, 2), stamp=STAMP)
    assert rule(not_held) == "role_not_held"
    member.appoint(role="group_leader", appointed_on=date(2026, 6, 1), stamp=STAMP)
    assert set(member.roles) == {"group_leader", "representative"}


def test_unknown_roles_and_reasons_are_refused_naming_the_field() -> None:
    member = a_member()
    with pytest.raises(InvalidValue) as role:
        member.appoint(role="mayor", appointed_on=date(2026, 3, 1), stamp=STAMP)
    assert (rule(role), role.value.field) == ("active_member_role", "role")
    with pytest.raises(InvalidValue) as reason:
        member.lose(lost_on=date(2026, 3, 1), reason="bored", stamp=STAMP)
    assert (rule(reason), reason.value.field) == ("loss_reason", "reason")
    with pytest.raises(InvalidValue) as course:
        member.record_training(course=" ", trained_on=date(2026, 3, 1), stamp=STAMP)
    assert rule(course) == "course_missing"
    with pytest.raises(InvalidValue) as employer:
        member.agree_employer_liaison(employer="", agreed_on=date(2026, 3, 1), note="x", stamp=STAMP)
    assert rule(employer) == "employer_missing"


def test_no_appointment_training_or_liaison_after_being_lost_and_a_loss_ends_the_roles() -> None:
    member = a_member()
    member.appoint(role="committee_member", appointed_on=date(2026, 3, 1), stamp=STAMP)
    member.lose(lost_on=date(2026, 4, 1), reason="moved_away", stamp=STAMP)
    assert member.roles == {} and member.lost_reason == "moved_away"
    for act in (lambda: member.appoint(role="group_leader", appointed_on=date(2026, 5, 1), stamp=STAMP),
                lambda: member.record_training(course="c", trained_on=date(2026, 5, 1), stamp=STAMP),
                lambda: member.agree_employer_liaison(employer="E", agreed_on=date(2026, 5, 1), note="n",
                                                      stamp=STAMP)):
        with pytest.raises(RuleViolated) as refused:
            act()
        assert rule(refused) == "active_member_lost"
    with pytest.raises(RuleViolated) as again:
        member.lose(lost_on=date(2026, 5, 1), reason="resigned", stamp=STAMP)
    assert rule(again) == "already_lost"
    lost = [e for e in member.collect_events() if type(e).__name__ == "Lost"]
    assert [e.roles for e in lost] == [["committee_member"]]


def test_a_departure_loses_the_member_once_never_before_their_identification() -> None:
    member = a_member()
    assert member.lose_by_departure(departed_on=date(2026, 1, 20), stamp=STAMP)
    assert (member.lost_on, member.lost_reason) == (date(2026, 2, 1), "departed")
    assert not member.lose_by_departure(departed_on=date(2026, 3, 1), stamp=STAMP)


# -- services on the resident --------------------------------------------------------
def test_a_dependant_needs_a_known_relation_and_a_plausible_birth_year() -> None:
    resident = a_resident()
    with pytest.raises(InvalidValue) as relation:
        resident.record_dependant(name="Xiao Li", birth_year=2018, relation="cousin", stamp=STAMP)
    assert rule(relation) == "dependant_relation"
    with pytest.raises(InvalidValue) as year:
        resident.record_dependant(name="Xiao Li", birth_year=2027, relation="child", stamp=STAMP)
    assert (rule(year), year.value.field) == ("birth_year_out_of_range", "birth_year")
    dependant = resident.record_dependant(name="Xiao Li", birth_year=2018, relation="child", stamp=STAMP)
    assert resident.dependants[dependant]["birth_year"] == 2018


def test_a_departed_resident_records_no_dependant_nor_a_service_while_away() -> None:
    resident = a_resident()
    resident.depart(effective_date=date(2026, 3, 1), reason="went home", stamp=STAMP)
    with pytest.raises(RuleViolated) as dependant:
        resident.record_dependant(name="Xiao Li", birth_year=2018, relation="child", stamp=STAMP)
    assert rule(dependant) == "resident_departed"
    with pytest.raises(RuleViolated) as service:
        resident.deliver_service(kind="health_check", delivered_on=date(2026, 4, 1), provider="clinic", stamp=STAMP)
    assert rule(service) == "resident_away_then"
    # one of a day they lived here, told late, is taken (found by a review)
    resident.deliver_service(kind="health_check", delivered_on=date(2026, 2, 1), provider="clinic", stamp=STAMP)


def test_school_placement_goes_request_then_placed_or_refused() -> None:
    resident = a_resident()
    child = resident.record_dependant(name="Xiao Li", birth_year=2018, relation="child", stamp=STAMP)
    with pytest.raises(InvalidValue) as unknown:
        resident.request_school_place(dependant_id="nobody", school="S", requested_on=date(2026, 3, 1), stamp=STAMP)
    assert (rule(unknown), unknown.value.field) == ("unknown_dependant", "dependant_id")
    with pytest.raises(RuleViolated) as unasked:
        resident.place_at_school(dependant_id=child, school="S", placed_on=date(2026, 3, 1), stamp=STAMP)
    assert rule(unasked) == "no_school_request"
    resident.request_school_place(dependant_id=child, school="Xinqiao No. 2", requested_on=date(2026, 3, 1),
                                  stamp=STAMP)
    with pytest.raises(RuleViolated) as pending:
        resident.request_school_place(dependant_id=child, school="Other", requested_on=date(2026, 3, 2), stamp=STAMP)
    assert rule(pending) == "school_placement_pending"
    with pytest.raises(RuleViolated) as early:
        resident.refuse_school_place(dependant_id=child, school="Xinqiao No. 2", refused_on=date(2026, 2, 1),
                                     reason="full", stamp=STAMP)
    assert rule(early) == "decided_before_request"
    resident.refuse_school_place(dependant_id=child, school="Xinqiao No. 2", refused_on=date(2026, 3, 10),
                                 reason="full", stamp=STAMP)
    resident.request_school_place(dependant_id=child, school="Ginkgo School", requested_on=date(2026, 3, 11),
                                  stamp=STAMP)
    resident.place_at_school(dependant_id=child, school="Ginkgo School", placed_on=date(2026, 3, 20), stamp=STAMP)
    assert resident.dependants[child]["school_status"] == "placed"
    with pytest.raises(RuleViolated) as placed:
        resident.request_school_place(dependant_id=child, school="S", requested_on=date(2026, 4, 1), stamp=STAMP)
    assert rule(placed) == "already_placed"


def test_a_service_has_a_known_kind_and_a_date_within_the_record_and_keeps_the_place() -> None:
    resident = a_resident()
    with pytest.raises(InvalidValue) as kind:
        resident.deliver_service(kind="haircut", delivered_on=date(2026, 3, 1), provider="p", stamp=STAMP)
    assert rule(kind) == "service_kind"
    with pytest.raises(RuleViolated) as early:
        resident.deliver_service(kind="legal_aid", delivered_on=date(2025, 12, 1), provider="p", stamp=STAMP)
    assert rule(early) == "effective_date_before_registration"
    with pytest.raises(InvalidValue) as future:
        resident.deliver_service(kind="legal_aid", delivered_on=FUTURE, provider="p", stamp=STAMP)
    assert rule(future) == "effective_date_in_future"
    resident.deliver_service(kind="family_planning", delivered_on=date(2026, 3, 1), provider="clinic", stamp=STAMP)
    (service,) = [e for e in resident.collect_events() if type(e).__name__ == "ServiceDelivered"]
    assert (service.kind, service.area, service.site_id) == ("family_planning", "xinqiao", None)


def test_a_version_4_resident_reads_with_no_dependants() -> None:
    state: dict[str, object] = {}
    Resident.upcast_v4_v5(state)
    assert state == {"dependants": {}}


def test_a_loss_is_not_dated_before_what_was_recorded_since_nor_given_as_a_departure_by_staff() -> None:
    """Found by a review: a member lost in April was trained in June and appointed in July,
    and staff recorded `departed` for a resident still living in the district."""
    member = a_member()
    member.record_training(course="mediation", trained_on=date(2026, 6, 1), stamp=STAMP)
    member.appoint(role="group_leader", appointed_on=date(2026, 7, 1), stamp=STAMP)
    with pytest.raises(RuleViolated) as early:
        member.lose(lost_on=date(2026, 4, 1), reason="resigned", stamp=STAMP)
    assert rule(early) == "lost_before_last_record" and early.value.details["earliest"] == "2026-07-01"
    with pytest.raises(InvalidValue) as departed:
        member.lose(lost_on=date(2026, 8, 1), reason="departed", stamp=STAMP)
    assert rule(departed) == "loss_reason_departed" and departed.value.field == "reason"
    member.lose(lost_on=date(2026, 7, 1), reason="resigned", stamp=STAMP)


def test_an_identification_is_not_dated_on_a_day_the_resident_was_away() -> None:
    resident = a_resident()
    resident.depart(effective_date=date(2026, 11, 1), reason="went home", stamp=STAMP)
    resident.return_to_district(area="xinqiao", effective_date=date(2026, 11, 10), stamp=STAMP)
    with pytest.raises(RuleViolated) as away:
        ActiveMember.identify(resident=resident, site_id=None, area="x", identified_on=date(2026, 11, 5), stamp=STAMP)
    assert rule(away) == "identified_before_arrival"
    ActiveMember.identify(resident=resident, site_id=None, area="x", identified_on=date(2026, 11, 10), stamp=STAMP)


def test_a_departure_is_not_dated_before_the_members_last_record() -> None:
    member = a_member()
    member.record_training(course="mediation", trained_on=date(2026, 6, 1), stamp=STAMP)
    with pytest.raises(RuleViolated) as early:
        member.lose_by_departure(departed_on=date(2026, 2, 15), stamp=STAMP)
    assert rule(early) == "lost_before_last_record"
    assert member.lose_by_departure(departed_on=date(2026, 6, 1), stamp=STAMP)
