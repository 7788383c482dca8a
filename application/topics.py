"""Stable topics: the strings events and aggregates are stored under, frozen.

eventsourcing stores every event with a *topic* naming its class, and every created event
also with the topic of its aggregate class (``originator_topic``); reading an event resolves
the topic back to a class. By default a topic is the class's module path
(``domain.residents:Resident.Registered``), so moving or renaming a class would orphan every
event stored under the old path. This registry freezes, for each aggregate class and each of
its event classes, the topic as it is stored, and ``install_topics`` makes eventsourcing use
it both ways: the class's own ``TOPIC`` attribute is what ``get_topic`` writes, and
``register_topic`` makes the string resolve to the class wherever it lives.

* Moving or renaming a class: change the class reference (and the event's key below), never
  the string.
* A new aggregate or event class: add its entry, with its module path as the string; from
  then on that string is frozen. A class without an entry is refused (``check_topics``, run
  whenever the event catalogue is built), so no class is ever stored under a path by accident.
* A string is never reused for another class.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from eventsourcing.utils import get_topic, register_topic

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

REGISTRY_FILE = "application/topics.py"


class TopicRegistryError(RuntimeError):
    """A class without a frozen topic, or a topic that cannot be installed."""


@dataclass(frozen=True)
class Frozen:
    """One aggregate class: its stored topic, and its event classes' (by their name on the
    aggregate, as ``Resident.Registered`` is ``Resident``'s ``Registered``)."""

    aggregate: type
    topic: str
    events: Mapping[str, str]

    def classes(self) -> Iterator[tuple[type, str]]:
        yield self.aggregate, self.topic
        for name, topic in self.events.items():
            event_class = getattr(self.aggregate, name, None)
            if not isinstance(event_class, type):
                raise TopicRegistryError(f"{REGISTRY_FILE}: {self.aggregate.__qualname__} has no event class {name!r}"
                                         f" (frozen as {topic!r}); point the entry at the class's new name")
            yield event_class, topic


