"""The catalogue of stored events and the one codec every follower uses.

* Each event class has a stable name (``Resident.Registered``), the Kafka topic of its
  aggregate kind (``residents``) and the field that holds the date it took effect; it is
  stored under a topic frozen in ``application/topics.py``.
* ``public_state`` turns an event's stored bytes into plain JSON (dates, UUIDs and money
  as strings): what other offices receive on Kafka.
* ``decode`` turns plain JSON back into the domain event the views apply.

The in-process projector, rebuilds and the Kafka workers all go through ``decode``, so a
view built from the store and one built from Kafka are the same, value for value.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic
from pydantic import TypeAdapter

from application.topics import check_topics, install_topics
from domain.access import ApiKey
from domain.active_members import ActiveMember
from domain.areas import Area
from domain.cobuilding import Pairing
from domain.committees import ManagementCommittee
from domain.disputes import DisputeCase
from domain.operators import Operator, SiteOperatorClaim
from domain.residents import IdentityNumberClaim, PermitNumberClaim, Resident
from domain.sites import HousingSite
from domain.subsidies import SubsidyApplication, SubsidyProgram

# Events are written and read under their frozen topics (application/topics.py) in every
# process that knows the catalogue; it must happen before any topic is computed.
install_topics()

# Aggregate kind -> the suffix of its Kafka topic (PREFIX.residents, ...). The claim on an
# identity number travels with the residents: it exists only for them.
AGGREGATE_KINDS: dict[type[Aggregate], str] = {
    Area: "areas",
    ApiKey: "access",
    Resident: "residents",
    IdentityNumberClaim: "residents",
    PermitNumberClaim: "residents",
    HousingSite: "sites",
    DisputeCase: "disputes",
    ManagementCommittee: "committees",
    ActiveMember: "committees",
    SubsidyProgram: "subsidies",
    SubsidyApplication: "subsidies",
    Operator: "sites",
    SiteOperatorClaim: "sites",
    Pairing: "sites",
}
KINDS = ("residents", "sites", "disputes", "committees", "subsidies", "areas", "access")
# Where a stored event of a class this code does not know is published, so the relay
# never skips one; consumers dead-letter it until they know the class.
UNKNOWN_KIND = "unknown"

# The field that holds the date an event took effect, where it is not ``effective_date``.
# Events absent here and without ``effective_date`` have no date in the world (a note, a
# capacity change): their effect is when they were recorded.
EFFECTIVE_FIELDS: dict[str, str] = {
    "Resident.Registered": "registered_on",
    "Resident.PermitApplied": "applied_on",
    "Resident.PermitIssued": "issued_on",
    "Resident.PermitEndorsed": "endorsed_on",
    "Resident.PermitReinstated": "endorsed_on",
    "Resident.PermitSuspended": "lapsed_on",
    "HousingSite.CommunityCommitteeEstablished": "established_on",
    "HousingSite.Closed": "closed_on",
    "HousingSite.OperatorChanged": "changed_on",
    "HousingSite.SiteAssessed": "assessed_on",
    "HousingSite.PreparationApproved": "approved_on",
    "HousingSite.ElectionHeld": "held_on",
    "HousingSite.CommunityMembersChanged": "changed_on",
    "HousingSite.TermEnded": "ended_on",
    "DisputeCase.Logged": "occurred_on",
    "DisputeCase.Assigned": "assigned_on",
    "DisputeCase.MediationHeld": "held_on",
    "DisputeCase.Resolved": "resolved_on",
    "DisputeCase.EscalatedForBreach": "due_on",
    "ManagementCommittee.Established": "established_on",
    "ManagementCommittee.MemberAdded": "member.joined_on",  # a field of the member entry
    "ManagementCommittee.MemberRemoved": "left_on",
    "ManagementCommittee.MinutesRecorded": "held_on",
    "ManagementCommittee.SeatVacated": "vacated_on",
    "ManagementCommittee.SeatResumed": "resumed_on",
    "ManagementCommittee.ActionAssigned": "assigned_on",
    "ManagementCommittee.ActionCompleted": "done_on",
    "Resident.JoinedCommittee": "joined_on",
    "Resident.IdentifiedAsActiveMember": "identified_on",
    "Resident.LeftCommittee": "left_on",
    "Resident.SchoolPlacementRequested": "requested_on",
    "Resident.SchoolPlaced": "placed_on",
    "Resident.SchoolPlacementRefused": "refused_on",
    "Resident.ServiceDelivered": "delivered_on",
    "ActiveMember.Identified": "identified_on",
    "ActiveMember.Trained": "trained_on",
    "ActiveMember.Appointed": "appointed_on",
    "ActiveMember.RoleEnded": "ended_on",
    "ActiveMember.EmployerLiaisonAgreed": "agreed_on",
    "ActiveMember.Lost": "lost_on",
    "SubsidyApplication.PaymentScheduled": "approved_on",
    "SubsidyApplication.PaymentRecorded": "paid_on",
    "SubsidyApplication.OutcomeVerified": "verified_on",
    "Operator.SiteAssigned": "assigned_on",
    "Operator.SiteReleased": "released_on",
    "Operator.EmployeeLinked": "linked_on",
    "Operator.EmployeeUnlinked": "unlinked_on",
    "Operator.SanitationInspected": "inspected_on",
    "Operator.ContactChanged": "changed_on",
    "Pairing.Agreed": "agreed_on",
    "Pairing.ContributionDelivered": "delivered_on",
    "Pairing.Ended": "ended_on",
}

# Fields every event has that are not part of its state in the store.
_IDENTITY = frozenset({"originator_id", "originator_version", "originator_id_type"})
# Values that JSON already carries as they are: no conversion on decode.
_PLAIN = (str, int, bool, float, Any)


class UndecodableEvent(ValueError):
    """Stored bytes or a message that cannot be turned into a domain event."""


@dataclass(frozen=True)
class EventType:
    name: str
    cls: type
    topic: str
    kind: str
    effective_field: str | None

    @cached_property
    def converters(self) -> dict[str, TypeAdapter[Any]]:
        """A pydantic adapter per field whose JSON form differs from the Python value."""
        hints = typing.get_type_hints(self.cls)
        return {
            name: TypeAdapter(hint)
            for name, hint in hints.items()
            if name not in _IDENTITY and typing.get_origin(hint) is not typing.ClassVar and hint not in _PLAIN
        }

    def effective_date(self, state: dict[str, Any]) -> str | None:
        """The date the event took effect, as ISO text, from its public state."""
        value = self.effective_value(state)
        return str(value) if value is not None else None

    def effective_value(self, event_or_state: Any) -> Any:
        """The value of the effective field in an event or its state; a dotted name reads a
        field of a nested entry (``member.joined_on``)."""
        if self.effective_field is None:
            return None
        value = event_or_state
        for part in self.effective_field.split("."):
            value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
            if value is None:
                return None
        return value


@dataclass
class EventCatalogue:
    """Every event class of the domain, by stable name, by stored topic and by class."""

    by_name: dict[str, EventType] = field(default_factory=dict)
    by_topic: dict[str, EventType] = field(default_factory=dict)
    by_class: dict[type, EventType] = field(default_factory=dict)

    @classmethod
    def of_domain(cls) -> EventCatalogue:
        catalogue = cls()
        check_topics([*AGGREGATE_KINDS, *(e for a in AGGREGATE_KINDS for e in _event_classes(a))])
        for aggregate, kind in AGGREGATE_KINDS.items():
            for event_class in _event_classes(aggregate):
                name = f"{aggregate.__name__}.{event_class.__name__}"
                effective = EFFECTIVE_FIELDS.get(name)
                if effective is None and "effective_date" in typing.get_type_hints(event_class):
                    effective = "effective_date"
                catalogue.add(EventType(name, event_class, get_topic(event_class), kind, effective))
        return catalogue

    def add(self, event_type: EventType) -> None:
        self.by_name[event_type.name] = event_type
        self.by_topic[event_type.topic] = event_type
        self.by_class[event_type.cls] = event_type

    def for_topic(self, topic: str) -> EventType | None:
        return self.by_topic.get(topic)

    def kind_of_topic(self, topic: str) -> str:
        event_type = self.by_topic.get(topic)
        return event_type.kind if event_type is not None else UNKNOWN_KIND

    def name_of(self, event: Any) -> str:
        event_type = self.by_class.get(type(event))
        return event_type.name if event_type is not None else get_topic(type(event))

    def decode(self, type_name: str, originator_id: UUID | str, version: int, state: dict[str, Any]) -> Any:
        """The domain event from its stable name (or stored topic), identity and public state."""
        event_type = self.by_name.get(type_name) or self.by_topic.get(type_name)
        if event_type is None:
            raise UndecodableEvent(f"unknown event type {type_name!r}")
        return decode_state(event_type, originator_id, version, state)

    def decode_stored(self, topic: str, originator_id: UUID | str, version: int, stored: bytes) -> Any:
        event_type = self.by_topic.get(topic)
        if event_type is None:
            raise UndecodableEvent(f"unknown event topic {topic!r}")
        return decode_state(event_type, originator_id, version, public_state(stored))


def _event_classes(aggregate: type[Aggregate]) -> Iterator[type]:
    seen: set[type] = set()
    for klass in aggregate.__mro__:
        for value in vars(klass).values():
            if (
                isinstance(value, type)
                and issubclass(value, Aggregate.Event)
                and value.__qualname__.startswith(aggregate.__name__ + ".")
                and value.__qualname__.count(".") == 1
                and value.__name__ not in ("Event", "Created")
                and value not in seen
            ):
                seen.add(value)
                yield value


def decode_state(event_type: EventType, originator_id: UUID | str, version: int, state: dict[str, Any]) -> Any:
    """Build the event the way eventsourcing's mapper does (``object.__new__`` plus its
    state), converting each field to its declared type and upcasting old shapes."""
    try:
        values = dict(state)
        class_version = getattr(event_type.cls, "class_version", 1)
        from_version = int(values.pop("class_version", 1))
        while from_version < class_version:
            getattr(event_type.cls, f"upcast_v{from_version}_v{from_version + 1}")(values)
            from_version += 1
        for name, adapter in event_type.converters.items():
            if name in values:
                values[name] = adapter.validate_python(values[name])
        values["originator_id"] = originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        values["originator_version"] = int(version)
    except UndecodableEvent:
        raise
    except Exception as error:  # any malformed value: the event cannot be built
        raise UndecodableEvent(f"{event_type.name} v{version} of {originator_id}: {error}") from error
    event: Any = object.__new__(event_type.cls)
    object.__setattr__(event, "__dict__", values)
    return event


# -- stored bytes -> public JSON --------------------------------------------------------
def _public_value(marker: dict[str, Any]) -> Any:
    """eventsourcing's JSON transcoder marks non-JSON values as {"_type_", "_data_"}."""
    if len(marker) != 2 or "_type_" not in marker or "_data_" not in marker:
        return marker
    kind, data = marker["_type_"], marker["_data_"]
    if kind == "uuid_hex":
        return str(UUID(data))
    if kind in ("date_iso", "datetime_iso", "decimal_str"):
        return str(data)
    raise UndecodableEvent(f"stored value of unknown type {kind!r}")


# Fields the relay publishes as null: an API key's verifier is nobody else's business.
WITHHELD_ON_KAFKA = frozenset({"key_hash"})


def public_state(stored: bytes) -> dict[str, Any]:
    """An event's stored state as plain JSON values."""
    try:
        state = json.loads(stored, object_hook=_public_value)
    except UndecodableEvent:
        raise
    except ValueError as error:
        raise UndecodableEvent(f"stored state is not JSON: {error}") from error
    if not isinstance(state, dict):
        raise UndecodableEvent("stored state is not a JSON object")
    return state


def plain(value: Any) -> Any:
    """A Python value as JSON would carry it (for documents built from decoded events)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
