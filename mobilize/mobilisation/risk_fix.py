"""Accepting a risk fix: send a suggested person to a grid at risk, moving them if they hold
a slot, calling them up if they are free."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilize import idempotency
from mobilize.auth.actor import Actor
from mobilize.auth.scope import (
    commands_grid,
    commands_mobilisation,
    person_in_place,
    visible,
    visible_mobilisation,
)
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.mobilisation import callup
from mobilize.mobilisation.assignments import (
    assignment_event,
    grid_in_mobilisation,
    reassign,
    travel_to,
)
from mobilize.mobilisation.locks import lock_communities, lock_roster
from mobilize.mobilisation.messages import tell_sent
from mobilize.mobilisation.outcome import AlreadyStoodDown, Conflict, Outcome
from mobilize.models import (
    HOLDING,
    Assignment,
    AssignmentRole,
    AssignmentSource,
    AssignmentStatus,
    Grid,
    Mobilisation,
    MobilisationStatus,
    Responder,
)
from mobilize.peacetime.availability import is_away
from mobilize.settings import DISPLAY_TIMEZONE
from mobilize.tasks.dispatch import promote_staffed


@dataclass(frozen=True)
class Sending:
    """How a person is sent: on a commander's click (pinned, to a work slot) or by the
    system's own reaction (a pinned standby, source `auto`)."""

    pin: bool = True
    role: AssignmentRole = AssignmentRole.WORK
    source: AssignmentSource = AssignmentSource.MANUAL
    cause: str = "risk_fix"


BY_COMMANDER = Sending()


def send_to_grid(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    mobilisation_id: int,
    grid_id: int,
    responder_id: int,
    from_grid_id: int | None,
    display_tz: str = DISPLAY_TIMEZONE,
    client_mutation_id: str | None = None,
    sending: Sending = BY_COMMANDER,
) -> Outcome:
    """Accept a suggested fix: send this person to this grid, pinned. `from_grid_id` is where
    the suggestion saw them (None: free); if they have moved since, the fix is refused rather
    than silently undoing another commander's change."""
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=client_mutation_id,
        operation="acceptRiskFix",
        clock=clock,
        request={"m": mobilisation_id, "g": grid_id, "r": responder_id, "f": from_grid_id},
    )
    mobilisation = visible_mobilisation(session, actor, mobilisation_id)
    if earlier is not None:
        found = session.get(Assignment, earlier["assignment"])
        return Outcome(mobilisation, assignment=found, replayed=True)
    if not (
        commands_mobilisation(session, actor, mobilisation)
        or commands_grid(session, actor, grid_id)
    ):
        raise Forbidden("only the command centres over this grid send people to it")
    if mobilisation.status != MobilisationStatus.ACTIVE.value:
        raise AlreadyStoodDown(mobilisation)
    if not person_in_place(session, actor, responder_id, mobilisation.id):
        # The same answer for someone elsewhere and someone who does not exist: an error
        # names nothing outside the caller's place.
        raise NotFound(
            f"您的范围内没有这个人员 No responder {responder_id} in your place: refresh the list"
        )
    grids = [g for g in (grid_id, from_grid_id) if g is not None]
    lock_communities(
        session,
        mobilisation.id,
        session.scalars(select(Grid.community_id).where(Grid.id.in_(grids))),
    )
    current = session.scalar(
        select(Assignment)
        .where(
            Assignment.mobilisation_id == mobilisation.id, Assignment.responder_id == responder_id
        )
        .with_for_update()
    )
    if current is not None and current.status in HOLDING:
        if current.grid_id != from_grid_id:
            raise Conflict(
                f"人员已被调整 Responder {responder_id} is now at grid {current.grid_id}, not "
                f"{from_grid_id}: refresh the risk list"
            )
        outcome = reassign(
            session,
            actor=actor,
            clock=clock,
            assignment_id=current.id,
            grid_id=grid_id,
            from_grid_id=from_grid_id,
            pin=sending.pin,
            display_tz=display_tz,
            cause=sending.cause,
            role=sending.role,
            source=sending.source,
        )
    else:
        if from_grid_id is not None:
            raise Conflict(
                f"人员已被调整 Responder {responder_id} no longer holds grid {from_grid_id}: "
                "refresh the risk list"
            )
        outcome = _call_up(
            session,
            actor=actor,
            clock=clock,
            mobilisation=mobilisation,
            current=current,
            responder_id=responder_id,
            grid_id=grid_id,
            display_tz=display_tz,
            sending=sending,
        )
    assert outcome.assignment is not None
    idempotency.remember(
        session,
        actor=actor.label,
        key=client_mutation_id,
        result={"assignment": outcome.assignment.id},
    )
    return outcome


def _call_up(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    mobilisation: Mobilisation,
    current: Assignment | None,
    responder_id: int,
    grid_id: int,
    display_tz: str,
    sending: Sending,
) -> Outcome:
    """Assign a free person (never assigned here, or released) to a grid."""
    if current is not None and current.status != AssignmentStatus.RELEASED.value:
        raise InvalidInput("responderId", f"this person has {current.status} in this mobilisation")
    responder = session.scalar(
        select(Responder).where(Responder.id == responder_id, visible(actor, Responder))
    )
    if responder is None or responder.district_id != mobilisation.district_id:
        raise NotFound(f"没有这个人员 No responder {responder_id}")
    if is_away(session, responder.id, clock.now()):
        raise InvalidInput("responderId", "this person is on leave (请假)")
    lock_roster(session, mobilisation.district_id)
    if responder.id in callup.busy_elsewhere(session, mobilisation.id):
        raise InvalidInput("responderId", "this person holds a slot in another mobilisation")
    grid = grid_in_mobilisation(session, actor, mobilisation, grid_id)
    minutes, distance, mode = travel_to(session, mobilisation, responder, grid)
    now = clock.now()
    fields = {
        "grid_id": grid.id,
        "community_id": grid.community_id,
        "role": sending.role.value,
        "source": sending.source.value,
        "pinned": sending.pin,
        "status": AssignmentStatus.ASSIGNED.value,
        "travel_minutes": minutes,
        "distance_m": distance,
        "mode": mode,
        "updated_at": now,
        "reason": None,
        "eta_minutes": None,
        "acknowledged_at": None,
        "checked_in_at": None,
    }
    if current is None:
        current = Assignment(mobilisation_id=mobilisation.id, responder_id=responder.id, **fields)
        try:
            with session.begin_nested():
                session.add(current)
        except IntegrityError:  # another commander sent them somewhere at the same moment
            raise Conflict(
                f"人员已被调整 Responder {responder_id} was just sent elsewhere: refresh the "
                "risk list"
            ) from None
    else:
        for key, value in fields.items():
            setattr(current, key, value)
    session.flush()
    assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=current,
        kind="assignment.created",
        payload={
            "grid": grid.id,
            "community": grid.community_id,
            "role": sending.role.value,
            "minutes": minutes,
            "mode": mode,
            "source": sending.source.value,
            "cause": sending.cause,
        },
    )
    ids = tell_sent(
        session, mobilisation, responder, grid, (minutes, distance, mode), clock, display_tz
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[grid.id], clock=clock)
    promote_staffed(
        session, mobilisation_id=mobilisation.id, grid_ids=[grid.id], clock=clock, by=actor.label
    )
    return Outcome(mobilisation, batches=ids, assignment=current)
