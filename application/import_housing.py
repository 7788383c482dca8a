"""Bulk import of housing sites and of residents' moves from CSV, by the same domain rules
as the API, many aggregates per transaction, with a report of the refused rows.

Sites (``liudong import sites``): ``code, name, area, address, operator_type,
operator_name, capacity`` and optionally ``facilities`` (``;`` between them). ``code`` is the
office's own code for the site; the site's id is derived from it, so a second run finds the
sites it registered and stores nothing.

Moves (``liudong import moves``): ``id_number, kind, effective_date`` and, by kind,
``site_code`` (``into_site``: the code of a site imported before), ``area``
(``private_housing``, ``returned``) and ``reason`` (``departed``); a ``private_housing`` row may
give ``housing_kind`` (``rented``, ``employer_dormitory``, ``other``: the default) with
``address`` and ``landlord`` (a rented room needs one). The resident is found by
identity number. Rows of one resident are applied in the file's order. Each stored row leaves
a keyed hash of its content in ``import_rows`` in the same transaction, so a second run (or
the same move in another file) stores nothing.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, RecordConflictError

from application.commands.active_members import active_member_of
from application.heap import fewer_collections
from application.imports import (
    ImportReport,
    Refusal,
    Text,
    check_shape,
    check_text,
    existing_ids,
    holders_by_number,
    load_many,
    parse_date,
    refusal,
)
from application.store import OfficeApplication
from domain.active_members import ActiveMember
from domain.committees import ManagementCommittee
from domain.common import DomainError, InvalidValue, RuleViolated, Stamp
from domain.identity import IdentityNumber
from domain.residents import Resident
from domain.sites import HousingSite

SITE_COLUMNS = ("code", "name", "area", "address", "operator_type", "operator_name", "capacity")
SITE_OPTIONAL = ("facilities",)
MOVE_COLUMNS = ("id_number", "kind", "effective_date")
MOVE_OPTIONAL = ("site_code", "area", "reason", "housing_kind", "address", "landlord")
MOVE_KINDS = ("into_site", "private_housing", "departed", "returned")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MAX_CAPACITY = 100_000  # the API's limit (api/schemas.SiteCreate)
SAVE_ATTEMPTS = 5  # a batch that loses a race with another writer is decided again on fresh state
_SITE_NAMESPACE = uuid5(NAMESPACE_URL, "urn:liudong:site-code")
# The API's text fields these columns fill (application.imports.Text): SiteCreate's name, area
# and address and its operator's name; MoveCreate's and ReturnCreate's area, DepartureCreate's
# reason and HousingIn's address and landlord (which may hold line breaks there); the identity
# number as ResidentCreate's. The other columns are codes, kinds and dates, checked as such.
SITE_TEXT = {"name": Text(100), "area": Text(64), "address": Text(200), "operator_name": Text(100)}
MOVE_TEXT = {"id_number": Text(18), "area": Text(64), "reason": Text(500, one_line=False),
             "address": Text(200, one_line=False), "landlord": Text(100, one_line=False)}
OWN_TEXT = {"operator_type": Text(64), "effective_date": Text(10), "housing_kind": Text(32)}  # not free text


def site_id_for(code: str) -> UUID:
    """The id of the site an import file names by ``code``."""
    return uuid5(_SITE_NAMESPACE, code.strip().upper())


def _site_code(value: str, column: str) -> str:
    if not value:
        raise InvalidValue(column, f"{column} is empty", rule="required")
    if not CODE.match(value):
        raise InvalidValue(column, f"{column} {value[:40]!r}: letters, digits, '_', '.', '-', at most 32",
                           rule="site_code")
    return value.upper()


# -- sites ----------------------------------------------------------------------------------
def _decide_site(app: OfficeApplication, row: dict[str, str], stamp: Stamp) -> HousingSite:
    check_shape(row)
    code = _site_code(row.get("code", ""), "code")
    name = check_text(row, "name", SITE_TEXT["name"])
    address = check_text(row, "address", SITE_TEXT["address"])
    operator_name = check_text(row, "operator_name", SITE_TEXT["operator_name"])
    check_text(row, "operator_type", OWN_TEXT["operator_type"])
    check_text(row, "area", SITE_TEXT["area"])
    try:
        capacity = int(row.get("capacity", ""))
    except ValueError:
        raise InvalidValue("capacity", f"capacity {row.get('capacity', '')[:20]!r} is not a whole number",
                           rule="int_parsing") from None
    if capacity > MAX_CAPACITY:
        raise InvalidValue("capacity", f"capacity is at most {MAX_CAPACITY}", rule="less_than_equal")
    facilities = [f.strip() for f in row.get("facilities", "").split(";") if f.strip()]
    return HousingSite.register(
        name=name, area=app.place(row["area"]), address=address, operator_type=row["operator_type"],
        operator_name=operator_name, capacity=capacity, facilities=facilities, stamp=stamp,
        site_id=site_id_for(code))


@fewer_collections()
def import_sites(app: OfficeApplication, rows: Iterable[tuple[int, dict[str, str]]], stamp: Stamp, *,
                 batch_size: int = 500, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Register the sites of ``rows``; see the module's docstring."""
    report = ImportReport()
    started = time.monotonic()
    seen: set[UUID] = set()
    for batch in _batches(rows, batch_size):
        report.rows += len(batch)
        decided: list[HousingSite] = []
        for line, row in batch:
            try:
                site = _decide_site(app, row, stamp)
            except DomainError as error:
                report.refused.append(_refusal(line, error))
                continue
            if site.id in seen:
                report.refused.append(Refusal(line, "code", "site_code_repeated",
                                              "this code appears on an earlier line of the file"))
                continue
            seen.add(site.id)
            decided.append(site)
        existing = existing_ids(app, [s.id for s in decided])
        fresh = [s for s in decided if s.id not in existing]
        report.already += len(decided) - len(fresh)
        if fresh:
            try:
                app.save(*fresh)
                report.stored += len(fresh)
            except (IntegrityError, RecordConflictError):  # one registered meanwhile: one by one
                for site in fresh:
                    try:
                        app.save(site)
                        report.stored += 1
                    except (IntegrityError, RecordConflictError):
                        report.already += 1
        if progress is not None:
            progress(len(batch))
    report.seconds = time.monotonic() - started
    return report