REGISTRY: tuple[Frozen, ...] = (
    Frozen(Area, "domain.areas:Area", {
        "Defined": "domain.areas:Area.Defined",
        "Renamed": "domain.areas:Area.Renamed",
    }),
    Frozen(ApiKey, "domain.access:ApiKey", {
        "Issued": "domain.access:ApiKey.Issued",
        "Revoked": "domain.access:ApiKey.Revoked",
    }),
    Frozen(Resident, "domain.residents:Resident", {
        "Registered": "domain.residents:Resident.Registered",
        "MovedIntoSite": "domain.residents:Resident.MovedIntoSite",
        "MovedToPrivateHousing": "domain.residents:Resident.MovedToPrivateHousing",
        "DepartedDistrict": "domain.residents:Resident.DepartedDistrict",
        "Returned": "domain.residents:Resident.Returned",
        "EmployerChanged": "domain.residents:Resident.EmployerChanged",
        "PermitApplied": "domain.residents:Resident.PermitApplied",
        "PermitIssued": "domain.residents:Resident.PermitIssued",
        "PermitEndorsed": "domain.residents:Resident.PermitEndorsed",
        "PermitReinstated": "domain.residents:Resident.PermitReinstated",
        "PermitSuspended": "domain.residents:Resident.PermitSuspended",
        "PermitCancelled": "domain.residents:Resident.PermitCancelled",
        "PersonalDataErased": "domain.residents:Resident.PersonalDataErased",
        "JoinedCommittee": "domain.residents:Resident.JoinedCommittee",
        "LeftCommittee": "domain.residents:Resident.LeftCommittee",
        "StudyRecorded": "domain.residents:Resident.StudyRecorded",
        "IdentifiedAsActiveMember": "domain.residents:Resident.IdentifiedAsActiveMember",
        "DependantRecorded": "domain.residents:Resident.DependantRecorded",
        "SchoolPlacementRequested": "domain.residents:Resident.SchoolPlacementRequested",
        "SchoolPlaced": "domain.residents:Resident.SchoolPlaced",
        "SchoolPlacementRefused": "domain.residents:Resident.SchoolPlacementRefused",
        "ServiceDelivered": "domain.residents:Resident.ServiceDelivered",
    }),
    Frozen(IdentityNumberClaim, "domain.residents:IdentityNumberClaim", {
        "Claimed": "domain.residents:IdentityNumberClaim.Claimed",
        "Reclaimed": "domain.residents:IdentityNumberClaim.Reclaimed",
    }),
    Frozen(PermitNumberClaim, "domain.residents:PermitNumberClaim", {
        "Claimed": "domain.residents:PermitNumberClaim.Claimed",
        "Reclaimed": "domain.residents:PermitNumberClaim.Reclaimed",
    }),
    Frozen(HousingSite, "domain.sites:HousingSite", {
        "Registered": "domain.sites:HousingSite.Registered",
        "CapacityChanged": "domain.sites:HousingSite.CapacityChanged",
        "FacilitiesChanged": "domain.sites:HousingSite.FacilitiesChanged",
        "CommunityCommitteeEstablished": "domain.sites:HousingSite.CommunityCommitteeEstablished",
        "Closed": "domain.sites:HousingSite.Closed",
        "ResidentMovedIn": "domain.sites:HousingSite.ResidentMovedIn",
        "ResidentMovedOut": "domain.sites:HousingSite.ResidentMovedOut",
        "OperatorChanged": "domain.sites:HousingSite.OperatorChanged",
        "SiteAssessed": "domain.sites:HousingSite.SiteAssessed",
        "PreparationApproved": "domain.sites:HousingSite.PreparationApproved",
        "ElectionHeld": "domain.sites:HousingSite.ElectionHeld",
        "CommunityMembersChanged": "domain.sites:HousingSite.CommunityMembersChanged",
        "TermEnded": "domain.sites:HousingSite.TermEnded",
    }),
    Frozen(DisputeCase, "domain.disputes:DisputeCase", {
        "Logged": "domain.disputes:DisputeCase.Logged",
        "Assigned": "domain.disputes:DisputeCase.Assigned",
        "NoteAdded": "domain.disputes:DisputeCase.NoteAdded",
        "MediationHeld": "domain.disputes:DisputeCase.MediationHeld",
        "Escalated": "domain.disputes:DisputeCase.Escalated",
        "Resolved": "domain.disputes:DisputeCase.Resolved",
        "Closed": "domain.disputes:DisputeCase.Closed",
        "Reopened": "domain.disputes:DisputeCase.Reopened",
        "CommitteeDecisionRecorded": "domain.disputes:DisputeCase.CommitteeDecisionRecorded",
        "PersonalDataErased": "domain.disputes:DisputeCase.PersonalDataErased",
        "EscalatedForBreach": "domain.disputes:DisputeCase.EscalatedForBreach",
    }),
    Frozen(ManagementCommittee, "domain.committees:ManagementCommittee", {
        "Established": "domain.committees:ManagementCommittee.Established",
        "MemberAdded": "domain.committees:ManagementCommittee.MemberAdded",
        "MemberRemoved": "domain.committees:ManagementCommittee.MemberRemoved",
        "MeetingScheduled": "domain.committees:ManagementCommittee.MeetingScheduled",
        "MinutesRecorded": "domain.committees:ManagementCommittee.MinutesRecorded",
        "SeatVacated": "domain.committees:ManagementCommittee.SeatVacated",
        "SeatResumed": "domain.committees:ManagementCommittee.SeatResumed",
        "ActionAssigned": "domain.committees:ManagementCommittee.ActionAssigned",
        "ActionCompleted": "domain.committees:ManagementCommittee.ActionCompleted",
        "MeetingMissed": "domain.committees:ManagementCommittee.MeetingMissed",
        "TextsErased": "domain.committees:ManagementCommittee.TextsErased",
        "AgendaItemsAdded": "domain.committees:ManagementCommittee.AgendaItemsAdded",
    }),
    Frozen(ActiveMember, "domain.active_members:ActiveMember", {
        "Identified": "domain.active_members:ActiveMember.Identified",
        "Trained": "domain.active_members:ActiveMember.Trained",
        "Appointed": "domain.active_members:ActiveMember.Appointed",
        "RoleEnded": "domain.active_members:ActiveMember.RoleEnded",
        "EmployerLiaisonAgreed": "domain.active_members:ActiveMember.EmployerLiaisonAgreed",
        "Lost": "domain.active_members:ActiveMember.Lost",
        "PersonalDataErased": "domain.active_members:ActiveMember.PersonalDataErased",
        "LiaisonNotesErased": "domain.active_members:ActiveMember.LiaisonNotesErased",
    }),
    Frozen(SubsidyProgram, "domain.subsidies:SubsidyProgram", {
        "Opened": "domain.subsidies:SubsidyProgram.Opened",
        "BudgetCommitted": "domain.subsidies:SubsidyProgram.BudgetCommitted",
        "CommitmentReleased": "domain.subsidies:SubsidyProgram.CommitmentReleased",
        "PaymentRecorded": "domain.subsidies:SubsidyProgram.PaymentRecorded",
    }),
    Frozen(SubsidyApplication, "domain.subsidies:SubsidyApplication", {
        "Submitted": "domain.subsidies:SubsidyApplication.Submitted",
        "ApprovalGiven": "domain.subsidies:SubsidyApplication.ApprovalGiven",
        "PaymentScheduled": "domain.subsidies:SubsidyApplication.PaymentScheduled",
        "Rejected": "domain.subsidies:SubsidyApplication.Rejected",
        "PaymentRecorded": "domain.subsidies:SubsidyApplication.PaymentRecorded",
        "OutcomeVerified": "domain.subsidies:SubsidyApplication.OutcomeVerified",
        "Revoked": "domain.subsidies:SubsidyApplication.Revoked",
        "RewardLapsed": "domain.subsidies:SubsidyApplication.RewardLapsed",
        "JustificationErased": "domain.subsidies:SubsidyApplication.JustificationErased",
        "TextsErased": "domain.subsidies:SubsidyApplication.TextsErased",
    }),
    Frozen(Operator, "domain.operators:Operator", {
        "Registered": "domain.operators:Operator.Registered",
        "SiteAssigned": "domain.operators:Operator.SiteAssigned",
        "SiteReleased": "domain.operators:Operator.SiteReleased",
        "EmployeeLinked": "domain.operators:Operator.EmployeeLinked",
        "EmployeeUnlinked": "domain.operators:Operator.EmployeeUnlinked",
        "YearlyReportFiled": "domain.operators:Operator.YearlyReportFiled",
        "YearlyReportCorrected": "domain.operators:Operator.YearlyReportCorrected",
        "SanitationInspected": "domain.operators:Operator.SanitationInspected",
        "ContactChanged": "domain.operators:Operator.ContactChanged",
        "ContactErased": "domain.operators:Operator.ContactErased",
        "FormerContactsErased": "domain.operators:Operator.FormerContactsErased",
    }),
    Frozen(SiteOperatorClaim, "domain.operators:SiteOperatorClaim", {
        "Claimed": "domain.operators:SiteOperatorClaim.Claimed",
        "Taken": "domain.operators:SiteOperatorClaim.Taken",
        "Released": "domain.operators:SiteOperatorClaim.Released",
    }),
    Frozen(Pairing, "domain.cobuilding:Pairing", {
        "Agreed": "domain.cobuilding:Pairing.Agreed",
        "ContributionDelivered": "domain.cobuilding:Pairing.ContributionDelivered",
        "Ended": "domain.cobuilding:Pairing.Ended",
    }),
)

