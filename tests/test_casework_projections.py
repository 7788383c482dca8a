"""Property: the dispute views equal an independent fold of the same events."""

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.services import Services
from domain.common import Actor, DomainError, Role, Stamp
from tests.conftest import NOW
from tests.factories import unique_area

CASEWORKER = Actor("prop-cw", Role.CASEWORKER)
SUPERVISOR = Actor("prop-sup", Role.SUPERVISOR)


def fold_case(events: list[Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for e in events:
        kind = type(e).__name__
        if kind == "Logged":
            row = {"status": "logged", "assignee": None, "agency": None, "outcome": None, "resolved_on": None,
                   "breaches": [], "resolution_due": e.resolution_due}
        elif kind == "Assigned":
            row.update(assignee=e.assignee, agency=e.agency, status="referred" if e.agency else "assigned")
        elif kind == "Escalated":
            row["status"] = "escalated"
        elif kind == "Resolved":
            row.update(status="resolved", outcome=e.outcome, resolved_on=e.resolved_on)
        elif kind == "Closed":
            row["status"] = "closed"
        elif kind == "Reopened":
            status = "referred" if row["agency"] else "assigned" if row["assignee"] else "logged"
            row.update(status=status, outcome=None, resolved_on=None, resolution_due=e.resolution_due)
        elif kind == "EscalatedForBreach":
            row["breaches"] = [*row["breaches"], f"{e.breach}:{e.due_on.isoformat()}"]
        row["version"] = e.originator_version
    return row


script = st.lists(
    st.tuples(st.sampled_from(["assign", "refer", "escalate", "resolve", "close", "reopen", "note", "sweep"]),
              st.integers(0, 2), st.integers(0, 6)),
    min_size=1, max_size=15,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=script)
def test_case_views_equal_a_fold_of_the_events(services: Services, steps: list[tuple[str, int, int]]) -> None:
    app = services.app
    area = unique_area("PropCase")
    cases = [app.log_dispute(category="neighbours", parties=[{"name": "X", "kind": "other"}], site_id=None,
                             area=area, description="d", priority="normal", occurred_on=NOW.date(),
                             stamp=Stamp(CASEWORKER, NOW)).id for _ in range(3)]
    now = NOW
    for action, which, days in steps:
        now += timedelta(days=days)
        case_id = cases[which]
        caseworker, supervisor = Stamp(CASEWORKER, now), Stamp(SUPERVISOR, now)
        try:
            if action == "assign":
                app.assign_dispute(case_id, assignee="prop-cw", agency=None, stamp=supervisor)
            elif action == "refer":
                app.assign_dispute(case_id, assignee=None, agency="street_office", stamp=supervisor)
            elif action == "escalate":
                app.escalate_dispute(case_id, to="management_committee", reason="r", stamp=caseworker)
            elif action == "resolve":
                app.resolve_dispute(case_id, outcome="withdrawn", amount_recovered=None, stamp=caseworker)
            elif action == "close":
                app.close_dispute(case_id, stamp=supervisor)
            elif action == "reopen":
                app.reopen_dispute(case_id, reason="r", stamp=supervisor)
            elif action == "note":
                app.add_dispute_note(case_id, text="t", stamp=caseworker)
            elif action == "sweep":
                app.escalate_breaches([case_id], Stamp(Actor("system", Role.SYSTEM), now))
        except DomainError:
            pass
    head = services.head()
    for name in ("case_details", "open_cases", "statistics"):
        assert services.wait_for(name, head, 10)

    with services.pool.connection() as conn:
        for case_id in cases:
            expected = fold_case(list(app.events.get(case_id)))
            detail = conn.execute("SELECT * FROM case_details WHERE id = %s", (case_id,)).fetchone()
            assert {k: detail[k] for k in expected} == expected
            open_row = conn.execute("SELECT * FROM open_cases WHERE id = %s", (case_id,)).fetchone()
            if expected["status"] == "closed":
                assert open_row is None
            else:
                assert open_row is not None and {k: open_row[k] for k in expected} == expected
        stats = conn.execute(
            "SELECT count(*) AS opened, count(resolved_on) AS resolved FROM stat_disputes WHERE area = %s", (area,)
        ).fetchone()
    resolved_now = sum(1 for c in cases if fold_case(list(app.events.get(c)))["resolved_on"] is not None)
    assert (stats["opened"], stats["resolved"]) == (3, resolved_now)
