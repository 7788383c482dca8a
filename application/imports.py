"""Bulk import of residents from CSV: every row checked by the same domain rules as a
registration through the API, the good rows stored as the same events, many residents per
transaction, and a report of the refused rows with the field and rule each broke.

Re-running an import is safe: a row whose identity number is registered already (by an
earlier run, or by a caseworker) is counted as already there and stores nothing. A number
that appears twice in one file is refused on its second line. A number whose holder's
personal data was erased is refused (``identity_erased``): ``POST /residents`` takes such a
number as free and registers a new record, a deliberate act of a caseworker who met the person;
a file cannot tell a person who came back from the old row of one who asked to be forgotten,
so re-running it must not store their data again.

Columns (a header line first, UTF-8): ``id_number, name, phone, hometown, employer, area,
registered_on`` and optionally ``household_relation``; ``employer`` and
``household_relation`` may be empty.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent
from psycopg.rows import tuple_row

from application.heap import fewer_collections
from application.store import EVENTS_TABLE, OfficeApplication
from domain.common import ERASED, FIRST_YEAR, ISO_DAY, LAST_YEAR, DomainError, InvalidValue, Stamp, iso_day
from domain.identity import IdentityNumber
from domain.residents import HouseholdRelation, IdentityNumberClaim, Resident, legacy_claim_id

RESIDENT_COLUMNS = ("id_number", "name", "phone", "hometown", "employer", "area", "registered_on")
OPTIONAL_COLUMNS = ("household_relation",)
REPORT_COLUMNS = ("line", "field", "rule", "message")
IDENTITY_ERASED = ("this person's personal data was erased; the import does not store it again (register them"
                   " through the API if they came back)")
PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")  # as the API's Phone
# How the API checks text (api/schemas.py, which this layer may not import): the characters no
# field takes (tabs and line breaks it does), and per field its longest length and whether it
# must be one line. The imports apply the same, field by field, so a row is refused for what a
# request would be and only for that; tests/test_import.py compares these with the API's bodies
# so that they cannot drift apart. Rule names: string_too_long and string_pattern_mismatch as
# the API's; where the API says value_error (with its message), the import says
# control_characters or line_breaks; an empty required column is "required" (the API:
# string_too_short, or missing).
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
LINE_BREAKS = re.compile(r"[\t\n\r]")


@dataclass(frozen=True)
class Text:
    """A text column as the API's body takes the same field: at most ``longest`` characters
    (after surrounding spaces are stripped, as the API strips them), one line or not."""

    longest: int
    one_line: bool = True


# ResidentCreate's fields (api/schemas.py); a hometown may hold a tab or a line break there.
RESIDENT_TEXT = {"id_number": Text(18), "name": Text(100), "hometown": Text(64, one_line=False),
                 "employer": Text(100), "area": Text(64)}


@dataclass(frozen=True)
class Refusal:
    line: int
    field: str  # the CSV column
    rule: str
    message: str


# The API's field paths that a column fills under another name: a refusal names the column.
COLUMN_OF = {"housing.kind": "housing_kind", "housing.address": "address", "housing.landlord": "landlord",
             "operator.type": "operator_type", "operator.name": "operator_name", "site_id": "site_code"}
# Columns of personal data. A refusal of one names the column and the rule, never the value: the
# report is a file left beside the CSV and an upload's refusals are kept (import_jobs) and shown
# (found by a review: "phone '1370013700x' is not a phone number"). The import's own checks of
# text say no value; the domain's messages may, so for these columns they are said anew.
PERSONAL_COLUMNS = frozenset({"id_number", "name", "phone", "hometown", "employer", "household_relation",
                              "address", "landlord", "reason"})
_VALUE_FREE_RULES = frozenset({"required", "string_too_long", "control_characters", "line_breaks",
                               "string_pattern_mismatch", "identity_number_repeated", "identity_erased",
                               "resident_unknown"})  # messages written in this module and import_housing
_SAID_WITHOUT_VALUE = {
    "id_number_length": "the identity number does not have 18 characters",
    "id_number_format": "the identity number is not 17 digits followed by a digit or X",
    "id_number_area_code": "the identity number's first two digits name no province (11 to 82)",
    "id_number_birth_date": "the identity number holds an impossible birth date, or one in the future",
    "id_number_checksum": "the identity number's check character (the last) does not match the others",
    "household_relation": "household_relation is not one of: " + ", ".join(r.value for r in HouseholdRelation),
    "rented_housing_unidentified": "rented housing is recorded with its landlord or its address",
}


def refusal(line: int, error: DomainError, *, field: str = "") -> Refusal:
    """The report's row for a refused line: the CSV column (not the API's field path; ``field``
    when the error names none), the rule, and a message that never repeats the value of a
    personal column."""
    field = error.field if isinstance(error, InvalidValue) else str(error.details.get("field") or field)
    field = COLUMN_OF.get(field, field)
    message = error.message
    if field in PERSONAL_COLUMNS and error.rule not in _VALUE_FREE_RULES:
        message = _SAID_WITHOUT_VALUE.get(error.rule, f"{field} breaks the rule {error.rule}")
    return Refusal(line, field, error.rule, message)


@dataclass
class ImportReport:
    rows: int = 0
    stored: int = 0  # residents registered by this run
    already: int = 0  # rows whose identity number was registered before
    refused: list[Refusal] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class ImportFileError(ValueError):
    """The file as a whole cannot be read (no header, a column missing)."""


def missing_columns(header: Iterable[str], required: Sequence[str] = RESIDENT_COLUMNS) -> list[str]:
    """The required columns a header line lacks."""
    present = set(header)
    return [c for c in required if c not in present]


def read_rows(stream: TextIO, required: Sequence[str] = RESIDENT_COLUMNS,
              optional: Sequence[str] = OPTIONAL_COLUMNS) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line number, row)`` for each record, the header checked first. The line is the one
    the record starts on: a quoted value may hold line breaks, and csv's own line_num is where
    the record ends (found by a review). Blank lines are skipped, as csv.DictReader skips them."""
    reader = csv.reader(stream)
    header = next(reader, [])
    missing = missing_columns(header, required)
    if missing:
        raise ImportFileError(f"the header lacks {', '.join(missing)}; expected {', '.join(required)}")
    unknown = [c for c in header if c not in (*required, *optional)]
    if unknown:
        raise ImportFileError(f"unknown columns {', '.join(unknown)}")
    while True:
        start = reader.line_num + 1
        values = next(reader, None)
        if values is None:
            return
        if not values:
            continue
        row = dict.fromkeys(header, "")
        row.update((column, value.strip()) for column, value in zip(header, values, strict=False))
        if len(values) > len(header):  # refused by check_shape (found by a review: the extra
            row[EXTRA] = "yes"  # values were dropped silently and the row stored)
        yield start, row


