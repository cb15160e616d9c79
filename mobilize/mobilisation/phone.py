"""The phone's view of wartime: my assignment, with everything needed to get there and work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.models import (
    HOLDING,
    Assignment,
    Grid,
    Household,
    HouseholdRecord,
    Mobilisation,
    MobilisationStatus,
    PartyOrganisation,
    Responder,
    Role,
)
from mobilize.tasks.service import PRIORITY_TAGS


@dataclass
class PhoneView:
    assignment: Assignment
    mobilisation: Mobilisation
    grid: Grid
    households: list[Household]
    records: dict[tuple[int, str], HouseholdRecord]  # (household, kind) -> record
    teammates: list[tuple[Responder, Assignment]]
    leader: Responder | None
    minutes_left: float


def my_assignment(session: Session, *, actor: Actor, clock: Clock) -> PhoneView | None:
    """The signed-in responder's current assignment in an active mobilisation, if any."""
    mine = [b.scope_id for b in actor.bindings if b.role is Role.RESPONDER]
    row = session.execute(
        select(Assignment, Mobilisation)
        .join(Mobilisation)
        .where(
            Assignment.responder_id.in_(mine),
            Assignment.status.in_([s.value for s in HOLDING]),
            Mobilisation.status == MobilisationStatus.ACTIVE.value,
        )
        .order_by(Mobilisation.t0.desc(), Assignment.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    assignment, mobilisation = row
    grid = session.get(Grid, assignment.grid_id)
    assert grid is not None
    households = session.scalars(select(Household).where(Household.micro_grid_id == grid.id)).all()

    def rank(h: Household) -> tuple[int, str]:
        return next(
            (i for i, t in enumerate(PRIORITY_TAGS) if h.tags & t.bit), len(PRIORITY_TAGS)
        ), h.code

    records = {
        (r.household_id, r.kind): r
        for r in session.scalars(
            select(HouseholdRecord).where(
                HouseholdRecord.mobilisation_id == mobilisation.id,
                HouseholdRecord.household_id.in_([h.id for h in households]),
            )
        )
    }
    teammates = session.execute(
        select(Responder, Assignment)
        .join(Assignment, Assignment.responder_id == Responder.id)
        .where(
            Assignment.mobilisation_id == mobilisation.id,
            Assignment.grid_id == grid.id,
            Assignment.status.in_([s.value for s in HOLDING]),
            Assignment.id != assignment.id,
        )
        .order_by(Responder.id)
    ).all()
    leader_id = session.scalar(
        select(PartyOrganisation.leader_id).where(
            PartyOrganisation.mobilisation_id == mobilisation.id,
            PartyOrganisation.community_id == grid.community_id,
        )
    )
    leader = session.get(Responder, leader_id) if leader_id else None
    minutes_left = (mobilisation.deadline - clock.now()).total_seconds() / 60.0
    return PhoneView(
        assignment,
        mobilisation,
        grid,
        sorted(households, key=rank),
        records,
        [(r, a) for r, a in teammates],
        leader,
        round(minutes_left, 1),
    )
