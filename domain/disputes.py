"""Dispute cases (矛盾纠纷): from first report to closure, with service levels."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.common import ERASED, InvalidValue, RuleViolated, Stamp, check_distinct_residents, check_effective_date


class DisputeCategory(StrEnum):
    WAGES_AND_LABOUR = "wages_and_labour"
    HOUSING = "housing"
    NEIGHBOURS = "neighbours"
    PUBLIC_ORDER = "public_order"
    FAMILY_PLANNING = "family_planning"
    SANITATION = "sanitation"
    OTHER = "other"


class Agency(StrEnum):
    PUBLIC_SECURITY = "public_security"
    LABOUR_INSPECTION = "labour_inspection"
    FAMILY_PLANNING = "family_planning"
    SANITATION = "sanitation"
    STREET_OFFICE = "street_office"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Outcome(StrEnum):
    MEDIATED_AGREEMENT = "mediated_agreement"
    REFERRED = "referred"
    WITHDRAWN = "withdrawn"
    ADJUDICATED = "adjudicated"


class CaseStatus(StrEnum):
    LOGGED = "logged"
    ASSIGNED = "assigned"
    REFERRED = "referred"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Action(StrEnum):
    ASSIGN = "assign"
    NOTE = "note"
    MEDIATION = "mediation"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    COMMITTEE_DECISION = "committee_decision"


# What may happen to a case in each state; anything else is refused naming both.
ALLOWED: dict[CaseStatus, frozenset[Action]] = {
    CaseStatus.LOGGED: frozenset(
        {Action.ASSIGN, Action.NOTE, Action.ESCALATE, Action.RESOLVE, Action.COMMITTEE_DECISION}
    ),
    CaseStatus.ASSIGNED: frozenset(
        {Action.ASSIGN, Action.NOTE, Action.MEDIATION, Action.ESCALATE, Action.RESOLVE, Action.COMMITTEE_DECISION}
    ),
    CaseStatus.REFERRED: frozenset(
        {Action.ASSIGN, Action.NOTE, Action.ESCALATE, Action.RESOLVE, Action.COMMITTEE_DECISION}
    ),
    CaseStatus.ESCALATED: frozenset(
        {Action.ASSIGN, Action.NOTE, Action.MEDIATION, Action.RESOLVE, Action.COMMITTEE_DECISION}
    ),
    CaseStatus.RESOLVED: frozenset({Action.NOTE, Action.CLOSE, Action.REOPEN}),
    CaseStatus.CLOSED: frozenset({Action.REOPEN}),
}

OPEN_STATUSES = frozenset(s for s in CaseStatus if s is not CaseStatus.CLOSED)
UNRESOLVED_STATUSES = frozenset(OPEN_STATUSES - {CaseStatus.RESOLVED})


@dataclass(frozen=True)
class ServiceLevel:
    """Days allowed for the first assignment and for resolution."""

    response_days: int
    resolution_days: int


@dataclass(frozen=True)
class SlaPolicy:
    levels: dict[str, ServiceLevel] = field(
        default_factory=lambda: {
            DisputeCategory.WAGES_AND_LABOUR.value: ServiceLevel(1, 15),
            DisputeCategory.HOUSING.value: ServiceLevel(2, 30),
            DisputeCategory.NEIGHBOURS.value: ServiceLevel(3, 30),
            DisputeCategory.PUBLIC_ORDER.value: ServiceLevel(1, 10),
            DisputeCategory.FAMILY_PLANNING.value: ServiceLevel(3, 30),
            DisputeCategory.SANITATION.value: ServiceLevel(2, 20),
            DisputeCategory.OTHER.value: ServiceLevel(3, 30),
        }
    )

    def level(self, category: str) -> ServiceLevel:
        return self.levels[category]


class Breach(StrEnum):
    RESPONSE = "response"
    RESOLUTION = "resolution"


def parse_enum(enum: type[StrEnum], value: str, field_name: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise InvalidValue(
            field_name,
            f"unknown {field_name} {value!r}; allowed: {', '.join(e.value for e in enum)}",
            rule=f"{field_name.split('.')[-1]}_unknown",
        ) from None


class DisputeCase(Aggregate):
    """A dispute a caseworker logged. Its due dates are fixed when it is logged (or
    reopened) from the service levels then in force, so history never shifts."""

    @classmethod
    def log(
        cls,
        *,
        category: str,
        parties: list[dict[str, Any]],
        site_id: UUID | None,
        area: str,
        description: str,
        priority: str,
        occurred_on: date,
        sla: SlaPolicy,
        stamp: Stamp,
    ) -> DisputeCase:
        category = parse_enum(DisputeCategory, category, "category")
        priority = parse_enum(Priority, priority, "priority")
        check_effective_date(occurred_on, stamp, field_name="occurred_on")
        if not parties:
            raise InvalidValue("parties", "a dispute has at least one party", rule="parties_empty")
        check_distinct_residents(parties, "parties", rule="party_named_twice")
        level = sla.level(category)
        logged_on = stamp.today
        case: DisputeCase = cls(
            category=category,
            parties=parties,
            site_id=site_id,
            area=area,
            description=description,
            priority=priority,
            occurred_on=occurred_on,
            logged_on=logged_on,
            response_due=logged_on + timedelta(days=level.response_days),
            resolution_due=logged_on + timedelta(days=level.resolution_days),
            **stamp.event_fields(),
        )
        return case

    @event("Logged")
    def __init__(
        self,
        *,
        category: str,
        parties: list[dict[str, Any]],
        site_id: UUID | None,
        area: str,
        description: str,
        priority: str,
        occurred_on: date,
        logged_on: date,
        response_due: date,
        resolution_due: date,
        actor_id: str,
        actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A dispute (矛盾纠纷) was logged: parties, category, priority and its service-level due dates."""
        self.category = category
        self.parties = parties
        self.site_id = site_id
        self.area = area
        self.description = description
        self.priority = priority
        self.occurred_on = occurred_on
        self.logged_on = logged_on
        self.logged_by = actor_id
        self.response_due = response_due
        self.resolution_due = resolution_due
        self.status = CaseStatus.LOGGED.value
        self.assignee: str | None = None
        self.agency: str | None = None
        self.first_assigned_on: date | None = None
        self.resolved_by: str | None = None
        self.resolved_on: date | None = None
        self.outcome: str | None = None
        self.amount_recovered: Decimal | None = None
        self.breaches: list[str] = []

    # -- state machine ------------------------------------------------------
    def check_allowed(self, action: Action) -> None:
        status = CaseStatus(self.status)
        if action not in ALLOWED[status]:
            allowed = sorted(a.value for a in ALLOWED[status])
            raise RuleViolated(
                f"a {status.value} case does not allow {action.value}; allowed: {', '.join(allowed)}",
                rule="action_not_allowed_in_state",
                state=status.value,
                allowed_actions=allowed,
            )

    def _working_status(self) -> CaseStatus:
        if self.agency:
            return CaseStatus.REFERRED
        return CaseStatus.ASSIGNED if self.assignee else CaseStatus.LOGGED

    @property
    def is_open(self) -> bool:
        return CaseStatus(self.status) in OPEN_STATUSES

    # -- commands -----------------------------------------------------------
    def assign(self, *, assignee: str | None, agency: str | None, stamp: Stamp) -> None:
        self.check_allowed(Action.ASSIGN)
        if (assignee is None) == (agency is None):
            raise InvalidValue(
                "assignee", "give exactly one of assignee (a user id) or agency", rule="assignment_target"
            )
        if agency is not None:
            agency = parse_enum(Agency, agency, "agency")
        if assignee == self.assignee and agency == self.agency:
            return
        self._assigned(assignee=assignee, agency=agency, assigned_on=stamp.today, **stamp.event_fields())

    @event("Assigned")
    def _assigned(
        self, *, assignee: str | None, agency: str | None, assigned_on: date, actor_id: str, actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """The case was assigned to a caseworker and/or an agency."""
        self.assignee = assignee
        self.agency = agency
        self.status = self._working_status().value
        if self.first_assigned_on is None:
            self.first_assigned_on = assigned_on

    def add_note(self, *, text: str, stamp: Stamp) -> None:
        self.check_allowed(Action.NOTE)
        self._note_added(text=text, **stamp.event_fields())

    @event("NoteAdded")
    def _note_added(self, *, text: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A note was added to the case."""
        pass

    def hold_mediation(self, *, held_on: date, participants: list[str], outcome: str, stamp: Stamp) -> None:
        self.check_allowed(Action.MEDIATION)
        check_effective_date(held_on, stamp, earliest=self.occurred_on, earliest_rule="mediation_before_incident",
                             field_name="held_on")
        self._mediation_held(held_on=held_on, participants=participants, outcome=outcome, **stamp.event_fields())

    @event("MediationHeld")
    def _mediation_held(
        self, *, held_on: date, participants: list[str], outcome: str, actor_id: str, actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A mediation was held on held_on, with its participants and outcome."""
        pass

    def escalate(self, *, to: str, reason: str, stamp: Stamp) -> None:
        self.check_allowed(Action.ESCALATE)
        self._escalated(to=to, reason=reason, **stamp.event_fields())

    @event("Escalated")
    def _escalated(self, *, to: str, reason: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The case was escalated to another body (to), for the reason given."""
        self.status = CaseStatus.ESCALATED.value

    def resolve(self, *, outcome: str, amount_recovered: Decimal | None, stamp: Stamp) -> None:
        self.check_allowed(Action.RESOLVE)
        outcome = parse_enum(Outcome, outcome, "outcome")
        if amount_recovered is not None and self.category != DisputeCategory.WAGES_AND_LABOUR:
            raise InvalidValue(
                "amount_recovered", "an amount recovered is recorded only for wage cases",
                rule="amount_recovered_not_wage_case",
            )
        self._resolved(outcome=outcome, amount_recovered=amount_recovered, resolved_on=stamp.today,
                       **stamp.event_fields())

    @event("Resolved")
    def _resolved(
        self, *, outcome: str, amount_recovered: Decimal | None, resolved_on: date, actor_id: str, actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """The case was resolved with an outcome (for a wage case, the amount recovered)."""
        self.status = CaseStatus.RESOLVED.value
        self.outcome = outcome
        self.amount_recovered = amount_recovered
        self.resolved_by = actor_id
        self.resolved_on = resolved_on

    def close(self, *, stamp: Stamp) -> None:
        self.check_allowed(Action.CLOSE)
        if stamp.actor.user_id == self.resolved_by:
            raise RuleViolated(
                f"{stamp.actor.user_id} resolved this case and so cannot close it; another supervisor must",
                rule="closer_is_resolver",
                resolved_by=self.resolved_by,
            )
        self._closed(**stamp.event_fields())

    @event("Closed")
    def _closed(self, *, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A supervisor closed the resolved case (never the one who resolved it)."""
        self.status = CaseStatus.CLOSED.value

    def reopen(self, *, reason: str, sla: SlaPolicy, stamp: Stamp) -> None:
        self.check_allowed(Action.REOPEN)
        level = sla.level(self.category)
        self._reopened(reason=reason, resolution_due=stamp.today + timedelta(days=level.resolution_days),
                       **stamp.event_fields())

    @event("Reopened")
    def _reopened(
        self, *, reason: str, resolution_due: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The case was reopened, for the reason given, with a new resolution due date."""
        self.status = self._working_status().value
        self.resolution_due = resolution_due
        self.outcome = None
        self.amount_recovered = None
        self.resolved_by = None
        self.resolved_on = None

    def check_discussed_on(self, day: date, field_name: str) -> None:
        """A committee's meeting takes up the case on a day not before it occurred (found by a
        review: a meeting of months before the incident decided it), as a mediation does."""
        if day < self.occurred_on:
            raise RuleViolated(f"case {self.id} occurred on {self.occurred_on.isoformat()}, after the meeting of "
                               f"{day.isoformat()}", rule="meeting_before_incident",
                               earliest=self.occurred_on.isoformat(), field=field_name)

    def record_committee_decision(
        self, *, committee_id: UUID, meeting_id: str, decision: str, stamp: Stamp
    ) -> None:
        self.check_allowed(Action.COMMITTEE_DECISION)
        self._committee_decision_recorded(committee_id=committee_id, meeting_id=meeting_id, decision=decision,
                                          **stamp.event_fields())

    @event("CommitteeDecisionRecorded")
    def _committee_decision_recorded(
        self, *, committee_id: UUID, meeting_id: str, decision: str, actor_id: str, actor_role: str,
        recorded_at: datetime,
    ) -> None:
        """A management committee's decision on the case, taken at a meeting, was recorded."""
        pass

    # -- service levels -----------------------------------------------------
    def erase_personal_data(self, *, resident_id: UUID, legal_basis: str, stamp: Stamp,
                            named_in_text: bool = False) -> None:
        """A party's personal data was erased, or that of a resident the case's text spells out
        (``named_in_text``): the case's free text goes with it (the key that sealed it is
        destroyed in the same transaction); dates, category, status and amounts stay, so
        statistics do not change."""
        if not named_in_text and str(resident_id) not in {str(p.get("resident_id")) for p in self.parties}:
            raise ValueError(f"resident {resident_id} is not a party to case {self.id}")
        self._personal_data_erased(resident_id=resident_id, legal_basis=legal_basis, **stamp.event_fields())

    @event("PersonalDataErased")
    def _personal_data_erased(self, *, resident_id: UUID, legal_basis: str, actor_id: str, actor_role: str,
                              recorded_at: datetime) -> None:
        """A party's personal data was erased: the case's free text and party names read as erased."""
        self.description = ERASED
        self.parties = [{**p, "name": ERASED} if p.get("name") is not None else p for p in self.parties]

    def overdue(self, today: date) -> list[tuple[Breach, date]]:
        """The deadlines this case has missed as of ``today``."""
        found: list[tuple[Breach, date]] = []
        unresolved = CaseStatus(self.status) in UNRESOLVED_STATUSES
        if self.first_assigned_on is None and unresolved and today > self.response_due:
            found.append((Breach.RESPONSE, self.response_due))
        if unresolved and today > self.resolution_due:
            found.append((Breach.RESOLUTION, self.resolution_due))
        return found

    def breaches_due(self, today: date) -> list[tuple[Breach, date]]:
        """The missed deadlines not yet recorded as breaches."""
        return [(b, due) for b, due in self.overdue(today) if f"{b.value}:{due.isoformat()}" not in self.breaches]

    @property
    def allowed_actions(self) -> list[str]:
        return sorted(a.value for a in ALLOWED[CaseStatus(self.status)])

    def escalate_breaches(self, stamp: Stamp) -> None:
        """Record each new breach once (the sweep's command; run by the system actor)."""
        for breach, due in self.breaches_due(stamp.today):
            self._escalated_for_breach(breach=breach.value, due_on=due, **stamp.event_fields())

    @event("EscalatedForBreach")
    def _escalated_for_breach(
        self, *, breach: str, due_on: date, actor_id: str, actor_role: str, recorded_at: datetime
    ) -> None:
        """The case missed a service-level deadline (response or resolution) due on due_on."""
        self.breaches.append(f"{breach}:{due_on.isoformat()}")  # the views name breaches the same way
