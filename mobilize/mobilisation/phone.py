"""The phone's view of wartime: my assignment, with everything needed to get there and work."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.db.session import AnyRow, core_rows
from mobilize.models import (
    HOLDING,
    Assignment,
    Grid,
    Household,
    Mobilisation,
    MobilisationStatus,
    PartyOrganisation,
    Responder,
)
from mobilize.tasks.records import LISTED_HOUSEHOLD, household_records, in_visiting_order


@dataclass
class PhoneView:
    """Where and until when; who else is there and which households are loaded apart
    (`teammates`, `leader`, `grid_households`), only when the phone asks for them: the
    phone's home screen polls this and lists households through its tasks instead."""

    assignment: Assignment
    mobilisation: Mobilisation
    grid: Grid
    minutes_left: float


def my_assignment(session: Session, *, actor: Actor, clock: Clock) -> PhoneView | None:
    """The signed-in responder's current assignment in an active mobilisation, if any."""
    mine = actor.responder_ids
    row = session.execute(
        select(Assignment, Mobilisation)
        .join(Mobilisation)
        .where(
            Assignment.responder_id.in_(mine),
            Assignment.status.in_(HOLDING),
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
    minutes_left = (mobilisation.deadline - clock.now()).total_seconds() / 60.0
    return PhoneView(assignment, mobilisation, grid, round(minutes_left, 1))


def grid_households(
    session: Session, *, mobilisation_id: int, grid_id: int
) -> tuple[list[AnyRow], dict[tuple[int, str], AnyRow]]:
    """The micro-grid's households in visiting order, and what was recorded at each."""
    ordered = in_visiting_order(
        core_rows(
            session,
            select(*LISTED_HOUSEHOLD).where(
                Household.micro_grid_id == grid_id, Household.current()
            ),
        )
    )
    return ordered, household_records(session, mobilisation_id, [h.id for h in ordered])


def teammates(
    session: Session, *, mobilisation_id: int, grid_id: int, besides: int
) -> list[tuple[Responder, Assignment]]:
    """The others holding the grid in the mobilisation (all but assignment `besides`)."""
    rows = session.execute(
        select(Responder, Assignment)
        .join(Assignment, Assignment.responder_id == Responder.id)
        .where(
            Assignment.mobilisation_id == mobilisation_id,
            Assignment.grid_id == grid_id,
            Assignment.status.in_(HOLDING),
            Assignment.id != besides,
        )
        .order_by(Responder.id)
    ).all()
    return [(r, a) for r, a in rows]


def leader(session: Session, *, mobilisation_id: int, community_id: int) -> Responder | None:
    """The community's temporary party organisation's leader, once one is named."""
    leader_id = session.scalar(
        select(PartyOrganisation.leader_id).where(
            PartyOrganisation.mobilisation_id == mobilisation_id,
            PartyOrganisation.community_id == community_id,
        )
    )
    return session.get(Responder, leader_id) if leader_id else None
