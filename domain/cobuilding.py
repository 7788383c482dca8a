"""Co-building (结对共建, 同驻共建): a housing site paired with an enterprise, a unit or a school
nearby, and what the partner delivers: money, goods, labour, training.

The seed: "鼓励、引导单位(企业)为外来人口居住区社区建设竭尽所能,有力出力、有物出物、有钱出钱";
and at the Ginkgo site "附近企业纷纷组织开展了与该社区的结对共建活动,送图书、送技术、送文化".
Problem 3 is the government's cost ("政府投入压力大"): the contributions are kept in yuan where
they have a value, so they can stand beside the government's subsidies per site.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.common import InvalidValue, RuleViolated, Stamp, check_effective_date
from domain.money import parse_money


class PartnerType(StrEnum):
    ENTERPRISE = "enterprise"  # 企业
    UNIT = "unit"  # 单位: an office, a hospital, a bank
    SCHOOL = "school"


class ContributionKind(StrEnum):
    MONEY = "money"  # 有钱出钱
    GOODS = "goods"  # 有物出物: books, equipment
    LABOUR = "labour"  # 有力出力
    TRAINING = "training"  # 送技术: skills, law, health


@dataclass(frozen=True)
class Contribution:
    delivered_on: date
    kind: str
    description: str
    value_yuan: Decimal | None


def _vocabulary(vocabulary: type[StrEnum], value: str, field_name: str) -> str:
    allowed = [member.value for member in vocabulary]
    if value not in allowed:
        raise InvalidValue(field_name, f"unknown {field_name} {value!r}; allowed: {', '.join(allowed)}",
                           rule=f"{field_name}_unknown")
    return value


class Pairing(Aggregate):
    """One site paired with one partner, from the day agreed until it ends. Contributions
    delivered after the end are refused; an end before the last contribution too."""

    @classmethod
    def agree(cls, *, site_id: UUID, site_area: str, partner_type: str, partner_name: str, agreed_on: date,
              stamp: Stamp) -> Pairing:
        check_effective_date(agreed_on, stamp, field_name="agreed_on")
        if not partner_name.strip():
            raise InvalidValue("partner_name", "give the partner's name", rule="partner_name_missing")
        pairing: Pairing = cls(site_id=site_id, site_area=site_area,
                               partner_type=_vocabulary(PartnerType, partner_type, "partner_type"),
                               partner_name=partner_name.strip(), agreed_on=agreed_on, **stamp.event_fields())
        return pairing

    @event("Agreed")
    def __init__(self, *, site_id: UUID, site_area: str, partner_type: str, partner_name: str, agreed_on: date,
                 actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A housing site was paired (结对共建) with an enterprise, unit or school from agreed_on."""
        self.site_id = site_id
        self.site_area = site_area
        self.partner_type = partner_type
        self.partner_name = partner_name
        self.agreed_on = agreed_on
        self.ended_on: date | None = None
        self.contributions: list[Contribution] = []
        self.last_delivered_on: date | None = None

    def deliver(self, *, delivered_on: date, kind: str, description: str, value_yuan: str | Decimal | None,
                stamp: Stamp) -> None:
        contribution_kind = _vocabulary(ContributionKind, kind, "kind")
        if value_yuan is None and contribution_kind == ContributionKind.MONEY:
            raise InvalidValue("value_yuan", "a contribution of money gives its value in yuan",
                               rule="money_contribution_without_value")
        value = None if value_yuan is None else parse_money(value_yuan, "value_yuan")
        check_effective_date(delivered_on, stamp, earliest=self.agreed_on, earliest_rule="delivered_before_agreed",
                             field_name="delivered_on")
        if self.ended_on is not None and delivered_on > self.ended_on:
            raise RuleViolated(f"pairing {self.id} ended on {self.ended_on.isoformat()}; nothing is delivered under "
                               "it after that", rule="pairing_ended", ended_on=self.ended_on.isoformat())
        self._contribution_delivered(delivered_on=delivered_on, kind=contribution_kind, description=description,
                                     value_yuan=value, **stamp.event_fields())

    @event("ContributionDelivered")
    def _contribution_delivered(self, *, delivered_on: date, kind: str, description: str, value_yuan: Decimal | None,
                                actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The partner delivered a contribution (money, goods, labour or training), with its value in yuan if it
        has one."""
        self.contributions.append(Contribution(delivered_on, kind, description, value_yuan))
        if self.last_delivered_on is None or delivered_on > self.last_delivered_on:
            self.last_delivered_on = delivered_on

    def end(self, *, ended_on: date, reason: str, stamp: Stamp) -> None:
        if self.ended_on is not None:
            raise RuleViolated(f"pairing {self.id} ended on {self.ended_on.isoformat()}", rule="pairing_ended",
                               ended_on=self.ended_on.isoformat())
        check_effective_date(ended_on, stamp, earliest=self.last_delivered_on or self.agreed_on,
                             earliest_rule="ended_before_last_contribution" if self.last_delivered_on
                             else "ended_before_agreed", field_name="ended_on")
        self._ended(ended_on=ended_on, reason=reason, **stamp.event_fields())

    @event("Ended")
    def _ended(self, *, ended_on: date, reason: str, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The pairing ended on ended_on, for the reason given."""
        self.ended_on = ended_on
