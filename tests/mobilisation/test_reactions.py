"""What the system does by itself on the beat: a standby for a grid whose call went unanswered
past the setting, released when the grid's own person is on site; nobody who answered is
ever moved by it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.coverage import milestones, risk
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.mobilisation import assignments
from mobilize.mobilisation.area import AreaScope
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import HOLDING, Assignment, Event, Mobilisation, Notification, Responder
from mobilize.peacetime.leave import back_on_duty
from tests.people import away_from_now
from tests.wartime import (
    activate_now,
    check_in_at_centre,
    district_commander,
    holders,
    phone,
    write,
)

HOLD = [s.value for s in HOLDING]
SPARE = 2  # volunteers kept out of the call-up: the only free people once it is made


@pytest.fixture
def spare(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> list[int]:
    """The tiny district imported; two free volunteers on leave while it is switched, so
    nobody calls them, then back: the reserve a standby can come from."""
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
        ids = list(
            session.scalars(
                select(Responder.id)
                .where(Responder.kind == "volunteer", Responder.team_id.is_(None))
                .order_by(Responder.id)
                .limit(SPARE)
            )
        )
    assert len(ids) == SPARE
    away_from_now(engine, clock, Responder.id.in_(ids))
    return ids


@pytest.fixture
def mobilisation(engine: Engine, spare: list[int], clock: ManualClock) -> Mobilisation:
    commander = district_commander(engine)
    found = activate_now(
        engine, actor=commander, clock=clock, scope=AreaScope.parse("district"),
        kind="epidemic", title="演练",
    ).mobilisation  # fmt: skip
    for rid in spare:
        write(engine, back_on_duty, actor=commander, clock=clock, responder_id=rid)
    return found


def a_held_grid(engine: Engine) -> int:
    """The first micro-grid someone holds (ids differ between backends and runs)."""
    with Session(engine) as session:
        found = session.scalar(
            select(Assignment.grid_id)
            .where(Assignment.status.in_(HOLD), Assignment.grid_id.is_not(None))
            .order_by(Assignment.grid_id)
            .limit(1)
        )
    assert found is not None
    return found


def quiet_but(engine: Engine, clock: ManualClock, grid: int) -> None:
    """Everyone outside `grid` answers and promises to be there in 20 minutes: on track."""
    with Session(engine) as session:
        others = session.scalars(
            select(Assignment).where(Assignment.status == "assigned", Assignment.grid_id != grid)
        ).all()
    for a in others:
        write(engine, assignments.acknowledge, actor=phone(a), clock=clock, assignment_id=a.id,
              eta_minutes=20)  # fmt: skip


def beat(engine: Engine, clock: ManualClock) -> list[str]:
    return write(engine, milestones.run_due, clock=clock)


def auto_events(engine: Engine, mobilisation: Mobilisation) -> list[tuple[str, str, dict]]:
    with Session(engine) as session:
        return [
            (kind, subject, payload)
            for kind, subject, payload in session.execute(
                select(Event.kind, Event.subject_id, Event.payload)
                .where(Event.mobilisation_id == mobilisation.id, Event.actor == "system:auto")
                .order_by(Event.mseq)
            )
        ]


def test_an_unanswered_grid_gets_a_standby_after_the_setting_and_it_is_released_when_its_own_person_arrives(  # noqa: E501
    engine: Engine, mobilisation: Mobilisation, spare: list[int], clock: ManualClock
) -> None:
    grid = a_held_grid(engine)
    own = holders(engine, grid)
    quiet_but(engine, clock, grid)
    timeout = StaffingRule.from_dict(mobilisation.rule).ack_timeout_minutes
    assert timeout == 12

    clock.set(mobilisation.t0 + timedelta(minutes=11))
    beat(engine, clock)  # still within the setting: the call is counted on
    assert [a.id for a in holders(engine, grid)] == [a.id for a in own]
    assert auto_events(engine, mobilisation) == []

    clock.set(mobilisation.t0 + timedelta(minutes=13))  # past it: nobody is coming
    beat(engine, clock)
    now_holding = holders(engine, grid)
    standby = [a for a in now_holding if a.id not in {o.id for o in own}]
    assert len(standby) == 1
    (sent,) = standby
    assert sent.responder_id in spare  # one of the free, never someone holding a slot
    assert (sent.role, sent.source, sent.pinned, sent.status) == (
        "standby", "auto", True, "assigned",
    )  # fmt: skip
    assert [(a.id, a.grid_id, a.status) for a in own] == [
        (a.id, a.grid_id, a.status) for a in now_holding if a.id != sent.id
    ]  # its own people are still called there
    assert [(k, s, p["grid"], p["cause"]) for k, s, p in auto_events(engine, mobilisation)] == [
        ("assignment.created", str(sent.responder_id), grid, "auto")
    ]
    # The grid stays on the commanders' list: someone nearer would still be worth sending.
    with Session(engine) as session:
        _, listed = risk.risk_for(
            session,
            actor=district_commander(engine),
            mobilisation_id=mobilisation.id,
            now=clock.now(),
        )
    assert {r.grid_id for r in listed} == {grid}
    # One standby at a time: the next beat sends no second one.
    clock.advance(timedelta(minutes=1))
    beat(engine, clock)
    assert len(holders(engine, grid)) == len(own) + 1

    # The grid's own person answers late and arrives first: the standby is released and told.
    first = own[0]
    write(engine, assignments.acknowledge, actor=phone(first), clock=clock,
          assignment_id=first.id, eta_minutes=5)  # fmt: skip
    check_in_at_centre(engine, first, clock)
    clock.advance(timedelta(minutes=1))
    beat(engine, clock)
    with Session(engine) as session:
        after = session.get(Assignment, sent.id)
        assert after is not None and (after.status, after.reason) == (
            "released", "standby_released",
        )  # fmt: skip
        told = session.scalars(
            select(Notification.kind).where(
                Notification.recipient
                == session.scalar(select(Responder.phone).where(Responder.id == sent.responder_id))
            )
        ).all()
    assert told == ["assignment", "released"]
    assert auto_events(engine, mobilisation)[-1][0] == "assignment.released"
    assert [a.id for a in holders(engine, grid)] == [a.id for a in own]


def test_the_system_never_moves_anyone_who_answered(
    engine: Engine, mobilisation: Mobilisation, spare: list[int], clock: ManualClock
) -> None:
    """With the reserve gone, a grid left unanswered could only be staffed by taking someone
    who answered from a grid that can spare them: the commanders' list suggests it, the
    system does not do it."""
    commander = district_commander(engine)
    for rid in spare:  # the reserve goes on leave again
        write(engine, assignments.mark_unavailable, actor=commander, clock=clock,
              responder_id=rid, reason="住院")  # fmt: skip
    grid = a_held_grid(engine)
    quiet_but(engine, clock, grid)
    with Session(engine) as session:
        answered = {
            a.id: (a.grid_id, a.status)
            for a in session.scalars(select(Assignment).where(Assignment.status.in_(HOLD)))
            if a.status != "assigned"
        }
    clock.set(mobilisation.t0 + timedelta(minutes=13))
    with Session(engine) as session:
        _, listed = risk.risk_for(
            session, actor=commander, mobilisation_id=mobilisation.id, now=clock.now()
        )
    suggestion = next(r.suggestion for r in listed if r.grid_id == grid)
    assert suggestion is not None and suggestion.from_grid_id is not None  # a commander may
    for _ in range(3):
        beat(engine, clock)
        clock.advance(timedelta(minutes=1))
    with Session(engine) as session:
        still = {
            a.id: (a.grid_id, a.status)
            for a in session.scalars(select(Assignment).where(Assignment.id.in_(answered)))
        }
    assert still == answered
    assert auto_events(engine, mobilisation) == []


def test_two_beats_at_once_send_one_standby(
    engine: Engine, mobilisation: Mobilisation, spare: list[int], clock: ManualClock
) -> None:
    grid = a_held_grid(engine)
    own = len(holders(engine, grid))
    quiet_but(engine, clock, grid)
    clock.set(mobilisation.t0 + timedelta(minutes=13))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait()
            beat(engine, clock)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(holders(engine, grid)) == own + 1
    created = [e for e in auto_events(engine, mobilisation) if e[0] == "assignment.created"]
    assert len(created) == 1