def count_records(stream: Iterable[str]) -> int:
    """How many records follow the header: what an import's progress counts to (a quoted value
    over several lines is one record; lines overcounted them)."""
    return max(sum(1 for values in csv.reader(stream) if values) - 1, 0)


EXTRA = "\x00extra"  # no column is named so


def check_shape(row: dict[str, str]) -> None:
    """A row with more values than the header has columns is refused, not cut to fit."""
    if EXTRA in row:
        raise InvalidValue("", "the row has more values than the header has columns", rule="csv_extra_values")


def check_text(row: dict[str, str], column: str, text: Text, *, required: bool = True) -> str:
    """A text column by the API's rules for the same field: present, not too long, no control
    characters, one line if the API's field is. The message names the rule, never the value."""
    value = row.get(column, "")
    if required and not value:
        raise InvalidValue(column, f"{column} is empty", rule="required")
    if len(value) > text.longest:
        raise InvalidValue(column, f"{column} takes at most {text.longest} characters", rule="string_too_long")
    if CONTROL.search(value):
        raise InvalidValue(column, f"{column} holds control characters (NUL and the like) or bidirectional"
                                   " overrides", rule="control_characters")
    if text.one_line and LINE_BREAKS.search(value):
        raise InvalidValue(column, f"{column} is a single line: no tabs or line breaks", rule="line_breaks")
    return value


def parse_date(value: str, field_name: str) -> date:
    """YYYY-MM-DD, as the API takes a date."""
    day = iso_day(value)
    if day is None and ISO_DAY.fullmatch(value or "") and not FIRST_YEAR <= int(value[:4]) <= LAST_YEAR:
        raise InvalidValue(field_name, f"{field_name} {value!r} names a year outside {FIRST_YEAR} to {LAST_YEAR}",
                           rule="date_out_of_range")
    if day is None:
        raise InvalidValue(field_name, f"{field_name} {value!r} is not a date (YYYY-MM-DD)", rule="date")
    return day


def _decide(app: OfficeApplication, row: dict[str, str], stamp: Stamp) -> tuple[IdentityNumber, Resident]:
    """The resident a row registers, by the rules a registration through the API follows."""
    check_shape(row)
    for column in ("id_number", "name", "phone", "hometown", "area", "registered_on"):
        if not row.get(column):
            raise InvalidValue(column, f"{column} is empty", rule="required")
    for column, text in RESIDENT_TEXT.items():
        check_text(row, column, text, required=False)
    if not PHONE.match(row["phone"]):
        raise InvalidValue("phone", "phone is not a phone number (5 to 20 digits, spaces or '-', the first a digit"
                                    " or a leading +)", rule="string_pattern_mismatch")
    id_number = IdentityNumber.parse(row["id_number"])
    resident = Resident.register(
        id_number=id_number, name=row["name"], phone=row["phone"], hometown=row["hometown"],
        employer=row.get("employer") or None, area=app.place(row["area"]),
        registered_on=parse_date(row["registered_on"], "registered_on"), stamp=stamp,
        household_relation=row.get("household_relation") or None,
    )
    return id_number, resident


