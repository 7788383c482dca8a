"""Property: random command sequences never bring a dispute to a state the rules forbid."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.common import Actor, DomainError, Role, Stamp
from domain.disputes import ALLOWED, Action, CaseStatus, DisputeCase, SlaPolicy

START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
ACTORS = [Actor("cw-1", Role.CASEWORKER), Actor("cw-2", Role.CASEWORKER), Actor("sup-1", Role.SUPERVISOR),
          Actor("sup-2", Role.SUPERVISOR)]

ACTIONS = {"assign": Action.ASSIGN, "refer": Action.ASSIGN, "note": Action.NOTE, "mediation": Action.MEDIATION,
           "escalate": Action.ESCALATE, "resolve": Action.RESOLVE, "close": Action.CLOSE, "reopen": Action.REOPEN}

steps = st.lists(
    st.tuples(
        st.sampled_from(["assign", "refer", "note", "mediation", "escalate", "resolve", "close", "reopen", "sweep"]),
        st.integers(0, len(ACTORS) - 1),
        st.integers(0, 5),  # days that pass before the step
    ),
    max_size=25,
)


def act(case: DisputeCase, action: str, stamp: Stamp) -> None:
    if action == "assign":
        case.assign(assignee="cw-1", agency=None, stamp=stamp)
    elif action == "refer":
        case.assign(assignee=None, agency="labour_inspection", stamp=stamp)
    elif action == "note":
        case.add_note(text="n", stamp=stamp)
    elif action == "mediation":
        case.hold_mediation(held_on=stamp.today, participants=["a"], outcome="o", stamp=stamp)
    elif action == "escalate":
        case.escalate(to="management_committee", reason="r", stamp=stamp)
    elif action == "resolve":
        case.resolve(outcome="mediated_agreement", amount_recovered=Decimal("10.00"), stamp=stamp)
    elif action == "close":
        case.close(stamp=stamp)
    elif action == "reopen":
        case.reopen(reason="r", sla=SlaPolicy(), stamp=stamp)
    elif action == "sweep":
        case.escalate_breaches(Stamp(Actor("system", Role.SYSTEM), stamp.recorded_at))


@settings(max_examples=200, deadline=None)
@given(script=steps)
def test_random_commands_keep_every_rule(script: list[tuple[str, int, int]]) -> None:
    now = START
    case = DisputeCase.log(category="wages_and_labour", parties=[{"name": "E", "kind": "employer"}], site_id=None,
                           area="A", description="d", priority="high", occurred_on=date(2026, 10, 30),
                           sla=SlaPolicy(), stamp=Stamp(ACTORS[0], now))
    events: list[Any] = list(case.collect_events())
    for action, who, days in script:
        now += timedelta(days=days)
        status_before = CaseStatus(case.status)
        try:
            act(case, action, Stamp(ACTORS[who], now))
        except DomainError:
            assert not case.collect_events(), "a refused command left an event behind"
            continue
        new = list(case.collect_events())
        events.extend(new)
        if new and action in ACTIONS:
            assert ACTIONS[action] in ALLOWED[status_before], f"{action} changed a {status_before} case"
        # Rules that must hold after every step:
        assert (case.resolved_by is not None) == (case.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED))
        assert len(case.breaches) == len(set(case.breaches)), "a breach was recorded twice"
        if action == "close" and new:
            resolved = [e for e in events if type(e).__name__ == "Resolved"][-1]
            assert resolved.actor_id != new[-1].actor_id, "the resolver closed the case"
    # The state is exactly what the stored events say.
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert {k: v for k, v in vars(replayed).items() if not k.startswith("_")} == {
        k: v for k, v in vars(case).items() if not k.startswith("_")}
