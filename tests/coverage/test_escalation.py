"""Escalation at T0 + 120 and missed grids at the deadline, on simulated time, exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.coverage.milestones import run_due
from mobilize.db import make_sessionmaker, transaction
from mobilize.mobilisation import assignments, field
from mobilize.models import (
    Assignment,
    Event,
    Grid,
    GridState,
    Milestone,
    Notification,
)
from mobilize.notify import LogNotifier
from mobilize.scheduler import Scheduler
from mobilize.worker.inprocess import InProcessDispatcher
from tests.wartime import activated, phone, write


def kinds(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(Event.kind).order_by(Event.seq)))


def wait_for(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("not reached in time")


def mobilise(engine: Engine, clock: ManualClock, grid_id: int) -> None:
    """Everyone sent to this grid answers and checks in at its centre."""
    with Session(engine) as session:
        grid = session.get(Grid, grid_id)
        people = session.scalars(
            select(Assignment).where(Assignment.grid_id == grid_id, Assignment.status == "assigned")
        ).all()
    assert grid is not None
    for a in people:
        write(engine, assignments.acknowledge, actor=phone(a), clock=clock, assignment_id=a.id,
              eta_minutes=20)  # fmt: skip
        write(engine, field.check_in, actor=phone(a), clock=clock, assignment_id=a.id,
              lon=grid.centre.x, lat=grid.centre.y)  # fmt: skip


def test_the_scheduler_escalates_at_minute_120_and_records_misses_at_the_deadline(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    mobilisation = activated(engine, tiny_bundle, clock, "epidemic")
    with Session(engine) as session:
        grids = list(session.scalars(select(GridState.grid_id).order_by(GridState.grid_id)))
    clock.advance(timedelta(minutes=10))
    mobilise(engine, clock, grids[0])  # one grid is staffed; nobody else answers

    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    beat = Scheduler(engine, clock, dispatcher, interval_s=0.02)
    beat.start()
    try:
        clock.set(mobilisation.t0 + timedelta(minutes=119, seconds=59))
        time.sleep(0.3)  # many ticks: nothing is due yet
        assert "grid.escalated" not in kinds(engine)

        clock.set(mobilisation.t0 + timedelta(minutes=120))
        wait_for(lambda: "mobilisation.escalated" in kinds(engine))
        time.sleep(0.2)  # more ticks: still once
        with Session(engine) as session:
            escalated = session.scalars(select(Event).where(Event.kind == "grid.escalated")).all()
            states = {s.grid_id: s for s in session.scalars(select(GridState))}
            milestone = session.get(Milestone, (mobilisation.id, "escalation"))
        assert {int(e.subject_id) for e in escalated} == set(grids[1:])  # all but the staffed
        assert all(e.payload["reasons"] == ["nobody_acknowledged"] for e in escalated)
        assert all(e.occurred_at == mobilisation.t0 + timedelta(minutes=120) for e in escalated)
        assert states[grids[0]].escalated_at is None
        assert states[grids[1]].escalated_at == mobilisation.t0 + timedelta(minutes=120)
        assert milestone is not None and milestone.figures["grids"] == len(grids) - 1
        dispatcher.wait()
        with Session(engine) as session:
            sent = session.scalars(select(Notification).where(Notification.kind == "escalation"))
            (message,) = sent.all()
        assert message.recipient.startswith("street:") and message.status == "sent"
        assert "预警" in message.text and f"{len(grids) - 1}个" in message.text

        clock.set(mobilisation.deadline)
        wait_for(lambda: "mobilisation.deadline_passed" in kinds(engine))
    finally:
        beat.stop()
    with Session(engine) as session:
        missed = session.scalars(select(Event).where(Event.kind == "grid.missed")).all()
        states = {s.grid_id: s for s in session.scalars(select(GridState))}
    assert {int(e.subject_id) for e in missed} == set(grids[1:])
    assert states[grids[1]].missed_at == mobilisation.deadline
    assert states[grids[0]].missed_at is None and states[grids[0]].status == "mobilised"
    assert kinds(engine).count("mobilisation.escalated") == 1


def test_the_escalation_minute_is_set_per_kind(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    mobilisation = activated(engine, tiny_bundle, clock, "fire")  # a fire: after one hour
    factory = make_sessionmaker(engine)
    clock.set(mobilisation.t0 + timedelta(minutes=59))
    with transaction(factory) as session:
        run_due(session, clock=clock)
    assert "mobilisation.escalated" not in kinds(engine)
    clock.set(mobilisation.t0 + timedelta(minutes=60))
    with transaction(factory) as session:
        run_due(session, clock=clock)
    assert "mobilisation.escalated" in kinds(engine)


@pytest.mark.parametrize("runners", [4])
def test_racing_schedulers_escalate_once(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, runners: int
) -> None:
    mobilisation = activated(engine, tiny_bundle, clock, "epidemic")
    clock.set(mobilisation.t0 + timedelta(minutes=121))
    barrier = threading.Barrier(runners)
    failures: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            with transaction(make_sessionmaker(engine)) as session:
                run_due(session, clock=clock)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures
    assert kinds(engine).count("mobilisation.escalated") == 1
    with Session(engine) as session:
        per_grid = session.scalars(select(Event.subject_id).where(Event.kind == "grid.escalated"))
        ids = per_grid.all()
    assert len(ids) == len(set(ids)) == 20
