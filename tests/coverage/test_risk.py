"""Grids projected to miss the deadline, each with its reason, and the one-step fix."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.coverage import risk
from mobilize.errors import DomainError
from mobilize.mobilisation import assignments, risk_fix
from mobilize.mobilisation.outcome import Conflict, Outcome
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import HOLDING, Assignment, GridState, Mobilisation, Responder
from tests.people import away_from_now
from tests.wartime import activated, check_in_at_centre, district_commander, holders, phone, write

HOLD = [s.value for s in HOLDING]


@pytest.fixture
def mobilisation(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Mobilisation:
    return activated(engine, tiny_bundle, clock)


def risks(
    engine: Engine, clock: ManualClock, mobilisation: Mobilisation
) -> dict[int, risk.GridRisk]:
    with Session(engine) as session:
        _, found = risk.risk_for(
            session,
            actor=district_commander(engine),
            mobilisation_id=mobilisation.id,
            now=clock.now(),
            only_at_risk=False,
            limit=1000,
        )
    return {r.grid_id: r for r in found}


def grids_by_holders(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return list(session.scalars(select(GridState.grid_id).order_by(GridState.grid_id)).all())


def everyone_answers(engine: Engine, clock: ManualClock, *, but: tuple[int, ...], eta: int) -> None:
    """Everyone holding a slot outside `but` acknowledges: committed, re-plans leave them."""
    with Session(engine) as session:
        rows = session.scalars(
            select(Assignment).where(
                Assignment.status == "assigned", Assignment.grid_id.not_in(but)
            )
        ).all()
    for a in rows:
        write(engine, assignments.acknowledge, actor=phone(a), clock=clock, assignment_id=a.id,
              eta_minutes=eta)  # fmt: skip


def nobody_else_free(engine: Engine, clock: ManualClock) -> None:
    """Setup: everyone not holding a slot is on leave, so a freed slot cannot be refilled."""
    holding = select(Assignment.responder_id).where(Assignment.status.in_(HOLD))
    away_from_now(engine, clock, Responder.id.not_in(holding))


def accept(
    engine: Engine,
    clock: ManualClock,
    mobilisation: Mobilisation,
    grid: int,
    fix: risk.Suggestion,
    key: str | None = None,
) -> Outcome:
    """The district commander accepts a suggested fix for `grid`, as the wall's button does."""
    return write(
        engine,
        risk_fix.send_to_grid,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=mobilisation.id,
        grid_id=grid,
        responder_id=fix.responder_id,
        from_grid_id=fix.from_grid_id,
        client_mutation_id=key,
    )