# Strings a class was stored under before its entry above changed (e.g. two classes merged):
# they resolve to the class but are never written. Empty so far: no class has moved.
FORMER_TOPICS: Mapping[str, type] = {}


def frozen_topics(registry: Iterable[Frozen] = REGISTRY) -> dict[type, str]:
    """Every registered class with its frozen topic."""
    topics: dict[type, str] = {}
    seen: dict[str, type] = {}
    for entry in registry:
        for cls, topic in entry.classes():
            if seen.setdefault(topic, cls) is not cls:
                raise TopicRegistryError(f"{REGISTRY_FILE}: topic {topic!r} is frozen for both "
                                         f"{seen[topic].__qualname__} and {cls.__qualname__}")
            topics[cls] = topic
    return topics


def install_topics(registry: Iterable[Frozen] = REGISTRY, former: Mapping[str, type] = FORMER_TOPICS) -> None:
    """Make eventsourcing write and resolve the frozen topics. Idempotent; run before
    anything computes a domain class's topic (``get_topic`` caches what it first computes)."""
    for cls, topic in frozen_topics(registry).items():
        # Set on the class itself: an inherited TOPIC would give a subclass its parent's.
        cls.TOPIC = topic  # type: ignore[attr-defined]
        try:
            register_topic(topic, cls)
        except Exception as error:  # eventsourcing's TopicError: the string resolves to another class
            raise TopicRegistryError(f"cannot install topic {topic!r} for {cls.__qualname__}: {error}") from error
        if get_topic(cls) != topic:
            raise TopicRegistryError(
                f"{cls.__qualname__}'s topic was computed as {get_topic(cls)!r} before the frozen {topic!r} was "
                "installed: install_topics() must run before the domain classes are used (application.events "
                "runs it on import)")
    for topic, cls in former.items():
        register_topic(topic, cls)


def check_topics(classes: Iterable[type]) -> None:
    """Refuse any of ``classes`` without a frozen topic of its own, saying how to add it."""
    missing = [cls for cls in classes if "TOPIC" not in vars(cls)]
    if missing:
        raise TopicRegistryError(
            "no stable topic for " + ", ".join(f"{c.__module__}:{c.__qualname__}" for c in missing)
            + f". Add each to {REGISTRY_FILE}: " + "; ".join(_how_to_add(c) for c in missing)
            + ". Once released, the string never changes, even when the class moves.")


def _how_to_add(cls: type) -> str:
    topic = f"{cls.__module__}:{cls.__qualname__}"
    owner, _, name = cls.__qualname__.rpartition(".")
    if owner:
        return f'"{name}": "{topic}" in the events of the {owner} entry'
    return f'Frozen({cls.__qualname__}, "{topic}", {{...its events...}}) to REGISTRY'
