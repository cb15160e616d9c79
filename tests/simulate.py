"""A mobilisation played out on simulated time: phones acknowledge, check in, decline and
record households, a commander moves people, the scheduler escalates and closes the
deadline. Seeded, so a test can replay the same morning."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.clock import ManualClock
from mobilize.coverage import milestones
from mobilize.errors import DomainError
from mobilize.mobilisation import assignments, field
from mobilize.models import Assignment, Grid, Mobilisation, Task
from mobilize.tasks import records
from tests.wartime import district_commander, phone, write

ACTIONS = ("ack", "check_in", "check_in", "decline", "record", "reassign")


def _act(engine: Engine, clock: ManualClock, rng: random.Random, action: str) -> None:
    with Session(engine) as session:
        held = session.scalars(select(Assignment).order_by(Assignment.id)).all()
        grids = {g.id: g for g in session.scalars(select(Grid).where(Grid.level == "micro"))}
    a = rng.choice(held)
    if action == "ack":
        eta = rng.choice([None, 10, 30, 90])
        write(
            engine,
            assignments.acknowledge,
            actor=phone(a),
            clock=clock,
            assignment_id=a.id,
            eta_minutes=eta,
        )
    elif action == "check_in":
        assert a.grid_id is not None  # everyone in a solved plan holds a grid
        g = grids[a.grid_id]
        write(
            engine,
            field.check_in,
            actor=phone(a),
            clock=clock,
            assignment_id=a.id,
            lon=g.centre.x,
            lat=g.centre.y,
        )
    elif action == "decline":
        write(
            engine,
            assignments.decline,
            actor=phone(a),
            clock=clock,
            assignment_id=a.id,
            reason="不能到场",
        )
    elif action == "reassign":
        write(
            engine,
            assignments.reassign,
            actor=district_commander(engine),
            clock=clock,
            assignment_id=a.id,
            grid_id=rng.choice(sorted(grids)),
            from_grid_id=a.grid_id,
        )
    else:
        with Session(engine) as session:
            task = session.scalars(
                select(Task).where(Task.grid_id == a.grid_id, Task.kind == "household_check")
            ).first()
            households = records.ordered_households(session, task) if task else []
        if task and households:
            write(
                engine,
                records.record_household,
                actor=phone(a),
                clock=clock,
                task_id=task.id,
                household_id=rng.choice(households).id,
                kind="check",
                result="ok",
            )


def simulate(
    engine: Engine,
    clock: ManualClock,
    rng: random.Random,
    *,
    steps: int,
    max_gap_minutes: int = 4,
    actions: tuple[str, ...] = ACTIONS,
    before_time_moves: Callable[[int], None] | None = None,
) -> None:
    """`steps` random actions, each after 0..`max_gap_minutes` simulated minutes, running
    the scheduler's milestones as their times pass. Illegal moves (a declined person
    acknowledging...) are refused by the services, as they should be, and skipped.
    `before_time_moves(step)` is called when all that happens at an instant has happened."""
    for step in range(steps):
        gap = rng.randint(0, max_gap_minutes)
        if gap and before_time_moves is not None:
            before_time_moves(step)
        clock.advance(timedelta(minutes=gap))
        with contextlib.suppress(DomainError):
            _act(engine, clock, rng, rng.choice(actions))
        write(engine, milestones.run_due, clock=clock)


def the_mobilisation(engine: Engine) -> Mobilisation:
    with Session(engine) as session:
        return session.scalars(select(Mobilisation)).one()
