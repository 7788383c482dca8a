"""Subsidies (补助) in the browser: the applications waiting for the user (supervisors see
those they may approve, with the four-eyes rule in words; caseworkers their submissions;
finance what is approved and due; auditors every application), each list a page at a time,
a form to apply, an application's page with the actions its state and the user's role allow
(revoking a subsidy that took effect among them), the ledger's budget bars, and the programs
(``/ui/subsidy-programs``: budget, committed, paid and remaining, a page at a time, and for
district-wide supervisors and admins a form to open one). Every action calls the same use case
as the JSON API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.present import Presenter
from api.routes.subsidies import (
    OutcomeVerificationCreate,
    SubsidyApplicationCreate,
    SubsidyApproval,
    SubsidyPaymentCreate,
    SubsidyProgramCreate,
    SubsidyRejection,
    SubsidyRevocation,
)
from api.web.core import (
    STAFF_ROLES,
    SUPERVISOR_ROLES,
    CommandOutcome,
    Page,
    api_limits,
    current_page,
    day_or_none,
    is_digits,
    redirect,
    uuid_or_none,
)
from api.web.pages.residents import site_names, site_options
from application.access import acting_in
from application.store import AreaNotAllowed, NotFound
from domain.common import Role
from domain.sites import OperatorType
from domain.subsidies import ApplicationStatus, PaymentMode, SubsidyApplication, SubsidyProgram, SubsidyPurpose
from projections.cobuilding import by_site
from projections.operators import support_by_type
from projections.pages import BadCursor
from projections.pages import Page as ViewPage
from projections.site_occupancy import SiteFilter, list_sites
from projections.subsidy_ledger import ApplicationFilter, ledger, list_applications, list_programs

router = APIRouter()
FINANCE = frozenset({Role.FINANCE})
VERIFIERS = frozenset({Role.SUPERVISOR})
PAGE_SIZE = 50  # applications per page of each list
NAMES_BATCH = 500  # programs or sites read at a time for their names
REVOCABLE = frozenset({ApplicationStatus.APPROVED, ApplicationStatus.PAID})  # took effect (as the domain says)
# The most characters each form's fields take: the API's bodies' (api/routes/subsidies.py).
APPLICATION_MOST = api_limits(SubsidyApplicationCreate, "amount", "justification")
# At most as many instalments as the API takes (found by a review: 25 were stored).
MOST_INSTALMENTS = int(
    SubsidyApplicationCreate.model_json_schema()["properties"]["instalments"]["anyOf"][0]["maxItems"])
# Texts the API requires not empty (found by a review: blank ones were stored from the pages).
REQUIRED_TEXT = {"reject": ("reason",), "pay": ("reference",), "verify": ("note",)}
ACTION_MOST = {
    "approve": api_limits(SubsidyApproval, "note", "target"), "reject": api_limits(SubsidyRejection, "reason"),
    "pay": api_limits(SubsidyPaymentCreate, "amount", "reference"),
    "verify": api_limits(OutcomeVerificationCreate, "note"),
    "revoke": api_limits(SubsidyRevocation, "reason", "claw_back"),
}
PROGRAM_MOST = api_limits(SubsidyProgramCreate, "name", "budget")
# Who may open a program, as POST /subsidy-programs's rule says (api/routes/subsidies.py):
# supervisors and admins, district-wide (programs are the district's; the use case refuses an
# account bound to areas, as the API does).
PROGRAM_ROLES = SUPERVISOR_ROLES
DISTRICT_ONLY = "Programs are the district's: an account bound to areas reads them and opens none."


def _fiscal_year(text: str) -> int | None:
    """A fiscal year asked for in a query (2000 to 2100), or None for every year."""
    return int(text) if is_digits(text) and 2000 <= int(text) <= 2100 else None


def money(value: Any) -> str:
    """An amount as the office writes it: ¥1,234,567.00."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return f"¥{amount:,.2f}"


def ratio(part: Any, whole: Any) -> float:
    """``part / whole`` for a <meter> (0 when there is no whole)."""
    try:
        total = Decimal(str(whole))
        return float(Decimal(str(part)) / total) if total else 0.0
    except (InvalidOperation, ValueError):
        return 0.0


