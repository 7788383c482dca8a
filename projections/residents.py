"""``residents``: the current state of every resident, for lists and filters."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from psycopg import Connection, Cursor
from psycopg.rows import DictRow

from domain.common import ERASED
from domain.identity import IdentityNumber
from domain.residents import ResidenceStatus, Resident
from projections.base import REBUILDING, SqlProjection, ViewRecorder, event_class, handles, rows_of
from projections.pages import Page, count_rows, decode_keyset, encode_cursor, first_value
from projections.sorting import person_key

# The residents columns that residents_counts counts by: every list filter but the name and
# identity-number searches.
COUNTED = "area, status, site_id, housing_kind, permit_status"

# residents_counts from the rows as they are: after a rebuild, or rows written around the handlers.
RECOUNT = [
    "DELETE FROM residents_counts",
    f"INSERT INTO residents_counts ({COUNTED}, n) SELECT {COUNTED}, count(*) FROM residents GROUP BY {COUNTED}",
]


class ResidentsView(ViewRecorder):
    """``name`` holds the name as the event sealed it (only the application can open it);
    ``name_masked`` the surname and a star; ``name_tokens`` keyed hashes of the name's
    prefixes, for search. No plaintext personal data is kept here."""

    # Version 3: housing_kind (issue 10), filled from the moves' housing kinds. Version 4:
    # name_sort, so lists sort by pinyin (issue 11). Version 5: id_suffix_tokens. Version 6:
    # residents_counts, the number of residents per filter value, so a list's total is a sum of
    # a few rows instead of a scan (issue 9). Version 7: name_sort reads the surname as a
    # surname (曾 Zeng, 单 Shan), found by a review.
    # Version 8: an erasure erases the permit number, the hometown and the employer too (found by
    # a review: they outlived it).
    version = 8
    tables = ["residents", "residents_counts"]
    after_rebuild = RECOUNT
    indexes_after_rebuild = True  # every handler writes its own resident's row, by id
    ddl = [
        "CREATE TABLE IF NOT EXISTS residents ("
        " id uuid PRIMARY KEY,"
        " name text NOT NULL,"
        " name_masked text NOT NULL,"
        " name_tokens text[] NOT NULL DEFAULT '{}',"
        " id_number_masked text NOT NULL,"
        " sex text NOT NULL,"
        " birth_date date NOT NULL,"
        " hometown text NOT NULL,"
        " employer text,"
        " status text NOT NULL,"
        " site_id uuid,"
        " area text NOT NULL,"
        " since date NOT NULL,"
        " registered_on date NOT NULL,"
        " version integer NOT NULL)",
        "CREATE INDEX IF NOT EXISTS residents_name_idx ON residents (name_masked, id)",
        "CREATE INDEX IF NOT EXISTS residents_name_tokens_idx ON residents USING gin (name_tokens)",
        "CREATE INDEX IF NOT EXISTS residents_site_idx ON residents (site_id)",
        "CREATE INDEX IF NOT EXISTS residents_area_idx ON residents (area, status)",
        # Each filter with the list's order, so a page is an index range, not a sort.
        "CREATE INDEX IF NOT EXISTS residents_area_name_idx ON residents (area, name_masked, id)",
        "CREATE INDEX IF NOT EXISTS residents_area_status_name_idx ON residents (area, status, name_masked, id)",
        "CREATE INDEX IF NOT EXISTS residents_status_name_idx ON residents (status, name_masked, id)",
        "CREATE INDEX IF NOT EXISTS residents_site_name_idx ON residents (site_id, name_masked, id)",
        # Added with residence permits; ADD COLUMN keeps views built before them.
        "ALTER TABLE residents ADD COLUMN IF NOT EXISTS permit_status text",
        "ALTER TABLE residents ADD COLUMN IF NOT EXISTS permit_number text",
        "ALTER TABLE residents ADD COLUMN IF NOT EXISTS endorsement_due date",
        "CREATE INDEX IF NOT EXISTS residents_permit_idx ON residents (permit_status, endorsement_due)",
        "DROP INDEX IF EXISTS residents_permit_name_idx",  # the permits sorted by code point, before pinyin
        # site / rented / employer_dormitory / other; NULL while departed
        "ALTER TABLE residents ADD COLUMN IF NOT EXISTS housing_kind text",
        "CREATE INDEX IF NOT EXISTS residents_area_housing_idx ON residents (area, housing_kind)",
        # The masked name's pinyin: the list's order (李* before 王* before 赵*).
        "ALTER TABLE residents ADD COLUMN IF NOT EXISTS name_sort text COLLATE \"C\" NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS residents_sort_idx ON residents (name_sort, id)",
        "CREATE INDEX IF NOT EXISTS residents_area_sort_idx ON residents (area, name_sort, id)",
        "CREATE INDEX IF NOT EXISTS residents_area_status_sort_idx ON residents (area, status, name_sort, id)",
        "CREATE INDEX IF NOT EXISTS residents_status_sort_idx ON residents (status, name_sort, id)",
        "CREATE INDEX IF NOT EXISTS residents_site_sort_idx ON residents (site_id, name_sort, id)",
        "CREATE INDEX IF NOT EXISTS residents_permit_sort_idx ON residents (permit_status, name_sort, id)"
        " WHERE permit_status IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS residents_permits_sort_idx ON residents (name_sort, id)"
        " WHERE permit_status IS NOT NULL",
        # Keyed hashes of the identity number's last 4, 5 and 6 characters (search by suffix).
        "ALTER TABLE residents ADD COLUMN IF NOT EXISTS id_suffix_tokens text[] NOT NULL DEFAULT '{}'",
        "CREATE INDEX IF NOT EXISTS residents_id_suffix_idx ON residents USING gin (id_suffix_tokens)",
        # How many residents have each combination of the list filters' columns, kept by the
        # handlers below in the statement that changes the row (see _update_counted).
        "CREATE TABLE IF NOT EXISTS residents_counts ("
        " area text NOT NULL, status text NOT NULL, site_id uuid, housing_kind text, permit_status text,"
        " n bigint NOT NULL, CONSTRAINT residents_counts_key"
        " UNIQUE NULLS NOT DISTINCT (area, status, site_id, housing_kind, permit_status))",
    ]


# Before a transaction changes a count it takes this lock, held to its end: writers of the view
# in a consumer group (each with its own partitions) then queue for the counts one transaction
# at a time instead of locking count rows in different orders and deadlocking.
COUNTS_LOCK = zlib.crc32(b"liudong-residents-counts")

_DELTA = (
    f" delta AS (SELECT {COUNTED}, -1 AS d FROM old UNION ALL SELECT {COUNTED}, 1 FROM new)"
    f" INSERT INTO residents_counts AS c ({COUNTED}, n)"
    f" SELECT {COUNTED}, sum(d) FROM delta, (SELECT pg_advisory_xact_lock({COUNTS_LOCK})) AS queued"
    f" WHERE NOT {REBUILDING} GROUP BY {COUNTED} HAVING sum(d) <> 0"
    f" ON CONFLICT ON CONSTRAINT residents_counts_key DO UPDATE SET n = c.n + EXCLUDED.n"
)


def _update_counted(cursor: Cursor[DictRow], resident_id: Any, assignments: str, *values: Any) -> None:
    """``UPDATE residents SET {assignments} WHERE id = resident_id`` and, in the same
    statement, the matching change of residents_counts: the row's old combination loses one,
    the new one gains one (nothing when they are the same). One statement, so the handlers
    stay pipelined; ``old`` reads the row in the statement's snapshot, before the update."""
    cursor.execute(
        f"WITH old AS (SELECT {COUNTED} FROM residents WHERE id = %s),"
        f" new AS (UPDATE residents SET {assignments} WHERE id = %s RETURNING {COUNTED}),{_DELTA}",
        (resident_id, *values, resident_id),
    )