# -- moves ----------------------------------------------------------------------------------
@dataclass
class _Move:
    line: int
    number: str
    kind: str
    effective_date: date
    site_id: UUID | None
    area: str | None
    reason: str
    mark: str
    resident_id: UUID | None = None
    housing: tuple[str, str | None, str | None] = ("other", None, None)


def _parse_move(app: OfficeApplication, line: int, row: dict[str, str]) -> _Move:
    check_shape(row)
    kind = row.get("kind", "")
    if kind not in MOVE_KINDS:
        raise InvalidValue("kind", f"kind {kind[:30]!r} is not one of {', '.join(MOVE_KINDS)}", rule="move_kind")
    number = IdentityNumber.parse(check_text(row, "id_number", MOVE_TEXT["id_number"])).value
    effective = parse_date(check_text(row, "effective_date", OWN_TEXT["effective_date"]), "effective_date")
    site_id = area = None
    code = ""
    if kind == "into_site":
        code = _site_code(row.get("site_code", ""), "site_code")
        site_id = site_id_for(code)
    if kind in ("private_housing", "returned"):
        area = app.place(check_text(row, "area", MOVE_TEXT["area"]))
    reason = check_text(row, "reason", MOVE_TEXT["reason"], required=False) or "recorded by import"
    housing: tuple[str, str | None, str | None] = ("other", None, None)
    if kind == "private_housing":
        housing = (check_text(row, "housing_kind", OWN_TEXT["housing_kind"], required=False) or "other",
                   check_text(row, "address", MOVE_TEXT["address"], required=False) or None,
                   check_text(row, "landlord", MOVE_TEXT["landlord"], required=False) or None)
    # Where a rented room is (its address, its landlord) is part of the move: two rooms on one
    # day are two moves. A row naming neither keeps the content it always had, so files stored
    # before are still found.
    where = [json.dumps(housing[1:], ensure_ascii=False)] if housing[1] or housing[2] else []
    content = "|".join([number, kind, effective.isoformat(), code, area or "", reason if kind == "departed" else "",
                        *(h or "" for h in housing[:1] if h != "other"), *where])
    mark = app.vault.blind("import-row", content).hex()
    return _Move(line, number, kind, effective, site_id, area, reason, mark, housing=housing)


class _Sites:
    """The sites a run has loaded, kept between batches (a site holds every occupant, so
    loading it again for each batch would cost more than the batch). A batch that loses a
    race to another writer drops them and loads them fresh."""

    def __init__(self, app: OfficeApplication) -> None:
        self.app = app
        self.loaded: dict[UUID, Aggregate] = {}

    def need(self, ids: Iterable[UUID]) -> None:
        missing = {i for i in ids if i not in self.loaded}
        self.loaded.update(load_many(self.app, missing))

    def get(self, site_id: UUID) -> HousingSite | None:
        site = self.loaded.get(site_id)
        return site if isinstance(site, HousingSite) else None


