"""Import jobs: a CSV file uploaded to a running service (``POST /imports``), imported in a
thread of the process that took it, with its progress and outcome in ``import_jobs`` so any
process answers ``GET /imports/{id}``. A job whose process died reads ``interrupted``; send
the file again (the rows stored already are skipped)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from application.store import OfficeApplication
    from domain.common import Stamp

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS import_jobs ("
    " id uuid PRIMARY KEY, kind text NOT NULL, status text NOT NULL, created_by text NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(),"
    " finished_at timestamptz, rows_total integer NOT NULL, rows_done integer NOT NULL DEFAULT 0,"
    " registered integer NOT NULL DEFAULT 0, already integer NOT NULL DEFAULT 0,"
    " refused jsonb NOT NULL DEFAULT '[]', error text)",
    # The rows of move files stored already (application.import_housing): a keyed hash of
    # each row's content, never the row, so a second run stores nothing.
    "CREATE TABLE IF NOT EXISTS import_rows (key text PRIMARY KEY, recorded_at timestamptz NOT NULL DEFAULT now())",
]
KINDS = ("residents", "sites", "moves")


def importer_for(kind: str) -> tuple[Callable[..., Any], tuple[str, ...], tuple[str, ...]]:
    """The import function of a kind of file, with its required and optional columns."""
    from application.import_housing import (
        MOVE_COLUMNS,
        MOVE_OPTIONAL,
        SITE_COLUMNS,
        SITE_OPTIONAL,
        import_moves,
        import_sites,
    )
    from application.imports import OPTIONAL_COLUMNS, RESIDENT_COLUMNS, import_residents

    return {
        "residents": (import_residents, RESIDENT_COLUMNS, OPTIONAL_COLUMNS),
        "sites": (import_sites, SITE_COLUMNS, SITE_OPTIONAL),
        "moves": (import_moves, MOVE_COLUMNS, MOVE_OPTIONAL),
    }[kind]


STALE_SECONDS = 60  # a running job not heard of for this long died with its process


def create_job(conn: Any, job_id: UUID, kind: str, created_by: str, rows_total: int) -> None:
    conn.execute("INSERT INTO import_jobs (id, kind, status, created_by, rows_total)"
                 " VALUES (%s, %s, 'running', %s, %s)", (job_id, kind, created_by, rows_total))


def get_job(conn: Any, job_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, kind, CASE WHEN status = 'running' AND updated_at < now() - make_interval(secs => %s)"
        " THEN 'interrupted' ELSE status END AS status, created_by, created_at, finished_at, rows_total, rows_done,"
        " registered, already, refused, error FROM import_jobs WHERE id = %s", (STALE_SECONDS, job_id)).fetchone()
    return dict(row) if row is not None else None


def run_job(app: OfficeApplication, connect: Callable[[], Any], job_id: UUID, text: str, stamp: Stamp,
            batch_size: int = 500, kind: str = "residents") -> None:
    """Import ``text`` (CSV of ``kind``) for the job, recording progress after each batch and
    the outcome at the end; an error in the file as a whole fails the job with its message."""
    import csv

    from application.imports import ImportFileError, count_records, read_rows

    importer, required, optional = importer_for(kind)
    try:  # records, not the lines the job was created with: a quoted value may hold line breaks
        with connect() as conn:
            conn.execute("UPDATE import_jobs SET rows_total = %s, updated_at = now() WHERE id = %s",
                         (count_records(io.StringIO(text)), job_id))
    except csv.Error:
        pass  # a file csv cannot read: the import below fails the job and says why

    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        with connect() as conn:
            conn.execute("UPDATE import_jobs SET rows_done = %s, updated_at = now() WHERE id = %s", (done, job_id))

    try:
        report = importer(app, read_rows(io.StringIO(text), required, optional), stamp, batch_size=batch_size,
                          progress=progress)
    except Exception as error:  # the job fails with the kind of error (its text may hold personal data)
        message = str(error) if isinstance(error, ImportFileError) else type(error).__name__
        with connect() as conn:
            conn.execute("UPDATE import_jobs SET status = 'failed', error = %s, finished_at = now(), updated_at = now()"
                         " WHERE id = %s", (message, job_id))
        return
    refused = [{"line": r.line, "field": r.field, "rule": r.rule, "message": r.message} for r in report.refused]
    with connect() as conn:
        conn.execute("UPDATE import_jobs SET status = 'done', rows_done = %s, registered = %s, already = %s,"
                     " refused = %s, finished_at = now(), updated_at = now() WHERE id = %s",
                     (report.rows, report.stored, report.already, Jsonb(refused), job_id))