def _every(read: Callable[[str | None], ViewPage]) -> Iterator[dict[str, Any]]:
    """Every row of a view's list, its pages followed."""
    cursor: str | None = None
    while True:
        found = read(cursor)
        yield from found.items
        if found.next_cursor is None:
            return
        cursor = found.next_cursor


def _names(page: Page) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Programs and sites by id, every one (sites within the user's areas)."""
    sites_of = SiteFilter(areas=page.principal.area_filter())
    with page.services.pool.connection() as conn:
        programs = list(_every(lambda cursor: list_programs(conn, None, NAMES_BATCH, cursor)))
        sites = list(_every(lambda cursor: list_sites(conn, sites_of, NAMES_BATCH, cursor)))
    labels = site_names(sites)  # two sites of one name told apart (found by a review: the lists and the ledger)
    return {str(p["id"]): p for p in programs}, {str(s["id"]): {**s, "label": labels[str(s["id"])]} for s in sites}


def _load(page: Page, application_id: UUID) -> SubsidyApplication | None:
    try:
        with acting_in(page.principal.visible):
            return page.services.app.load(SubsidyApplication, application_id)
    except (NotFound, AreaNotAllowed):
        return None


# -- the queue ----------------------------------------------------------------------------------
@router.get("/ui/subsidies")
async def subsidies(request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("subsidy_ledger", int(after))
    return _queue(page)


# Each list of the queue pages on its own: its cursor travels in its own query parameter.
LISTS = ("approve", "mine", "pay", "approved", "all")


@dataclass
class Listed:
    """One page of a list: its rows, the cursor after them, the total of the list, and links."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    total: int
    next_url: str | None = None
    first_url: str | None = None


def _listed(page: Page, flt: ApplicationFilter, cursor: str | None) -> Listed:
    """A page of applications from ``cursor`` on. Raises BadCursor."""
    with page.services.pool.connection() as conn:
        found = list_applications(conn, flt, PAGE_SIZE, cursor)
    return Listed(found.items, found.next_cursor, found.total)


def _queue_url(cursors: dict[str, str | None], after: int | None = None) -> str:
    """The queue with each list at its cursor (and waiting for a write at ``after``)."""
    query = {f"{name}_cursor": value for name, value in cursors.items() if value}
    if after is not None:
        query["after"] = str(after)
    return "/ui/subsidies" + (f"?{urlencode(query)}" if query else "")


def _queue(page: Page, outcome: CommandOutcome | None = None, values: dict[str, str] | None = None,
           failed: str | None = None, status: int = 200, cursors: dict[str, str | None] | None = None) -> Response:
    me = page.principal.actor.user_id
    programs, sites = _names(page)
    areas = page.principal.area_filter()
    today = page.services.today()
    at: dict[str, str | None] = (
        cursors if cursors is not None
        else {name: page.request.query_params.get(f"{name}_cursor") or None for name in LISTS})
    bad_cursor = False

    def listed(name: str, state: ApplicationStatus | None, submitted_by: str | None = None,
               newest_first: bool = False, not_mine: bool = False, payable: bool = False) -> Listed:
        nonlocal bad_cursor
        flt = ApplicationFilter(status=state.value if state else None, areas=areas, submitted_by=submitted_by,
                                newest_first=newest_first, not_submitted_by=me if not_mine else None,
                                not_approved_by=me if not_mine else None, payable_on=today if payable else None)
        cursor = at.get(name)
        try:
            found = _listed(page, flt, cursor)
        except BadCursor:  # an old or edited link: this list's first page, and a word about it
            bad_cursor, cursor, at[name] = True, None, None
            page.dropped.add(f"{name}_cursor")
            found = _listed(page, flt, None)
        return named(found)

    def named(found: Listed) -> Listed:
        for row in found.rows:
            row["program_name"] = programs.get(str(row["program_id"]), {}).get("name", "")
            row["site_name"] = sites.get(str(row["site_id"]), {}).get("label", "")
        return found

    lists: dict[str, Listed] = {}
    if page.may(SUPERVISOR_ROLES):
        # Those they may approve: not their own nor one they approved already (the four-eyes
        # rule), filtered by the view, so every page is full.
        lists["approve"] = listed("approve", ApplicationStatus.SUBMITTED, not_mine=True)
        for row in lists["approve"].rows:
            row["needs_second"] = row["approvals_required"] == 2 and row["approvals"] == 1
    if page.may(STAFF_ROLES):
        lists["mine"] = listed("mine", None, submitted_by=me, newest_first=True)
    if page.may(FINANCE):
        # Approved with money fallen due by today unpaid, and how much: the view's query.
        lists["pay"] = listed("pay", None, payable=True)
        # ...and every application in force, with what is still to come (found by a review: a phased
        # subsidy's later instalments were nowhere once today's was paid)
        lists["approved"] = listed("approved", ApplicationStatus.APPROVED, newest_first=True)
    if page.role is Role.AUDITOR:
        lists["all"] = listed("all", None, newest_first=True)
    paying = lists.get("pay")
    failed_id = uuid_or_none(failed)
    if paying is not None and failed_id is not None and not any(str(r["id"]) == failed for r in paying.rows):
        # The row a payment was refused on stands on the page with its error, whichever page of the
        # list it would fall on (found by a review: with a longer list the error showed nowhere).
        refused_row = named(_listed(page, ApplicationFilter(areas=areas, payable_on=today,
                                                            application_id=failed_id), None))
        paying.rows = [*refused_row.rows, *paying.rows]
    # The links last, when every list has read its cursor: one refused cursor is in none of them.
    for name, found in lists.items():
        found.next_url = _queue_url({**at, name: found.next_cursor}) if found.next_cursor else None
        found.first_url = _queue_url({**at, name: None}) if at.get(name) else None
    return page.render("subsidies.html", status=status, lists=lists, cursors=at, bad_cursor=bad_cursor,
                       money=money, outcome=outcome, values=values or {}, failed=failed, today=today.isoformat())


# -- applying -----------------------------------------------------------------------------------
@router.get("/ui/subsidies/new")
def new_application(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    return _new_form(page, {}, None)


def _new_form(page: Page, values: dict[str, str], outcome: CommandOutcome | None, status: int = 200) -> Response:
    programs, sites = _names(page)
    program_options = [(pid, f"{p['name']} ({p['fiscal_year']})") for pid, p in programs.items()]
    open_sites = page.sorted_by_name([s for s in sites.values() if not s.get("closed")])
    site_choices = site_options(open_sites)
    modes = [(m.value, page.label("mode", m.value)) for m in PaymentMode]
    threshold = page.services.app.SUBSIDY_TWO_APPROVALS_THRESHOLD
    return page.render("subsidy_new.html", status=status, programs=program_options, sites=site_choices, modes=modes,
                       values=values, outcome=outcome, threshold=money(threshold))


def _instalments(text: str) -> list[tuple[str, date]] | None:
    """Lines of "amount due-date" (phased subsidies); None when empty. A line that is not
    so is refused by the use case's own rule (an instalment without a date cannot be)."""
    plan: list[tuple[str, date]] = []
    for line in text.splitlines():
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        due = day_or_none(parts[-1]) if len(parts) > 1 else None
        if due is None:
            raise ValueError(line)
        plan.append((parts[0], due))
    return plan or None


@router.post("/ui/subsidies/new")
async def submit_application(request: Request) -> Response:
    page = current_page(request)
    page.require(STAFF_ROLES)
    form = await page.form()
    program_id, site_id = uuid_or_none(form.get("program_id")), uuid_or_none(form.get("site_id"))
    if program_id is None or site_id is None:
        missing = "program_id" if program_id is None else "site_id"
        outcome = page.refused("required", page._("Choose one"), missing)
        return _new_form(page, form, outcome, status=422)
    if not form.get("justification"):
        outcome = page.refused("justification_required", page._("Justification"), "justification")
        return _new_form(page, form, outcome, status=422)
    if (too_long := page.too_long(form, APPLICATION_MOST)) is not None:
        return _new_form(page, form, too_long, status=422)
    try:
        plan = _instalments(form.get("instalments", ""))
    except ValueError:
        outcome = page.refused("instalment_line", page._(
            "Write each instalment on its own line as amount and due date, e.g. 60000.00 2026-12-01"), "instalments")
        return _new_form(page, form, outcome, status=422)
    if plan is not None and len(plan) > MOST_INSTALMENTS:
        outcome = page.refused("too_many_instalments", page._("At most {n} instalments").format(n=MOST_INSTALMENTS),
                               "instalments")
        return _new_form(page, form, outcome, status=422)
    outcome = page.run(lambda stamp: page.services.app.submit_subsidy_application(
        program_id=program_id, site_id=site_id, amount=form.get("amount", ""), mode=form.get("mode", ""),
        justification=form.get("justification", ""), instalments=plan, stamp=stamp))
    if not outcome.ok or outcome.result is None:
        return _new_form(page, form, outcome, status=_status(outcome))
    return redirect(f"/ui/subsidies/{outcome.result.id}?after={outcome.result.position}")


def _status(outcome: CommandOutcome) -> int:
    return 422 if (outcome.field and not outcome.conflict) or outcome.rule in ("required", "not_found") else 409


# -- one application ----------------------------------------------------------------------------
@router.get("/ui/subsidies/{application_id}")
async def application_page(application_id: str, request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("subsidy_ledger", int(after))
    return _application(page, application_id)


def _application(page: Page, application_id: str, outcome: CommandOutcome | None = None, failed: str | None = None,
                 values: dict[str, str] | None = None, status: int = 200) -> Response:
    found = uuid_or_none(application_id)
    application = _load(page, found) if found else None
    if application is None:
        return page.render("subsidy.html", status=404, application=None, money=money)
    me = page.principal.actor.user_id
    today = page.services.today()
    programs, sites = _names(page)
    approvers = [a.approved_by for a in application.approvals]
    submitted = application.status == ApplicationStatus.SUBMITTED
    approved = application.status == ApplicationStatus.APPROVED
    reward = application.mode == PaymentMode.REWARD_IN_LIEU
    actions = {
        "approve": page.may(SUPERVISOR_ROLES) and submitted and me != application.submitted_by
        and me not in approvers,
        "reject": page.may(SUPERVISOR_ROLES) and submitted,
        "pay": page.may(FINANCE) and approved and application.due_by(today) > 0,
        "verify": page.may(VERIFIERS) and approved and reward and application.outcome_verified_on is None
        and me != application.submitted_by and me not in approvers,
        "revoke": page.may(SUPERVISOR_ROLES) and application.status in REVOCABLE,
    }
    why_not = None
    if page.may(SUPERVISOR_ROLES) and submitted and not actions["approve"]:
        why_not = (page._("You submitted this application, so someone else approves it.")
                   if me == application.submitted_by else
                   page._("You gave the first approval; a second supervisor must give the next one."))
    return page.render(
        "subsidy.html", status=status, application=application, money=money, actions=actions, why_not=why_not,
        program=programs.get(str(application.program_id), {}), site=sites.get(str(application.site_id), {}),
        needs_second=submitted and application.approvals_required == 2 and len(approvers) == 1,
        due_today=application.due_by(today), today=today.isoformat(), reward=reward, outcome=outcome,
        failed=failed, values=values or {}, unpaid=application.amount - application.paid,
        text=Presenter(page.services.app.vault, page.principal, page.lang).text)


async def _act(request: Request, application_id: str, roles: frozenset[Role], name: str) -> Response:
    page = current_page(request)
    page.require(roles)
    form = await page.form()
    target = uuid_or_none(application_id)
    if target is None:
        return _application(page, application_id)
    blank = next((f for f in REQUIRED_TEXT.get(name, ()) if not form.get(f, "").strip()), None)
    outcome = (page.refused("required", "required", blank) if blank else None) or page.too_long(
        form, ACTION_MOST[name]) or _decide(page, name, target, form)
    if outcome.ok and outcome.result is not None:
        if name == "pay" and form.get("back") == "queue":  # back to the page of the list it was paid from
            return redirect(_queue_url({"pay": form.get("pay_cursor") or None}, after=outcome.result.position))
        return redirect(f"/ui/subsidies/{target}?after={outcome.result.position}")
    if name == "pay" and form.get("back") == "queue":
        return _queue(page, outcome, form, failed=str(target), status=_status(outcome),
                      cursors={"pay": form.get("pay_cursor") or None})
    return _application(page, application_id, outcome, failed=name, values=form, status=_status(outcome))


def _decide(page: Page, name: str, target: UUID, form: dict[str, str]) -> CommandOutcome:
    """The use case the form ``name`` asks for, run; or the page's own refusal of the form."""
    app = page.services.app
    if name == "approve":
        due = day_or_none(form.get("target_due"))
        return page.run(lambda stamp: app.approve_subsidy_application(
            target, form.get("note") or None, stamp, target=form.get("target") or None, target_due=due))
    if name == "reject":
        return page.run(lambda stamp: app.reject_subsidy_application(target, form.get("reason", ""), stamp))
    if name == "revoke":
        return _revoke(page, target, form)
    if name == "verify":
        verified = day_or_none(form.get("verified_on"))
        if verified is None:
            return page.refused("date_required", page._("Give a date (YYYY-MM-DD)"), "verified_on")
        return page.run(lambda stamp: app.verify_subsidy_outcome(target, verified, form.get("note", ""), stamp))
    paid_on = day_or_none(form.get("paid_on"))
    if paid_on is None:
        return CommandOutcome(error=page.error_text("date_required", page._("Give a date (YYYY-MM-DD)")),
                              rule="date_required", field="paid_on")
    return page.run(lambda stamp: app.record_subsidy_payment(
        target, form.get("amount", ""), form.get("reference", ""), paid_on, stamp))


def _revoke(page: Page, target: UUID, form: dict[str, str]) -> CommandOutcome:
    """Revoke a subsidy that took effect, as the API's revocation does: a reason (the API's
    limits) and what the operator must pay back."""
    reason = form.get("reason", "")
    if not reason:
        return page.refused("reason_missing", page._("Reason"), "reason")
    return page.unconfirmed(form) or page.run(lambda stamp: page.services.app.revoke_subsidy_application(
        target, reason, form.get("claw_back", ""), stamp))


@router.post("/ui/subsidies/{application_id}/approve")
async def approve(application_id: str, request: Request) -> Response:
    return await _act(request, application_id, SUPERVISOR_ROLES, "approve")


@router.post("/ui/subsidies/{application_id}/reject")
async def reject(application_id: str, request: Request) -> Response:
    return await _act(request, application_id, SUPERVISOR_ROLES, "reject")


@router.post("/ui/subsidies/{application_id}/pay")
async def pay(application_id: str, request: Request) -> Response:
    return await _act(request, application_id, FINANCE, "pay")


@router.post("/ui/subsidies/{application_id}/revoke")
async def revoke(application_id: str, request: Request) -> Response:
    return await _act(request, application_id, SUPERVISOR_ROLES, "revoke")


@router.post("/ui/subsidies/{application_id}/verify")
async def verify(application_id: str, request: Request) -> Response:
    return await _act(request, application_id, VERIFIERS, "verify")


# -- the ledger ---------------------------------------------------------------------------------
@router.get("/ui/ledger")
async def ledger_page(request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("subsidy_ledger", int(after))
    fiscal_year = _fiscal_year(request.query_params.get("fiscal_year", ""))
    areas = page.principal.area_filter()
    with page.services.pool.connection() as conn:
        body = ledger(conn, fiscal_year, areas)
        per_bed = support_by_type(conn, fiscal_year, areas)["by_operator_type"]
        programs = _every(lambda cursor: list_programs(conn, None, NAMES_BATCH, cursor))
        years = sorted({int(p["fiscal_year"]) for p in programs})
        beside = by_site(conn, fiscal_year, None, areas)  # the partners' contributions per site (co-building)
    biggest = max([Decimal(str(r["approved"])) for r in body["by_operator_type"]] or [Decimal(0)])
    per_bed_max = max([Decimal(str(r.get("committed_per_bed") or 0)) for r in per_bed] or [Decimal(0)])
    known = {t.value for t in OperatorType}
    return page.render("ledger.html", programs=body["programs"], by_type=body["by_operator_type"], per_bed=per_bed,
                       biggest=biggest, per_bed_max=per_bed_max, money=money, ratio=ratio, years=years,
                       fiscal_year=fiscal_year, known_types=known, beside=_beside(page, beside))


def _beside(page: Page, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each site's paid subsidies and its partners' contributions, with the partners' share of
    the two (what the pairings spare the government), in pinyin order of the sites."""
    _, sites = _names(page)
    labels = {k: str(v["label"]) for k, v in sites.items()}
    shown = []
    for row in rows:
        paid, given = Decimal(str(row["subsidies_paid"])), Decimal(str(row["contributions_value"]))
        shown.append({**row, "name": labels.get(str(row.get("site_id")), row.get("site_name") or ""),
                      "share": ratio(given, paid + given)})
    return page.sorted_by_name(shown)


# -- programs -----------------------------------------------------------------------------------
@router.get("/ui/subsidy-programs")
async def programs_page(request: Request) -> Response:
    page = current_page(request)
    after = request.query_params.get("after", "")
    if is_digits(after):
        await page.wait_for("subsidy_ledger", int(after))
    defaults = {"modes": [m.value for m in PaymentMode], "fiscal_year": str(page.services.today().year)}
    return _programs(page, defaults, None)


def _programs(page: Page, values: dict[str, Any], outcome: CommandOutcome | None, status: int = 200) -> Response:
    """The programs a page at a time (GET /subsidy-programs's query: programs are the district's,
    every reader sees them all), with the form to open one for those who may."""
    query = page.request.query_params
    fiscal_year = _fiscal_year(query.get("fiscal_year", ""))
    cursor = (query.get("cursor") or None) if page.request.method == "GET" else None  # a post shows page one
    notice = None
    with page.services.pool.connection() as conn:
        try:
            found = list_programs(conn, fiscal_year, PAGE_SIZE, cursor)
        except BadCursor:
            cursor, notice = None, page._("That page link is not valid (any more); here is the first page.")
            page.dropped.add("cursor")
            found = list_programs(conn, fiscal_year, PAGE_SIZE, None)
        years = sorted({int(p["fiscal_year"]) for p in _every(lambda c: list_programs(conn, None, NAMES_BATCH, c))})
    kept = {"fiscal_year": str(fiscal_year)} if fiscal_year else {}
    opened = _opened(page, uuid_or_none(query.get("opened")))
    return page.render(
        "subsidy_programs.html", status=status, programs=found.items, total=found.total, years=years,
        fiscal_year=fiscal_year, money=money, ratio=ratio, notice=notice,
        opened=opened,
        next_url=f"/ui/subsidy-programs?{urlencode({**kept, 'cursor': found.next_cursor})}"
        if found.next_cursor else None,
        first_url=f"/ui/subsidy-programs?{urlencode(kept)}".rstrip("?") if cursor else None,
        may_open=page.may(PROGRAM_ROLES) and page.principal.district_wide,
        bound_supervisor=page.may(PROGRAM_ROLES) and not page.principal.district_wide,
        purposes=[(p.value, page.label("purpose", p.value)) for p in SubsidyPurpose],
        modes=[(m.value, page.label("mode", m.value)) for m in PaymentMode],
        values=values, outcome=outcome)


def _opened(page: Page, program_id: UUID | None) -> SubsidyProgram | None:
    """The program just opened (the form's redirect names it), for the notice that says so."""
    if program_id is None:
        return None
    try:
        return page.services.app.load(SubsidyProgram, program_id)
    except NotFound:
        return None


@router.post("/ui/subsidy-programs")
async def open_program(request: Request) -> Response:
    """Open a program with the API's use case (the same event, the signed-in user as actor); a
    refusal comes back on the form in words, with what was typed, and stores nothing."""
    page = current_page(request)
    page.require(PROGRAM_ROLES)
    form = await page.form()
    modes = [m for m in (await page.form_lists()).get("mode", []) if m]
    values: dict[str, Any] = {k: v for k, v in form.items() if k not in ("csrf", "form_token", "mode")}
    values["modes"] = modes
    outcome = None
    for name in ("name", "purpose", "fiscal_year", "budget"):
        if outcome is None and not form.get(name):
            outcome = page.refused("required", "required", name)
    if outcome is None:
        outcome = page.too_long(form, PROGRAM_MOST)
    if outcome is None and not is_digits(form["fiscal_year"]):
        outcome = page.refused("whole_number", "a year such as 2026", "fiscal_year")
    if outcome is None:
        year = int(form["fiscal_year"])
        outcome = page.run(lambda stamp: page.services.app.open_subsidy_program(
            name=form["name"], purpose=form["purpose"], fiscal_year=year, budget=form["budget"], modes=modes,
            stamp=stamp))
        if outcome.rule == "area_not_allowed":  # an account bound to areas: programs are the district's
            outcome.error = page._(DISTRICT_ONLY)
            outcome.field = None
    if not outcome.ok:
        status = 403 if outcome.rule == "area_not_allowed" else 422 if outcome.field and not outcome.conflict else 409
        return _programs(page, values, outcome, status=status)
    assert outcome.result is not None
    return redirect(f"/ui/subsidy-programs?opened={outcome.result.id}&after={outcome.result.position}")