@fewer_collections()
def import_moves(app: OfficeApplication, rows: Iterable[tuple[int, dict[str, str]]], stamp: Stamp, *,
                 batch_size: int = 500, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Record the moves of ``rows``; see the module's docstring."""
    report = ImportReport()
    started = time.monotonic()
    with app.snapshots_deferred() as touched:
        _import_moves(app, rows, stamp, batch_size, progress, report, touched)
    report.refused.sort(key=lambda r: r.line)
    report.seconds = time.monotonic() - started
    return report


def _import_moves(app: OfficeApplication, rows: Iterable[tuple[int, dict[str, str]]], stamp: Stamp,
                  batch_size: int, progress: Callable[[int], None] | None, report: ImportReport,
                  touched: set[UUID]) -> None:
    sites = _Sites(app)
    marks_seen: set[str] = set()
    for batch in _batches(rows, batch_size):
        report.rows += len(batch)
        moves: list[_Move] = []
        for line, row in batch:
            try:
                move = _parse_move(app, line, row)
            except DomainError as error:
                report.refused.append(_refusal(line, error))
                continue
            if move.mark in marks_seen:
                report.refused.append(Refusal(line, "", "row_repeated", "the same move is on an earlier line"))
                continue
            marks_seen.add(move.mark)
            moves.append(move)
        for attempt in range(SAVE_ATTEMPTS):
            try:
                stored, already, refused = _moves_batch(app, moves, stamp, sites, touched)
            except (IntegrityError, RecordConflictError):
                sites.loaded.clear()  # another writer moved someone meanwhile: decide on fresh state
                if attempt + 1 == SAVE_ATTEMPTS:
                    raise
                continue
            report.stored += stored
            report.already += already
            report.refused.extend(refused)
            break
        if progress is not None:
            progress(len(batch))


def _moves_batch(app: OfficeApplication, moves: list[_Move], stamp: Stamp, sites: _Sites,
                 touched: set[UUID]) -> tuple[int, int, list[Refusal]]:
    """Decide and store one batch in one transaction; (stored, already, refused). The
    sites it changed join ``touched``, to be snapshotted once at the end of the import."""
    done = _marked(app, [m.mark for m in moves])
    todo = [m for m in moves if m.mark not in done]
    already = len(moves) - len(todo)
    refused: list[Refusal] = []
    claims = holders_by_number(app, {m.number for m in todo})
    for move in todo:
        move.resident_id = claims.get(move.number)
    residents = load_many(app, {m.resident_id for m in todo if m.resident_id is not None})
    sites.need({m.site_id for m in todo if m.site_id is not None}
               | {r.site_id for r in residents.values() if isinstance(r, Resident) and r.site_id is not None})
    changed: dict[UUID, Aggregate] = {}
    marks: list[str] = []
    others = _Others(app)
    for move in todo:
        resident = residents.get(move.resident_id) if move.resident_id is not None else None
        if not isinstance(resident, Resident) or resident.erased_on is not None:  # an erased record knows no number
            refused.append(Refusal(move.line, "id_number", "resident_unknown",
                                   "no resident is registered with this identity number"))
            continue
        try:
            acted_on = _apply_move(resident, move, stamp, sites, others)
        except DomainError as error:
            refused.append(_refusal(move.line, error))
            continue
        for aggregate in acted_on:
            changed[aggregate.id] = aggregate
        marks.append(move.mark)
    if changed:
        try:
            app.save(*changed.values(), side_effects=[
                ("INSERT INTO import_rows (key) SELECT unnest(%b::text[])", (marks,))])
        except BaseException:
            for aggregate_id in changed:  # their pending events were not stored
                sites.loaded.pop(aggregate_id, None)
            raise
        touched.update(i for i, a in changed.items() if isinstance(a, HousingSite))
    return len(marks), already, refused


def _apply_move(resident: Resident, move: _Move, stamp: Stamp, sites: _Sites, others: _Others) -> list[Aggregate]:
    """The domain's own command for the row; the aggregates it changed. A refusal leaves
    every aggregate as it was (the domain checks before it changes anything). A departure or
    a return changes the resident's committee seats too, and a departure loses an active
    member, in the same transaction, as ``record_departure`` and ``record_return`` do."""
    previous = sites.get(resident.site_id) if resident.site_id is not None else None
    if move.kind == "into_site":
        assert move.site_id is not None
        site = sites.get(move.site_id)
        if site is None:
            raise InvalidValue("site_code", "no housing site has this code (import the sites first)",
                               rule="site_unknown")
        resident.move_into_site(site, move.effective_date, stamp, previous_site=previous)
        return [a for a in (resident, site, previous) if a is not None]
    if move.kind == "private_housing":
        assert move.area is not None
        kind, address, landlord = move.housing
        resident.move_to_private_housing(area=move.area, effective_date=move.effective_date, stamp=stamp,
                                         previous_site=previous, housing_kind=kind, address=address,
                                         landlord=landlord)
    elif move.kind == "departed":
        seats = others.seats(resident)
        member = others.active_member(resident.id)
        # The resident changes first and a committee or the member may still refuse: a refusal
        # puts every one of them back as it was (found by a review: a departure reported refused
        # was stored with a later row of the batch, and the resident was freed from their site).
        with _undone_on_refusal(resident, previous, member, *(c for c, _ in seats)):
            resident.depart(effective_date=move.effective_date, reason=move.reason, stamp=stamp,
                            previous_site=previous)
            for committee, member_id in seats:
                committee.vacate_seat(member_id=member_id, vacated_on=move.effective_date,
                                      reason="departed the district", stamp=stamp)
            lost = member is not None and member.lose_by_departure(departed_on=move.effective_date, stamp=stamp)
        return [a for a in (resident, previous, member if lost else None, *(c for c, _ in seats)) if a is not None]
    else:
        assert move.area is not None
        seats = others.seats(resident)
        with _undone_on_refusal(resident, *(c for c, _ in seats)):
            resident.return_to_district(area=move.area, effective_date=move.effective_date, stamp=stamp)
            for committee, member_id in seats:
                committee.resume_seat(member_id=member_id, resumed_on=move.effective_date, stamp=stamp)
        return [resident, *(c for c, _ in seats)]
    return [a for a in (resident, previous) if a is not None]


@contextlib.contextmanager
def _undone_on_refusal(*aggregates: Aggregate | None) -> Iterator[None]:
    """Aggregates a command changes one after another: if a later one refuses, each is put back
    as it was before (its state and its pending events), so the batch saves nothing of it."""
    kept = [(a, copy.deepcopy(a)) for a in aggregates if a is not None]
    try:
        yield
    except DomainError:
        for aggregate, before in kept:
            aggregate.__dict__.clear()
            aggregate.__dict__.update(before.__dict__)
        raise


class _Others:
    """The committees and active-member records a batch's departures and returns change,
    each read once per batch (two residents of one committee change the same aggregate)."""

    def __init__(self, app: OfficeApplication) -> None:
        self.app = app
        self.committees: dict[UUID, ManagementCommittee] = {}
        self.members: dict[UUID, ActiveMember | None] = {}

    def seats(self, resident: Resident) -> list[tuple[ManagementCommittee, str]]:
        """The committees the resident sits on, with their member id there (a seat the
        committee no longer lists is left to the committees' sweep)."""
        found = []
        for committee_id, member_id in resident.committee_seats.items():
            key = UUID(committee_id)
            if key not in self.committees:
                committee: Aggregate = self.app.repository.get(key)
                assert isinstance(committee, ManagementCommittee)
                self.committees[key] = committee
            if member_id in self.committees[key].members:
                found.append((self.committees[key], member_id))
        return found

    def active_member(self, resident_id: UUID) -> ActiveMember | None:
        if resident_id not in self.members:
            self.members[resident_id] = active_member_of(self.app, resident_id)
        return self.members[resident_id]


def _marked(app: OfficeApplication, marks: list[str]) -> set[str]:
    if not marks:
        return set()
    with app.connection() as conn:
        rows = conn.execute("SELECT key FROM import_rows WHERE key = ANY(%s)", (marks,)).fetchall()
    return {r["key"] for r in rows}


def _batches(rows: Iterable[tuple[int, dict[str, str]]],
             size: int) -> Iterable[list[tuple[int, dict[str, str]]]]:
    batch: list[tuple[int, dict[str, str]]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _refusal(line: int, error: DomainError) -> Refusal:
    dated = isinstance(error, RuleViolated) and "effective_date" in error.rule
    return refusal(line, error, field="effective_date" if dated else "")
