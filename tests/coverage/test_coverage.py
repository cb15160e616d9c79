"""Grid states on simulated time, and coverage figures that an independent recount confirms."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.coverage import service as coverage
from mobilize.coverage import verify
from mobilize.db import make_sessionmaker, transaction
from mobilize.mobilisation import assignments
from mobilize.models import Assignment, Grid, GridState, GridStatus, Mobilisation, Task
from mobilize.tasks import records
from tests.simulate import simulate
from tests.wartime import activated, check_in_at_centre, phone, write


@pytest.fixture
def mobilisation(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Mobilisation:
    return activated(engine, tiny_bundle, clock)


def state(engine: Engine, grid_id: int) -> GridState:
    with Session(engine) as session:
        return session.scalars(select(GridState).where(GridState.grid_id == grid_id)).one()


def test_a_grid_goes_assigned_arriving_mobilised_checked(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    with Session(engine) as session:
        a = session.scalars(
            select(Assignment).where(Assignment.role == "minimum").order_by(Assignment.id)
        ).first()
        assert a is not None
        grid = session.get(Grid, a.grid_id)
        everyone = session.scalars(select(Assignment).where(Assignment.grid_id == a.grid_id)).all()
    assert grid is not None
    assert state(engine, grid.id).status == "assigned"
    clock.advance(timedelta(minutes=7))
    write(
        engine,
        assignments.acknowledge,
        actor=phone(a),
        clock=clock,
        assignment_id=a.id,
        eta_minutes=20,
    )
    assert state(engine, grid.id).status == "arriving"
    clock.advance(timedelta(minutes=21))
    check_in_at_centre(engine, a, clock)
    mobilised = state(engine, grid.id)
    assert mobilised.status == "mobilised" and mobilised.on_site == 1
    assert mobilised.mobilised_at == mobilisation.t0 + timedelta(minutes=28)
    with Session(engine) as session:
        task = session.scalars(
            select(Task).where(Task.grid_id == grid.id, Task.kind == "household_check")
        ).one()
        households = records.ordered_households(session, task)
    half = len(households) // 2
    for i, household in enumerate(households):
        if i == half:  # half the households checked: mobilised, not yet checked
            assert state(engine, grid.id).status == "mobilised"
        write(
            engine,
            records.record_household,
            actor=phone(a),
            clock=clock,
            task_id=task.id,
            household_id=household.id,
            kind="check",
            result="ok",
        )
    done = state(engine, grid.id)
    assert done.status == "checked" and done.checked == len(households) == done.households
    with Session(engine) as session:
        figures = coverage.coverage(session, mobilisation=mobilisation, now=clock.now())
    assert figures.by_status["checked"] == 1 and figures.curve == [(28, 1)]
    assert figures.minutes_left == 180 - 28
    assert len(everyone) >= 1


def test_recompute_agrees_after_random_events(
    engine: Engine, mobilisation: Mobilisation, clock: ManualClock
) -> None:
    simulate(
        engine,
        clock,
        random.Random(42),
        steps=60,
        actions=("ack", "check_in", "decline", "record"),
    )
    with Session(engine) as session:
        kept = coverage.coverage(session, mobilisation=mobilisation, now=clock.now())
        fresh = verify.recount(session, mobilisation=mobilisation, now=clock.now())
    assert kept.figures() == fresh.figures()
    assert sum(kept.by_status.values()) == 20


def test_coverage_command_verifies(
    engine: Engine, mobilisation: Mobilisation, migrated_url: str
) -> None:
    from typer.testing import CliRunner

    from mobilize.cli.main import app

    ok = CliRunner().invoke(
        app,
        ["coverage", str(mobilisation.id), "--verify", "--json", "--database-url", migrated_url],
    )
    assert ok.exit_code == 0, ok.output
    assert '"grids": 20' in ok.output
    with transaction(make_sessionmaker(engine)) as session:  # corrupt one maintained state
        row = session.scalars(select(GridState).limit(1)).one()
        row.status = GridStatus.CHECKED
    bad = CliRunner().invoke(
        app, ["coverage", str(mobilisation.id), "--verify", "--database-url", migrated_url]
    )
    assert bad.exit_code == 1
    assert "disagree" in bad.output
