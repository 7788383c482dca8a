"""Request and response bodies. Field names are a contract other offices code
against: change them only by adding."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from domain.sites import Facility, OperatorType

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
AreaName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 -]{4,19}$")]
# A JSON string, never a number: the domain checks it has at most two decimals and is positive.
Money = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20),
    Field(description='yuan as a decimal string with at most two decimals, e.g. "1200.50"', examples=["1200.50"]),
]
IdNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=18)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Operator(Body):
    type: OperatorType = Field(description="village_cooperative, employer or government_entrusted")
    name: Name = Field(description="who runs the site, e.g. the cooperative's or company's name")


class SiteCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Ginkgo Community",
                    "area": "Xinqiao Street Office",
                    "address": "1 Ginkgo Road",
                    "operator": {"type": "village_cooperative", "name": "Ginkgo Village Shareholding Cooperative"},
                    "capacity": 3000,
                    "facilities": ["kindergarten", "school", "police_post", "canteen"],
                }
            ]
        }
    )
    name: Name
    area: AreaName = Field(description="the street office, town or township the site lies in")
    address: Address
    operator: Operator
    capacity: int = Field(gt=0, le=100_000, description="number of beds")
    facilities: list[Facility] = Field(default_factory=list, max_length=len(Facility))


class CapacityChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"capacity": 3200}]})
    capacity: int = Field(gt=0, le=100_000)


class FacilitiesChange(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"facilities": ["clinic", "bank"]}]})
    facilities: list[Facility] = Field(max_length=len(Facility))


class CommitteeMember(Body):
    name: Name
    role: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = "member"
    resident_id: UUID | None = None


class CommunityCommitteeCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"established_on": "2006-07-15", "members": [{"name": "Wang Fang", "role": "chair"}]}]
        }
    )
    established_on: date
    members: list[CommitteeMember] = Field(min_length=1, max_length=50)


class SiteClosure(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"closed_on": "2026-11-01", "reason": "demolished"}]})
    closed_on: date
    reason: Reason


class ResidentCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id_number": "11010519491231002X",
                    "name": "Li Wei",
                    "phone": "13800138000",
                    "hometown": "Anhui",
                    "employer": "Hengli Textiles",
                    "area": "Xinqiao Street Office",
                    "registered_on": "2026-03-01",
                }
            ]
        }
    )
    id_number: IdNumber = Field(description="18-character PRC identity number; a lowercase x is accepted")
    name: Name
    phone: Phone
    hometown: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = Field(
        description="home province"
    )
    employer: Name | None = None
    area: AreaName = Field(description="the area where the resident lives when registered")
    registered_on: date


class MoveCreate(Body):
    """Either a move into a housing site (``site_id``) or into private housing in an ``area``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"site_id": "7b558fe0-cb18-402e-8962-6585e23b9f4c", "effective_date": "2026-03-02"}]
        }
    )
    site_id: UUID | None = None
    area: AreaName | None = Field(default=None, description="for a move into private housing: the area")
    effective_date: date


class DepartureCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"effective_date": "2026-10-01", "reason": "returned to hometown"}]}
    )
    effective_date: date
    reason: Reason


class ReturnCreate(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"effective_date": "2026-11-01", "area": "Xinqiao Street Office"}]}
    )
    effective_date: date
    area: AreaName


class EmployerChange(Body):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"employer": "Hengli Textiles", "effective_date": "2026-05-01"}]}
    )
    employer: Name | None
    effective_date: date


class CommandAccepted(BaseModel):
    id: UUID
    version: int = Field(description="the aggregate's version after the command (its ETag)")
    position: int = Field(description="global event position; pass as ?after= to read your write")


class PageOut(BaseModel):
    items: list[dict[str, Any]]
    total: int
    next: str | None = Field(description="cursor for the next page, or null")


StatusFilter = Literal["in_site", "private_housing", "departed"]