def recount(conn: Connection[Any]) -> None:
    """residents_counts from the rows as they are (for rows written around the handlers)."""
    for statement in RECOUNT:
        conn.execute(statement)


# The row a registration inserts: names and SQL types (a rebuild inserts many at a time).
REGISTERED_COLUMNS = (
    ("id", "uuid"), ("name", "text"), ("name_masked", "text"), ("name_tokens", "text[]"),
    ("id_number_masked", "text"), ("sex", "text"), ("birth_date", "date"), ("hometown", "text"),
    ("employer", "text"), ("status", "text"), ("site_id", "uuid"), ("area", "text"), ("since", "date"),
    ("registered_on", "date"), ("housing_kind", "text"), ("version", "integer"), ("name_sort", "text"),
    ("id_suffix_tokens", "text[]"),
)
_INSERT_REGISTERED = (
    f"WITH old AS (SELECT {COUNTED} FROM residents WHERE false), new AS ("
    f"INSERT INTO residents ({', '.join(c for c, _ in REGISTERED_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(REGISTERED_COLUMNS))}) RETURNING {COUNTED}),{_DELTA}"
)


class ResidentsProjection(SqlProjection):
    name = "residents"
    view_class = ResidentsView

    @rows_of(event_class(Resident, "Registered"), table="residents", columns=REGISTERED_COLUMNS)
    def registered_row(self, e: Any) -> tuple[Any, ...]:
        name = self.privacy.open(e.name)
        number = self.privacy.open(e.id_number)
        masked = mask_name(name)
        return (
            e.originator_id,
            e.name,
            masked,
            self.privacy.name_tokens(name) if name != ERASED else [],
            IdentityNumber(number).masked if number != ERASED else ERASED,
            e.sex,
            e.birth_date,
            e.hometown,
            e.employer,
            ResidenceStatus.PRIVATE_HOUSING.value,
            None,
            e.area,
            e.registered_on,
            e.registered_on,
            "other",
            e.originator_version,
            person_key(masked),
            self.privacy.id_suffix_tokens(number) if number != ERASED else [],
        )

    @handles(event_class(Resident, "Registered"))
    def registered(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(_INSERT_REGISTERED, self.registered_row(e))

    @handles(event_class(Resident, "PersonalDataErased"))
    def erased(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE residents SET name = %s, name_masked = %s, name_tokens = '{}', id_number_masked = %s,"
            " name_sort = %s, id_suffix_tokens = '{}', version = %s, hometown = %s, employer = NULL,"
            " permit_number = CASE WHEN permit_number IS NULL THEN NULL ELSE %s END WHERE id = %s",
            (ERASED, ERASED, ERASED, person_key(ERASED), e.originator_version, ERASED, ERASED, e.originator_id),
        )

    @handles(event_class(Resident, "MovedIntoSite"))
    def moved_into_site(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._place(cursor, e, ResidenceStatus.IN_SITE, e.site_id, e.area, "site")

    @handles(event_class(Resident, "MovedToPrivateHousing"))
    def moved_to_private_housing(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._place(cursor, e, ResidenceStatus.PRIVATE_HOUSING, None, e.area, e.housing_kind)

    @handles(event_class(Resident, "Returned"))
    def returned(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._place(cursor, e, ResidenceStatus.PRIVATE_HOUSING, None, e.area, "other")

    @handles(event_class(Resident, "DepartedDistrict"))
    def departed(self, cursor: Cursor[DictRow], e: Any) -> None:
        _update_counted(cursor, e.originator_id,
                        "status = %s, site_id = NULL, since = %s, housing_kind = NULL, version = %s",
                        ResidenceStatus.DEPARTED.value, e.effective_date, e.originator_version)

    @handles(event_class(Resident, "EmployerChanged"))
    def employer_changed(self, cursor: Cursor[DictRow], e: Any) -> None:
        cursor.execute(
            "UPDATE residents SET employer = %s, version = %s WHERE id = %s",
            (e.employer, e.originator_version, e.originator_id),
        )

    @handles(event_class(Resident, "JoinedCommittee"), event_class(Resident, "LeftCommittee"),
             event_class(Resident, "IdentifiedAsActiveMember"),
             event_class(Resident, "StudyRecorded"), event_class(Resident, "DependantRecorded"),
             event_class(Resident, "SchoolPlacementRequested"), event_class(Resident, "SchoolPlaced"),
             event_class(Resident, "SchoolPlacementRefused"), event_class(Resident, "ServiceDelivered"))
    def committee_seat(self, cursor: Cursor[DictRow], e: Any) -> None:
        """The committee view shows the seat, the services view dependants and services; here only the
        record's version moves."""
        cursor.execute("UPDATE residents SET version = %s WHERE id = %s", (e.originator_version, e.originator_id))

    @handles(event_class(Resident, "PermitApplied"))
    def permit_applied(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._permit(cursor, e, "permit_status = 'applied', permit_number = NULL, endorsement_due = NULL")

    @handles(event_class(Resident, "PermitIssued"))
    def permit_issued(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._permit(cursor, e, "permit_status = 'issued', permit_number = %s, endorsement_due = %s",
                     e.number, e.endorsement_due)

    @handles(event_class(Resident, "PermitEndorsed"))
    def permit_endorsed(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._permit(cursor, e, "endorsement_due = %s", e.endorsement_due)

    @handles(event_class(Resident, "PermitReinstated"))
    def permit_reinstated(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._permit(cursor, e, "permit_status = 'issued'")

    @handles(event_class(Resident, "PermitSuspended"))
    def permit_suspended(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._permit(cursor, e, "permit_status = 'suspended'")

    @handles(event_class(Resident, "PermitCancelled"))
    def permit_cancelled(self, cursor: Cursor[DictRow], e: Any) -> None:
        self._permit(cursor, e, "permit_status = 'cancelled', endorsement_due = NULL")

    @staticmethod
    def _permit(cursor: Cursor[DictRow], e: Any, assignments: str, *values: Any) -> None:
        _update_counted(cursor, e.originator_id, f"{assignments}, version = %s", *values, e.originator_version)

    @staticmethod
    def _place(cursor: Cursor[DictRow], e: Any, status: ResidenceStatus, site_id: Any, area: str,
               housing_kind: str) -> None:
        _update_counted(cursor, e.originator_id,
                        "status = %s, site_id = %s, area = %s, since = %s, housing_kind = %s, version = %s",
                        status.value, site_id, area, e.effective_date, housing_kind, e.originator_version)


def mask_name(name: str) -> str:
    """The surname and a star: 李* for 李伟, Li* for Li Wei."""
    if name == ERASED or not name.strip():
        return ERASED
    words = name.split()
    return (words[0] if len(words) > 1 else name.strip()[0]) + "*"


@dataclass(frozen=True)
class ResidentFilter:
    site_id: str | None = None
    area: str | None = None
    status: str | None = None
    housing_kind: str | None = None
    name_token: str | None = None  # a keyed hash of a name prefix (application.privacy)
    id_suffix_token: str | None = None  # a keyed hash of the identity number's last 4-6 characters
    areas: list[str] | None = None  # the caller's areas; None: the whole district


COLUMNS = (
    "id, name, name_masked, id_number_masked, sex, birth_date, hometown, employer, status, site_id, area, since,"
    " registered_on, permit_status, permit_number, endorsement_due, housing_kind, version"
)


def list_residents(conn: Connection[DictRow], flt: ResidentFilter, limit: int, cursor: str | None) -> Page:
    where: list[str] = []
    params: list[Any] = []
    if flt.site_id:
        where.append("site_id = %s")
        params.append(flt.site_id)
    if flt.area:
        where.append("area = %s")
        params.append(flt.area)
    if flt.status:
        where.append("status = %s")
        params.append(flt.status)
    if flt.housing_kind:
        where.append("housing_kind = %s")
        params.append(flt.housing_kind)
    if flt.name_token:
        where.append("name_tokens @> ARRAY[%s]")
        params.append(flt.name_token)
    if flt.id_suffix_token:
        where.append("id_suffix_tokens @> ARRAY[%s]")
        params.append(flt.id_suffix_token)
    if flt.areas is not None:
        where.append("area = ANY(%s)")
        params.append(flt.areas)
    clause = " WHERE " + " AND ".join(where) if where else ""
    if flt.name_token or flt.id_suffix_token:  # searches are not counted ahead
        total, estimated = count_rows(conn, "residents" + clause, params)
    else:
        total, estimated = counted_total(conn, clause, params), False
    page_where = list(where)
    page_params = list(params)
    if cursor:
        last_name, last_id = decode_keyset(cursor)
        page_where.append("(name_sort, id) > (%s, %s)")
        page_params.extend([last_name, last_id])
    rows = conn.execute(
        f"SELECT {COLUMNS}, name_sort FROM residents"
        + (" WHERE " + " AND ".join(page_where) if page_where else "")
        + " ORDER BY name_sort, id LIMIT %s",
        [*page_params, limit + 1],
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["name_sort"], str(rows[-1]["id"])) if has_more and rows else None
    for row in rows:
        del row["name_sort"]
    return Page(items=rows, total=total, next_cursor=next_cursor, total_estimated=estimated)


def counted_total(conn: Connection[Any], clause: str, params: list[Any]) -> int:
    """How many residents match ``clause`` (conditions on the COUNTED columns only), summed
    from residents_counts: a few hundred rows at most, whatever the district's size."""
    row = conn.execute(f"SELECT coalesce(sum(n), 0) AS n FROM residents_counts{clause}", params).fetchone()
    return int(first_value(row)) if row else 0


def list_permits(
    conn: Connection[DictRow], status: str | None, due_before: Any, limit: int, cursor: str | None,
    areas: list[str] | None = None,
) -> Page:
    """Residents holding (or applying for) a permit, in the lists' order: the masked name's
    pinyin (as ``list_residents``), then id."""
    where = ["permit_status IS NOT NULL"]
    params: list[Any] = []
    if areas is not None:
        where.append("area = ANY(%s)")
        params.append(areas)
    if status:
        where.append("permit_status = %s")
        params.append(status)
    if due_before:
        where.append("endorsement_due < %s")
        params.append(due_before)
    clause = " WHERE " + " AND ".join(where)
    if due_before:
        total, estimated = count_rows(conn, "residents" + clause, list(params))
    else:
        total, estimated = counted_total(conn, clause, list(params)), False
    if cursor:
        last_name, last_id = decode_keyset(cursor)
        clause += " AND (name_sort, id) > (%s, %s)"
        params.extend([last_name, last_id])
    rows = conn.execute(
        "SELECT id AS resident_id, name, name_masked, id_number_masked, area, site_id, permit_status AS status,"
        " permit_number AS number, endorsement_due, name_sort FROM residents" + clause
        + " ORDER BY name_sort, id LIMIT %s",
        [*params, limit + 1],
    ).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["name_sort"], str(rows[-1]["resident_id"])) if has_more and rows else None
    return Page(items=[{k: v for k, v in r.items() if k != "name_sort"} for r in rows], total=total,
                next_cursor=next_cursor, total_estimated=estimated)