def test_a_fresh_activation_is_on_track(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    found = risks(engine, clock, mobilisation)
    assert len(found) == 20
    assert not [r for r in found.values() if r.at_risk]
    for r in found.values():  # the engine planned everyone to arrive within reach
        assert r.projected is not None and r.projected <= mobilisation.deadline


def test_each_reason_on_simulated_time(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    grids = grids_by_holders(engine)
    far, late, declined, gone = grids[0], grids[1], grids[2], grids[3]
    commander = district_commander(engine)
    clock.advance(timedelta(minutes=5))
    everyone_answers(engine, clock, but=(far, late, declined, gone), eta=40)
    for a in holders(engine, far):  # everyone there promises five hours
        write(engine, assignments.acknowledge, actor=phone(a), clock=clock, assignment_id=a.id,
              eta_minutes=300)  # fmt: skip
    for a in holders(engine, late):  # promises ten minutes, then is not there
        write(engine, assignments.acknowledge, actor=phone(a), clock=clock, assignment_id=a.id,
              eta_minutes=10)  # fmt: skip
    nobody_else_free(engine, clock)
    for a in holders(engine, gone):  # the re-plan after the declines must not take them
        write(engine, assignments.set_pinned, actor=commander, clock=clock, assignment_id=a.id,
              pinned=True)  # fmt: skip
    for a in holders(engine, declined):
        write(engine, assignments.decline, actor=phone(a), clock=clock, assignment_id=a.id,
              reason="家中有病人")  # fmt: skip
    for a in holders(engine, gone):
        write(engine, assignments.mark_unavailable, actor=commander, clock=clock,
              responder_id=a.responder_id, reason="住院")  # fmt: skip

    clock.advance(timedelta(minutes=15))  # T0 + 20
    found = risks(engine, clock, mobilisation)
    assert found[far].reasons == [risk.RiskReason.TOO_FAR]
    assert found[far].minutes_late(mobilisation.deadline) == 5 + 300 - 180
    assert found[late].reasons == [risk.RiskReason.NOT_ARRIVED_BY_ETA]
    assert found[late].projected == clock.now() + timedelta(minutes=10)  # the late slip
    assert found[declined].reasons == [risk.RiskReason.DECLINED]
    assert found[declined].projected is None
    assert found[gone].reasons == [risk.RiskReason.NOBODY_ASSIGNED]
    others = [g for g in grids if g not in (far, late, declined, gone)]
    assert not any(found[g].at_risk for g in others)
    # at-risk grids come first, never-staffed ones before late ones
    with Session(engine) as session:
        _, ordered = risk.risk_for(
            session, actor=commander, mobilisation_id=mobilisation.id, now=clock.now()
        )
    assert ordered[0].projected is None and all(r.at_risk for r in ordered)
    assert {r.grid_id for r in ordered} == {far, late, declined, gone}
    # Late by as long as an unanswered call is waited for, they are no longer counted on: a
    # fix need not beat an arrival that keeps slipping (the drill's no-shows blocked every fix).
    rule = StaffingRule.from_dict(mobilisation.rule)
    clock.advance(timedelta(minutes=rule.ack_timeout_minutes))
    later = risks(engine, clock, mobilisation)[late]
    assert later.reasons == [risk.RiskReason.NOT_ARRIVED_BY_ETA] and later.projected is None


def test_a_grid_staffed_after_the_aim_is_at_risk_long_before_the_deadline(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    """The deadline is three hours; the command centres aim at one (`aim_minutes`): a grid
    whose people promise to be there at minute 95 is at risk at minute 5, when a nearer person
    could still be sent, and one promising minute 55 is not."""
    grids = grids_by_holders(engine)
    slow, steady = grids[0], grids[1]
    clock.advance(timedelta(minutes=5))
    everyone_answers(engine, clock, but=(slow, steady), eta=30)
    for grid, eta in ((slow, 90), (steady, 50)):
        for a in holders(engine, grid):
            write(engine, assignments.acknowledge, actor=phone(a), clock=clock,
                  assignment_id=a.id, eta_minutes=eta)  # fmt: skip
    found = risks(engine, clock, mobilisation)
    assert found[slow].at_risk and found[slow].reasons == [risk.RiskReason.TOO_FAR]
    assert found[slow].projected == mobilisation.t0 + timedelta(minutes=95)
    assert not found[steady].at_risk
    assert StaffingRule.from_dict(mobilisation.rule).aim_minutes == 60


def test_calls_left_unanswered_stop_counting(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    clock.advance(timedelta(minutes=12))
    assert not any(r.at_risk for r in risks(engine, clock, mobilisation).values())
    clock.advance(timedelta(minutes=1))  # T0 + 13: the 12-minute ack timeout has passed
    found = risks(engine, clock, mobilisation).values()
    assert all(r.reasons == [risk.RiskReason.NOBODY_ACKNOWLEDGED] for r in found)
    assert all(r.projected is None for r in found)


def test_accepting_the_suggested_fix_staffs_the_grid(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    grid = grids_by_holders(engine)[2]
    everyone_answers(engine, clock, but=(grid,), eta=30)
    nobody_else_free(engine, clock)
    for a in holders(engine, grid):
        write(engine, assignments.decline, actor=phone(a), clock=clock, assignment_id=a.id,
              reason="不在本地")  # fmt: skip
    # Everyone in the tiny district is called, so the fix moves a person another grid can
    # spare (the test once "brought back" a volunteer: there was never one to bring back).
    found = risks(engine, clock, mobilisation)[grid]
    assert found.at_risk and found.suggestion is not None
    fix = found.suggestion
    assert fix.arrives_at <= mobilisation.deadline

    outcome = accept(engine, clock, mobilisation, grid, fix, key="fix-1")
    assert outcome.assignment is not None
    assert outcome.assignment.grid_id == grid and outcome.assignment.pinned
    after = risks(engine, clock, mobilisation)[grid]
    assert not after.at_risk and after.projected is not None
    # a retry of the same click changes nothing more
    again = accept(engine, clock, mobilisation, grid, fix, key="fix-1")
    assert again.replayed
    assert len(holders(engine, grid)) == 1


def test_two_commanders_accepting_the_same_fix_at_once(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    """Both click the fix that sends the same person: one wins, the other is told the person
    was moved meanwhile, and the person holds exactly one grid."""
    grid = grids_by_holders(engine)[5]
    everyone_answers(engine, clock, but=(grid,), eta=30)
    nobody_else_free(engine, clock)
    for a in holders(engine, grid):
        write(engine, assignments.decline, actor=phone(a), clock=clock, assignment_id=a.id,
              reason="无法到岗")  # fmt: skip
    fix = risks(engine, clock, mobilisation)[grid].suggestion
    assert fix is not None and fix.from_grid_id is not None  # from a grid with people to spare
    barrier = threading.Barrier(2)
    results: list[object] = []

    def click(key: str) -> None:
        barrier.wait()
        try:
            results.append(accept(engine, clock, mobilisation, grid, fix, key=key))
        except DomainError as exc:
            results.append(exc)

    threads = [threading.Thread(target=click, args=(key,)) for key in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(refused) == 1 and isinstance(refused[0], Conflict), results
    with Session(engine) as session:
        held = session.scalars(
            select(Assignment).where(
                Assignment.responder_id == fix.responder_id, Assignment.status.in_(HOLD)
            )
        ).all()
    assert len(held) == 1 and held[0].grid_id == grid


def test_a_fix_never_takes_a_staffed_grid_below_its_minimum_on_site(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    """A grid with one person on site and one on the way can spare the one on the way, never
    the one on site: the drill found fixes that turned staffed grids back into waiting ones."""
    grid = grids_by_holders(engine)[2]
    everyone_answers(engine, clock, but=(grid,), eta=30)
    nobody_else_free(engine, clock)
    for g in grids_by_holders(engine):
        people = holders(engine, g)
        if g != grid and len(people) >= 2:
            check_in_at_centre(engine, people[0], clock)  # staffed, with one more coming
    for a in holders(engine, grid):
        write(engine, assignments.decline, actor=phone(a), clock=clock, assignment_id=a.id,
              reason="无法到岗")  # fmt: skip
    staffed = mobilised_grids(engine)
    assert staffed  # the setup made some grids staffed with someone to spare
    fix = risks(engine, clock, mobilisation)[grid].suggestion
    assert fix is not None and fix.from_grid_id in staffed
    with Session(engine) as session:
        sent = session.scalars(
            select(Assignment.status).where(Assignment.responder_id == fix.responder_id)
        ).one()
    assert sent != "on_site"  # the one on the way goes; the one on site stays
    accept(engine, clock, mobilisation, grid, fix)
    assert staffed <= mobilised_grids(engine)


def mobilised_grids(engine: Engine) -> set[int]:
    with Session(engine) as session:
        return set(
            session.scalars(
                select(GridState.grid_id).where(GridState.status.in_(["mobilised", "checked"]))
            )
        )
