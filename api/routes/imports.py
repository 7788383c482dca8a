"""Bulk imports: a supervisor uploads a CSV file of housing sites, residents or moves; the
service imports it in the background (the same rules and events as ``liudong import``) and
answers with a job to follow."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from api.access import SUPERVISORS, AreaRule, access
from api.deps import PrincipalDep, ServicesDep, respond
from api.problems import Problem
from api.schemas import Public
from application.import_jobs import create_job, get_job, importer_for, run_job
from application.imports import RESIDENT_COLUMNS, count_records, missing_columns
from domain.common import Stamp

router = APIRouter(tags=["imports"])


class RefusedRow(Public):
    line: int = Field(description="the line of the file (the header is line 1)")
    field: str = Field(description="the column at fault (empty: the row as a whole)")
    rule: str
    message: str


class ImportJob(Public):
    id: UUID
    kind: Literal["residents", "sites", "moves"]
    status: Literal["running", "done", "failed", "interrupted"] = Field(
        description="interrupted: the process running it stopped; send the file again (stored rows are skipped)")
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    rows_total: int
    rows_done: int
    registered: int = Field(description="what this import stored: residents or sites registered, moves recorded")
    already: int = Field(description="rows stored before, by an earlier import or through the API (nothing stored)")
    refused: list[RefusedRow] = Field(description="rows refused, with the field and rule each broke")
    error: str | None = Field(description="why the file as a whole could not be imported (status failed)")


CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}, "example": (
    ",".join(RESIDENT_COLUMNS) + ",household_relation\n"
    "11010519491231002X,李伟,13800138000,Anhui,恒力纺织,xinqi,2026-03-01,head\n")}}}}


@router.post("/imports", status_code=202, response_model=ImportJob, openapi_extra=CSV_BODY, responses={
    202: {"description": "the import runs; Location names the job to follow"}})
@access(SUPERVISORS, AreaRule.DISTRICT)
async def start_import(request: Request, services: ServicesDep, principal: PrincipalDep,
                       kind: Annotated[Literal["residents", "sites", "moves"], Query(
                           description="what the file holds")] = "residents") -> JSONResponse:
    """Import a CSV file (`Content-Type: text/csv`, UTF-8, a header line) by the rules of the API's own routes.
    `kind=residents` (the default): id_number, name, phone, hometown, employer, area, registered_on and
    optionally household_relation, as `POST /residents`. `kind=sites`: code, name, area, address, operator_type,
    operator_name, capacity and optionally facilities (separated by `;`), as `POST /sites`; the code is the
    office's own, which moves name. `kind=moves`: id_number, kind (into_site, private_housing, departed,
    returned), effective_date and, by kind, site_code, area or reason, applied in the file's order. Supervisors
    and admins with a district-wide key. Rows stored before are skipped, so sending a file again is safe."""
    if principal.actor.role not in SUPERVISORS:
        raise Problem(403, "Forbidden", "only supervisors and admins import", rule="role_not_allowed")
    if principal.area_filter() is not None:
        raise Problem(403, "Forbidden", "imports need a district-wide key", rule="area_not_allowed",
                      errors=[{"field": "area", "rule": "area_not_allowed", "message": "a key bound to areas"}])
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
        raise Problem(415, "Unsupported media type", "send the file as text/csv", rule="content_type",
                      errors=[{"field": "Content-Type", "rule": "content_type", "message": "text/csv"}])
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem(422, "Invalid request", "the file is not UTF-8", rule="encoding",
                      errors=[{"field": "body", "rule": "encoding", "message": "not UTF-8"}]) from None
    try:
        header = next(csv.reader(io.StringIO(text)), [])
    except csv.Error:  # a NUL byte, say: no header to read
        header = []
    _, required, optional = importer_for(kind)
    missing = missing_columns(header, required)
    unknown = [c for c in header if c not in (*required, *optional)]
    if missing or unknown:  # both at once, not as a failed job later (found by a review)
        said = f"the header lacks {', '.join(missing)}" if missing else f"unknown columns {', '.join(unknown)}"
        raise Problem(422, "Invalid request", said, rule="csv_header",
                      errors=[{"field": "body", "rule": "csv_header", "message": "columns: " + ",".join(
                          required) + (" and optionally " + ",".join(optional) if optional else "")}])
    job_id = uuid.uuid4()
    rows_total = count_records(io.StringIO(text))  # records, not lines: a quoted value may hold line breaks
    stamp = Stamp(principal.actor, services.clock())
    with services.pool.connection() as conn:
        create_job(conn, job_id, kind, principal.actor.user_id, rows_total)
        job = get_job(conn, job_id)
    threading.Thread(target=run_job, args=(services.app, services.pool.connection, job_id, text, stamp),
                     kwargs={"kind": kind}, name=f"import-{job_id}", daemon=True).start()
    return respond(ImportJob.model_validate(job), {"Location": f"/imports/{job_id}"}, status=202)


@router.get("/imports/{job_id}", response_model=ImportJob)
@access(SUPERVISORS, AreaRule.NONE)
def import_status(job_id: UUID, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    """An import's progress and, once done, its counts and refused rows."""
    if principal.actor.role not in SUPERVISORS:
        raise Problem(403, "Forbidden", "only supervisors and admins follow imports", rule="role_not_allowed")
    with services.pool.connection() as conn:
        job = get_job(conn, job_id)
    if job is None:
        raise Problem(404, "Not found", f"no import {job_id}", rule="not_found")
    return respond(ImportJob.model_validate(job))
