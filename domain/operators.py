"""Operators (运作主体) as records of their own: who runs which housing sites, the employees
an employer operator houses, what each operator reports it put back into its sites every
year, and the sanitation inspections of the sites it runs.

The seed's problem 4: operators run sites for profit and under-fund sanitation and
management ("注重经济效益,轻视收益返还于社区建设"). The yearly reports and inspections put that
in numbers. Government support must not differ by operator type ("不能因运作主体不同而区别对
待"): no rule here reads the type, except that only an employer links employees, which is a
fact about employment, not a difference in support.

A site is run by at most one operator at a time. The operator keeps the rule for its own
sites; across operators it is held by one ``SiteOperatorClaim`` per site (its id derived
from the site's), saved with the operator in one transaction: two operators racing for one
site write the same claim version and only one is stored.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from domain.common import ERASED, OFFICE_TZ, InvalidValue, RuleViolated, Stamp, check_effective_date, mentions
from domain.money import format_money, parse_money
from domain.residents import LegalBasis, Resident
from domain.sites import OperatorType

EARLIEST_REPORT_YEAR = 2000
MAX_SCORE = 100
REPORT_FIGURES = ("income_from_site", "reinvested_management", "reinvested_sanitation", "reinvested_facilities")


def parse_operator_type(value: str, field_name: str = "type") -> str:
    try:
        return OperatorType(value).value
    except ValueError:
        raise InvalidValue(field_name, f"unknown operator type {value!r}; allowed: "
                           + ", ".join(t.value for t in OperatorType), rule="operator_type_unknown") from None


@dataclass(frozen=True)
class YearlyReport:
    """What an operator reported for one year, in yuan: income from its sites and what it
    reinvested in management, sanitation and facilities."""

    year: int
    income_from_site: Decimal
    reinvested_management: Decimal
    reinvested_sanitation: Decimal
    reinvested_facilities: Decimal
    corrected: bool = False

    @property
    def reinvested(self) -> Decimal:
        return self.reinvested_management + self.reinvested_sanitation + self.reinvested_facilities

    @property
    def ratio(self) -> Decimal | None:
        """Reinvested over income; None when there was no income."""
        if self.income_from_site == 0:
            return None
        return (self.reinvested / self.income_from_site).quantize(Decimal("0.0001"))


def parse_report(year: int, figures: Mapping[str, str | Decimal], today: date) -> dict[str, Any]:
    """A yearly report's fields: a year that has begun, and every figure a non-negative
    amount in yuan (zero allowed: an operator may put nothing back, which is the point)."""
    if not EARLIEST_REPORT_YEAR <= year <= today.year:
        raise InvalidValue("year", f"year must lie between {EARLIEST_REPORT_YEAR} and this year ({today.year})",
                           rule="report_year_out_of_range")
    return {"year": year, **{name: parse_money(figures[name], name, allow_zero=True) for name in REPORT_FIGURES}}


@dataclass(frozen=True)
class FormerContact:
    """A contact person replaced by a later one: the key that sealed them and the day the
    next one took over (their retention runs from then)."""

    key_id: UUID
    replaced_on: date


@dataclass(frozen=True)
class RunSite:
    site_id: UUID
    site_area: str
    assigned_on: date
    last_inspected_on: date | None = None  # the latest inspection recorded of the site while run


class Operator(Aggregate):
    """An operator of housing sites: a village cooperative, an employer whose workers live
    there, or a street/town office entrusted by the government."""

    @classmethod
    def register(cls, *, operator_type: str, name: str, contact: str, area: str, stamp: Stamp) -> Operator:
        if not name.strip():
            raise InvalidValue("name", "give the operator's name", rule="operator_name_missing")
        operator: Operator = cls(operator_type=parse_operator_type(operator_type), name=name.strip(),
                                 contact=contact, area=area, **stamp.event_fields())
        return operator

    @event("Registered")
    def __init__(self, *, operator_type: str, name: str, contact: str, area: str, actor_id: str, actor_role: str,
                 recorded_at: datetime) -> None:
        """An operator (运作主体) was registered: its type, name, contact person and area."""
        self.operator_type = operator_type
        self.name = name
        self.contact = contact
        self.area = area
        self.sites: dict[str, RunSite] = {}  # site id (hex) -> since when it runs it
        self.employees: dict[str, date] = {}  # resident id (hex) -> linked on
        self.reports: dict[int, YearlyReport] = {}
        self.inspections = 0
        # The keys that sealed the contacts recorded after registration (the first is sealed
        # under the operator's own id): an erasure destroys them all.
        self.contact_keys: list[UUID] = []
        self.contact_erased_on: str | None = None
        self.former_contacts: list[FormerContact] = []  # replaced, not erased yet

    # -- queries ------------------------------------------------------------
    @property
    def contact_key(self) -> UUID:
        """The key that sealed the current contact."""
        return self.contact_keys[-1] if self.contact_keys else self.id

    def runs(self, site_id: UUID) -> bool:
        return site_id.hex in self.sites

    # -- guards -------------------------------------------------------------
    def check_runs(self, site_id: UUID, field_name: str = "site_id") -> RunSite:
        run = self.sites.get(site_id.hex)
        if run is None:
            raise RuleViolated(f"operator {self.id} does not run housing site {site_id}",
                               rule="site_not_run_by_operator", site_id=str(site_id))
        return run

    # -- the contact person (personal data) ---------------------------------
    def change_contact(self, *, contact: str, changed_on: date, stamp: Stamp) -> None:
        """A new contact person (or new way to reach them) from changed_on. Each contact is
        sealed under a key of its own, so an erasure of an earlier one leaves room for the next."""
        if not contact.strip():
            raise InvalidValue("contact", "give the contact person and how to reach them", rule="contact_missing")
        check_effective_date(changed_on, stamp, field_name="changed_on")
        self._contact_changed(contact=contact.strip(), contact_key_id=uuid4(), changed_on=changed_on,
                              **stamp.event_fields())

    @event("ContactChanged")
    def _contact_changed(self, *, contact: str, contact_key_id: UUID, changed_on: date, actor_id: str,
                         actor_role: str, recorded_at: datetime) -> None:
        """The operator's contact person (or how to reach them) changed from changed_on."""
        if self.contact_erased_on is None:  # an erased one has no key left to keep
            self.former_contacts.append(FormerContact(key_id=self.contact_key, replaced_on=changed_on))
        self.contact = contact
        self.contact_keys.append(contact_key_id)
        self.contact_erased_on = None

    def erase_contact(self, *, legal_basis: str, note: str, stamp: Stamp) -> list[UUID]:
        """Erase the contact person's personal data (PIPL Art. 47): the keys of every contact
        recorded so far, returned for the application to destroy with the event."""
        try:
            basis = LegalBasis(legal_basis)
        except ValueError:
            raise InvalidValue("legal_basis", f"unknown legal basis {legal_basis!r}; one of: "
                               + ", ".join(b.value for b in LegalBasis), rule="legal_basis") from None
        if self.contact_erased_on is not None:
            raise RuleViolated(f"operator {self.id}'s contact was erased on {self.contact_erased_on}",
                               rule="already_erased")
        # The note outlives the erasure (found by a review: it spelled out the name and phone it
        # erased): not the contact, nor a word or a phone number of it.
        contact = "" if self.contact == ERASED else str(self.contact or "")
        digits = re.findall(r"\d{7,}", contact)
        if mentions(note, [contact, *contact.split()]) or any(
                run in "".join(c for c in note if c.isdigit()) for run in digits):
            raise InvalidValue("note", "the note must not name the contact person or their phone number: it "
                               "outlives the erasure", rule="note_names_the_contact")
        keys = [self.id, *self.contact_keys]
        self._contact_erased(legal_basis=basis.value, note=note, **stamp.event_fields())
        return keys

    @event("ContactErased")
    def _contact_erased(self, *, legal_basis: str, note: str, actor_id: str, actor_role: str,
                        recorded_at: datetime) -> None:
        """The contact person's personal data was erased: the keys that sealed it destroyed, the rest kept."""
        self.contact = ERASED
        self.contact_erased_on = recorded_at.astimezone(OFFICE_TZ).date().isoformat()  # the office's day
        self.former_contacts = []

    # -- retention: former contact persons ------------------------------------
    def former_contacts_due(self, replaced_before: date) -> list[FormerContact]:
        """The former contact persons replaced before ``replaced_before`` and not erased."""
        return [c for c in self.former_contacts if c.replaced_on < replaced_before]

    def erase_former_contacts(self, *, replaced_before: date, stamp: Stamp) -> list[UUID]:
        """Retention: erase the former contact persons replaced before ``replaced_before``
        (the current one stays); returns the keys for the application to destroy with the event."""
        due = self.former_contacts_due(replaced_before)
        if not due:
            raise RuleViolated(f"operator {self.id} has no former contact replaced before "
                               f"{replaced_before.isoformat()}", rule="nothing_to_erase")
        keys = [c.key_id for c in due]
        self._former_contacts_erased(key_ids=keys, replaced_before=replaced_before,
                                     legal_basis=LegalBasis.RETENTION_EXPIRED.value, **stamp.event_fields())
        return keys

    @event("FormerContactsErased")
    def _former_contacts_erased(self, *, key_ids: list[UUID], replaced_before: date, legal_basis: str,
                                actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """Former contact persons, replaced before replaced_before, were erased when their
        retention ended: the keys that sealed them destroyed; the current contact kept."""
        gone = set(key_ids)
        self.former_contacts = [c for c in self.former_contacts if c.key_id not in gone]

    # -- sites --------------------------------------------------------------
    def assign_site(self, claim: SiteOperatorClaim | None, *, site_id: UUID, site_area: str, assigned_on: date,
                    stamp: Stamp) -> SiteOperatorClaim:
        """Start running a site. ``claim`` is the site's claim if it exists; the returned
        claim (new or taken) must be saved with the operator."""
        check_effective_date(assigned_on, stamp, field_name="assigned_on")
        if self.runs(site_id):
            raise RuleViolated(f"operator {self.id} already runs housing site {site_id}",
                               rule="site_already_assigned", site_id=str(site_id))
        if claim is None:
            claim = SiteOperatorClaim.claim(site_id=site_id, operator_id=self.id, stamp=stamp)
        else:
            claim.take(self.id, stamp)
        self._site_assigned(site_id=site_id, site_area=site_area, assigned_on=assigned_on, **stamp.event_fields())
        return claim

    @event("SiteAssigned")
    def _site_assigned(self, *, site_id: UUID, site_area: str, assigned_on: date, actor_id: str, actor_role: str,
                       recorded_at: datetime) -> None:
        """The operator took over running a housing site from assigned_on."""
        self.sites[site_id.hex] = RunSite(site_id=site_id, site_area=site_area, assigned_on=assigned_on)

    def release_site(self, claim: SiteOperatorClaim, *, site_id: UUID, released_on: date, reason: str,
                     stamp: Stamp) -> None:
        run = self.check_runs(site_id)
        check_effective_date(released_on, stamp, earliest=run.assigned_on, earliest_rule="released_before_assigned",
                             field_name="released_on")
        if run.last_inspected_on is not None:  # found by a review: an inspection fell after the release
            check_effective_date(released_on, stamp, earliest=run.last_inspected_on,
                                 earliest_rule="released_before_last_inspection", field_name="released_on")
        claim.release(self.id, stamp)
        self._site_released(site_id=site_id, released_on=released_on, reason=reason, **stamp.event_fields())

    @event("SiteReleased")
    def _site_released(self, *, site_id: UUID, released_on: date, reason: str, actor_id: str, actor_role: str,
                       recorded_at: datetime) -> None:
        """The operator stopped running a housing site on released_on, for the reason given."""
        self.sites.pop(site_id.hex, None)

    # -- employees ----------------------------------------------------------
    def link_employee(self, *, resident: Resident, linked_on: date, stamp: Stamp) -> None:
        """An employer operator houses its own workers: only it links employees (a fact
        about employment; support never depends on it). The resident is on the register on
        ``linked_on``, in the district that day, and not erased (found by a review: an erased
        resident, and a link dated years before their registration, were taken)."""
        resident_id = resident.id
        if self.operator_type != OperatorType.EMPLOYER:
            raise RuleViolated(f"operator {self.id} is a {self.operator_type}; only an employer operator has "
                               "employees", rule="employees_only_for_employer_operator",
                               operator_type=self.operator_type)
        resident.check_not_erased()
        check_effective_date(linked_on, stamp, earliest=resident.registered_on, field_name="linked_on")
        resident.check_present_on(linked_on, "linked_on")
        if resident_id.hex in self.employees:
            raise RuleViolated(f"resident {resident_id} is already linked to operator {self.id} as an employee",
                               rule="employee_already_linked", resident_id=str(resident_id))
        self._employee_linked(resident_id=resident_id, linked_on=linked_on, **stamp.event_fields())

    @event("EmployeeLinked")
    def _employee_linked(self, *, resident_id: UUID, linked_on: date, actor_id: str, actor_role: str,
                         recorded_at: datetime) -> None:
        """A resident was linked to the employer operator as its employee from linked_on."""
        self.employees[resident_id.hex] = linked_on

    def unlink_employee(self, *, resident_id: UUID, unlinked_on: date, stamp: Stamp) -> None:
        linked_on = self.employees.get(resident_id.hex)
        if linked_on is None:
            raise RuleViolated(f"resident {resident_id} is not an employee of operator {self.id}",
                               rule="employee_not_linked", resident_id=str(resident_id))
        check_effective_date(unlinked_on, stamp, earliest=linked_on, earliest_rule="unlinked_before_linked",
                             field_name="unlinked_on")
        self._employee_unlinked(resident_id=resident_id, unlinked_on=unlinked_on, **stamp.event_fields())

    @event("EmployeeUnlinked")
    def _employee_unlinked(self, *, resident_id: UUID, unlinked_on: date, actor_id: str, actor_role: str,
                           recorded_at: datetime) -> None:
        """A resident stopped being the employer operator's employee on unlinked_on."""
        self.employees.pop(resident_id.hex, None)

    # -- yearly reports -----------------------------------------------------
    def file_report(self, *, year: int, figures: Mapping[str, str | Decimal], stamp: Stamp) -> None:
        """One report per year; a changed figure is a correction (``correct_report``),
        so the figure first filed stays in the history."""
        fields = parse_report(year, figures, stamp.today)
        if year in self.reports:
            raise RuleViolated(f"operator {self.id} has filed its report for {year}; correct it instead",
                               rule="report_already_filed", year=year)
        self._yearly_report_filed(**fields, **stamp.event_fields())

    @event("YearlyReportFiled")
    def _yearly_report_filed(self, *, year: int, income_from_site: Decimal, reinvested_management: Decimal,
                             reinvested_sanitation: Decimal, reinvested_facilities: Decimal, actor_id: str,
                             actor_role: str, recorded_at: datetime) -> None:
        """The operator's report for a year: income from its sites, and what it reinvested in management,
        sanitation and facilities (yuan)."""
        self.reports[year] = YearlyReport(year, income_from_site, reinvested_management, reinvested_sanitation,
                                          reinvested_facilities)

    def correct_report(self, *, year: int, figures: Mapping[str, str | Decimal], reason: str, stamp: Stamp) -> None:
        fields = parse_report(year, figures, stamp.today)
        filed = self.reports.get(year)
        if filed is None:
            raise RuleViolated(f"operator {self.id} has no report for {year} to correct; file it",
                               rule="report_not_filed", year=year)
        if all(getattr(filed, name) == fields[name] for name in REPORT_FIGURES):
            return  # the same figures: nothing to correct
        self._yearly_report_corrected(**fields, reason=reason, **stamp.event_fields())

    @event("YearlyReportCorrected")
    def _yearly_report_corrected(self, *, year: int, income_from_site: Decimal, reinvested_management: Decimal,
                                 reinvested_sanitation: Decimal, reinvested_facilities: Decimal, reason: str,
                                 actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A filed yearly report was corrected: the whole new figures, and why."""
        self.reports[year] = YearlyReport(year, income_from_site, reinvested_management, reinvested_sanitation,
                                          reinvested_facilities, corrected=True)

    # -- sanitation ---------------------------------------------------------
    def record_inspection(self, *, site_id: UUID, inspected_on: date, score: int, findings: str,
                          stamp: Stamp) -> None:
        """A sanitation inspection of a site the operator runs, on or after the day it took it over."""
        run = self.check_runs(site_id)
        if not 0 <= score <= MAX_SCORE:
            raise InvalidValue("score", f"score must lie between 0 and {MAX_SCORE}", rule="score_out_of_range")
        check_effective_date(inspected_on, stamp, earliest=run.assigned_on,
                             earliest_rule="inspected_before_assigned", field_name="inspected_on")
        self._sanitation_inspected(site_id=site_id, site_area=run.site_area, inspected_on=inspected_on, score=score,
                                   findings=findings, **stamp.event_fields())

    @event("SanitationInspected")
    def _sanitation_inspected(self, *, site_id: UUID, site_area: str, inspected_on: date, score: int, findings: str,
                              actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A site the operator runs was inspected for sanitation: date, score out of 100, findings."""
        self.inspections += 1
        run = self.sites.get(site_id.hex)
        if run is not None and (run.last_inspected_on is None or inspected_on > run.last_inspected_on):
            self.sites[site_id.hex] = dataclasses.replace(run, last_inspected_on=inspected_on)


def report_document(report: YearlyReport) -> dict[str, Any]:
    ratio = report.ratio
    return {"year": report.year, **{name: format_money(getattr(report, name)) for name in REPORT_FIGURES},
            "reinvested": format_money(report.reinvested), "corrected": report.corrected,
            "reinvestment_ratio": None if ratio is None else str(ratio)}


_SITE_CLAIM_NAMESPACE = uuid5(NAMESPACE_URL, "urn:liudong:site-operator")


def site_claim_id(site_id: UUID) -> UUID:
    """The id of a site's claim: derived from the site's, so every operator asking for the
    site writes the same aggregate."""
    return uuid5(_SITE_CLAIM_NAMESPACE, site_id.hex)


class SiteOperatorClaim(Aggregate):
    """Which operator runs a site now (None: nobody). One per site; an operator takes it
    when it is assigned the site and gives it back when it releases it, in the same save,
    so two operators cannot both run one site."""

    @classmethod
    def claim(cls, *, site_id: UUID, operator_id: UUID, stamp: Stamp) -> SiteOperatorClaim:
        claim: SiteOperatorClaim = cls._create(cls.Claimed, id=site_claim_id(site_id),  # type: ignore[attr-defined]
                                               site_id=site_id, operator_id=operator_id, **stamp.event_fields())
        return claim

    @event("Claimed")
    def __init__(self, *, site_id: UUID, operator_id: UUID, actor_id: str, actor_role: str,
                 recorded_at: datetime) -> None:
        """A housing site was first assigned to an operator (the site's claim was made)."""
        self.site_id = site_id
        self.operator_id: UUID | None = operator_id

    def check_free_for(self, operator_id: UUID) -> None:
        if self.operator_id is not None and self.operator_id != operator_id:
            raise RuleViolated(f"housing site {self.site_id} is run by operator {self.operator_id}; it must be "
                               "released first", rule="site_run_by_another_operator",
                               operator_id=str(self.operator_id))

    def take(self, operator_id: UUID, stamp: Stamp) -> None:
        self.check_free_for(operator_id)
        self._taken(operator_id=operator_id, **stamp.event_fields())

    @event("Taken")
    def _taken(self, *, operator_id: UUID, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """A released housing site was assigned to an operator again."""
        self.operator_id = operator_id

    def release(self, operator_id: UUID, stamp: Stamp) -> None:
        if self.operator_id != operator_id:
            raise RuleViolated(f"housing site {self.site_id} is not run by operator {operator_id}",
                               rule="site_not_run_by_operator", site_id=str(self.site_id))
        self._released(operator_id=operator_id, **stamp.event_fields())

    @event("Released")
    def _released(self, *, operator_id: UUID, actor_id: str, actor_role: str, recorded_at: datetime) -> None:
        """The operator running a housing site released it: nobody runs it now."""
        self.operator_id = None