@fewer_collections()
def import_residents(app: OfficeApplication, rows: Iterable[tuple[int, dict[str, str]]], stamp: Stamp, *,
                     batch_size: int = 500, progress: Callable[[int], None] | None = None) -> ImportReport:
    """Register the residents of ``rows``; see the module's docstring."""
    report = ImportReport()
    started = time.monotonic()
    seen: set[UUID] = set()
    batch: list[tuple[int, dict[str, str]]] = []

    def flush() -> None:
        _import_batch(app, batch, stamp, seen, report)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for line, row in rows:
        report.rows += 1
        batch.append((line, row))
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    report.seconds = time.monotonic() - started
    return report


def _import_batch(app: OfficeApplication, batch: list[tuple[int, dict[str, str]]], stamp: Stamp,
                  seen: set[UUID], report: ImportReport) -> None:
    decided: list[tuple[int, dict[str, str], Resident, UUID, UUID]] = []
    for line, row in batch:
        try:
            id_number, resident = _decide(app, row, stamp)
        except DomainError as error:
            report.refused.append(refusal(line, error))
            continue
        claim_id = app.vault.claim_id(id_number.value)
        if claim_id in seen:
            report.refused.append(Refusal(line, "id_number", "identity_number_repeated",
                                          "this identity number appears on an earlier line of the file"))
            continue
        seen.add(claim_id)
        decided.append((line, row, resident, claim_id, legacy_claim_id(id_number.value)))
    if not decided:
        return
    existing = existing_ids(app, [d[3] for d in decided] + [d[4] for d in decided])
    fresh = [d for d in decided if d[3] not in existing and d[4] not in existing]
    again = [d for d in decided if d[3] in existing or d[4] in existing]
    if again:  # registered already; or its holder's personal data was erased (in one read per batch)
        holders = holders_by_number(app, {d[2].id_number for d in again})
        alive = {k for k, a in load_many(app, holders.values()).items()
                 if isinstance(a, Resident) and a.erased_on is None}
        for line, _, resident, _, _ in again:
            if holders.get(resident.id_number) in alive:
                report.already += 1
            else:
                report.refused.append(Refusal(line, "id_number", "identity_erased", IDENTITY_ERASED))
    if not fresh:
        return
    try:
        app.save(*(a for _, _, resident, claim_id, _ in fresh
                   for a in (resident, IdentityNumberClaim.claim(claim_id, resident_id=resident.id,
                                                                 stamp=stamp))))
        report.stored += len(fresh)  # one transaction for the batch
        return
    except IntegrityError:
        pass  # one was registered meanwhile by someone else: decide again one by one, to tell which
    for _, row, _, claim_id, _ in fresh:
        _, resident = _decide(app, row, stamp)
        try:
            app.save(resident, IdentityNumberClaim.claim(claim_id, resident_id=resident.id, stamp=stamp))
            report.stored += 1
        except IntegrityError:
            report.already += 1


# -- reading the store in bulk --------------------------------------------------------------
def load_many(app: OfficeApplication, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
    """Many aggregates in one read, their events replayed in order. Personal fields stay
    sealed (``[sealed]`` text in the state): the imports read none of them and their events
    carry none, so nothing is decrypted that is not used. (The aggregates imported here are
    not snapshotted.)"""
    wanted = list(set(ids))
    if not wanted:
        return {}
    with app.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        rows = cur.execute(f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
                           " WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version",
                           (wanted,)).fetchall()
    aggregates: dict[UUID, Any] = {}
    decode = Mapper.to_domain_event  # eventsourcing's own: no opening of sealed values
    for originator_id, version, topic, state in rows:
        event: Any = decode(app.mapper, StoredEvent(originator_id=originator_id, originator_version=version,
                                                    topic=topic, state=bytes(state)))
        aggregates[originator_id] = event.mutate(aggregates.get(originator_id))
    return aggregates


def holders_by_number(app: OfficeApplication, numbers: set[str]) -> dict[str, UUID]:
    """Identity number -> resident id, through the numbers' claims (and the older claims)."""
    by_claim: dict[UUID, str] = {}
    for number in numbers:
        by_claim[app.vault.claim_id(number)] = number
        by_claim[legacy_claim_id(number)] = number
    found: dict[str, UUID] = {}
    claims = {k: c for k, c in load_many(app, by_claim).items() if isinstance(c, IdentityNumberClaim)}
    app.vault.prefetch([c.resident_id for c in claims.values()])  # the holder is sealed under their key
    for claim_id, claim in claims.items():
        holder = app.vault.open(claim.resident_id)
        if holder is not None and holder != ERASED:
            found[by_claim[claim_id]] = UUID(str(holder))
    return found


def existing_ids(app: OfficeApplication, aggregate_ids: list[UUID]) -> set[UUID]:
    """Those of ``aggregate_ids`` whose aggregate was created already (a re-run finds them)."""
    recorder: Any = app.recorder
    with recorder.datastore.get_connection() as conn:
        rows = conn.execute(f"SELECT originator_id FROM {EVENTS_TABLE} WHERE originator_id = ANY(%s)"
                            " AND originator_version = 1", (aggregate_ids,)).fetchall()
    return {(r["originator_id"] if isinstance(r, dict) else r[0]) for r in rows}


def write_report(path: Path, refusals: list[Refusal]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(REPORT_COLUMNS)
        for r in refusals:
            writer.writerow([r.line, r.field, r.rule, r.message])

