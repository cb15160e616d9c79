"""One person's assignment and its state machine: the phone's acknowledge and decline, the
command centre's reassign, pin and mark unavailable; each an event, followed by a re-plan of
only the communities it touched."""

from __future__ import annotations

import math
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mobilize import idempotency, validation
from mobilize.auth.actor import COMMAND_ROLES, Actor
from mobilize.auth.scope import person_in_place, visible
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db import prepared
from mobilize.db.one_of import one_of
from mobilize.db.prepared import Prepared
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.mobilisation import callup
from mobilize.mobilisation.hours import record_service
from mobilize.mobilisation.locks import lock_communities
from mobilize.mobilisation.messages import tell_sent
from mobilize.mobilisation.outcome import (
    AlreadyStoodDown,
    Conflict,
    InvalidTransition,
    Outcome,
    PersonOutcome,
    get_mobilisation,
)
from mobilize.mobilisation.plan import resolve
from mobilize.mobilisation.rules import rule_for
from mobilize.models import (
    HOLDING,
    Assignment,
    AssignmentRole,
    AssignmentSource,
    AssignmentStatus,
    Grid,
    GridLevel,
    LeaveReason,
    Mobilisation,
    MobilisationArea,
    MobilisationStatus,
    Responder,
    table_of,
)
from mobilize.peacetime.availability import start_leave
from mobilize.settings import DISPLAY_TIMEZONE
from mobilize.tasks.dispatch import promote_staffed


def visible_assignment(session: Session, actor: Actor, assignment_id: int) -> Assignment:
    found = session.scalar(
        select(Assignment).where(Assignment.id == assignment_id, visible(actor, Assignment))
    )
    if found is None:
        raise NotFound(f"没有这个任务分配 No assignment {assignment_id}")
    return found


def lock_assignment(session: Session, assignment: Assignment, *others: int) -> bool:
    """Lock the assignment's community (and `others`), then re-read it: a commander may have
    moved it to another community meanwhile, whose lock is then taken too. Whether locks
    were taken (what was read before them may have changed while waiting)."""
    held: set[int] = set()
    while assignment.community_id not in held:
        if not lock_communities(
            session, assignment.mobilisation_id, {assignment.community_id, *others}
        ):
            return False  # nothing to wait for (SQLite): the row read in this transaction stands
        held |= {assignment.community_id, *others}
        session.refresh(assignment)
    return True


def active_mobilisation(session: Session, assignment: Assignment) -> Mobilisation:
    mobilisation = get_mobilisation(session, assignment.mobilisation_id)
    if mobilisation.status != MobilisationStatus.ACTIVE.value:
        raise AlreadyStoodDown(mobilisation)
    return mobilisation


def _own(actor: Actor, assignment: Assignment) -> None:
    mine = actor.responder_ids
    if assignment.responder_id not in mine:
        raise Forbidden("only the person assigned may answer for themself")


@cache
def _transition_statement(allowed: tuple[str, ...], columns: tuple[str, ...]) -> Prepared:
    """One statement per way the code moves an assignment (its from-statuses and columns),
    built the first time: every answer and arrival runs one."""
    a = table_of(Assignment).c
    return Prepared(
        update(table_of(Assignment))
        .where(a.id == bindparam("id"), one_of(a.status, list(allowed)))
        .values({c: bindparam(f"v_{c}", type_=a[c].type) for c in columns})
    )


def transition(
    session: Session,
    assignment: Assignment,
    allowed_from: tuple[AssignmentStatus, ...],
    to: AssignmentStatus,
    now: datetime,
    **values: Any,
) -> None:
    """Move the status (and set these other columns) if it is still one of `allowed_from`:
    one conditional UPDATE, so two phones racing cannot both win."""
    written = {"status": to.value, "updated_at": now, **values}
    statement = _transition_statement(tuple(s.value for s in allowed_from), tuple(written))
    changed = prepared.run(
        session, statement, {"id": assignment.id, **{f"v_{k}": v for k, v in written.items()}}
    )
    if changed != 1:
        session.refresh(assignment)
        raise InvalidTransition(assignment.status, to.value)
    # The row now says what we wrote (it was current under the lock): mirror it, no re-read.
    for key, value in written.items():
        set_committed_value(assignment, key, value)


def assignment_event(
    session: Session,
    *,
    clock: Clock,
    actor: Actor,
    assignment: Assignment,
    kind: str,
    payload: dict[str, Any],
) -> None:
    """The event of a change to one person's assignment, with where it now stands (what
    replay folds)."""
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind=kind,
        subject_type="responder",
        subject_id=str(assignment.responder_id),
        mobilisation_id=assignment.mobilisation_id,
        payload={**payload, "status": assignment.status},
    )


def own_assignment(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    operation: str,
    key: str | None,
    request: dict[str, Any],
) -> tuple[Assignment, Mobilisation, dict[str, Any] | None]:
    """A phone acting on its own assignment: claim the client mutation id, check the
    assignment is the caller's and its mobilisation active; the first result on a retry."""
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=key,
        operation=operation,
        clock=clock,
        request={"assignment": assignment_id, **request},
    )
    # With its mobilisation, in one statement (every phone's answer and arrival asks).
    found = session.execute(
        select(Assignment, Mobilisation)
        .join(Mobilisation, Mobilisation.id == Assignment.mobilisation_id)
        .where(Assignment.id == assignment_id, visible(actor, Assignment))
    ).one_or_none()
    if found is None:
        raise NotFound(f"没有这个任务分配 No assignment {assignment_id}")
    assignment, mobilisation = found
    _own(actor, assignment)
    if earlier is None and lock_assignment(session, assignment):
        session.refresh(mobilisation)  # a stand-down may have come first
    if mobilisation.status != MobilisationStatus.ACTIVE.value:
        raise AlreadyStoodDown(mobilisation)
    return assignment, mobilisation, earlier


def acknowledge(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    eta_minutes: int | None = None,
    client_mutation_id: str | None = None,
) -> Outcome:
    """The person confirms they are coming, and when: from now on the engine will not move
    them."""
    if eta_minutes is not None and not 0 <= eta_minutes <= 24 * 60:
        raise InvalidInput("etaMinutes", "between 0 and 1440")
    assignment, mobilisation, replayed = own_assignment(
        session,
        actor=actor,
        clock=clock,
        assignment_id=assignment_id,
        operation="acknowledge",
        key=client_mutation_id,
        request={"eta": eta_minutes},
    )
    if replayed is not None:
        return Outcome(mobilisation, assignment=assignment, replayed=True)
    now = clock.now()
    transition(
        session,
        assignment,
        (AssignmentStatus.ASSIGNED,),
        AssignmentStatus.ACKNOWLEDGED,
        now,
        reason=None,
        eta_minutes=eta_minutes,
        acknowledged_at=now,
    )
    idempotency.remember(
        session, actor=actor.label, key=client_mutation_id, result={"assignment": assignment.id}
    )
    assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.acknowledged",
        payload={"grid": assignment.grid_id, "eta_minutes": eta_minutes},
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock)
    return Outcome(mobilisation, assignment=assignment)


def decline(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    reason: str,
    display_tz: str = DISPLAY_TIMEZONE,
    client_mutation_id: str | None = None,
) -> Outcome:
    """The person cannot come: free their slot and re-plan their community."""
    reason = validation.text("reason", reason, max_len=500)
    assignment, mobilisation, replayed = own_assignment(
        session,
        actor=actor,
        clock=clock,
        assignment_id=assignment_id,
        operation="decline",
        key=client_mutation_id,
        request={"reason": reason},
    )
    if replayed is not None:
        return Outcome(mobilisation, assignment=assignment, replayed=True)
    transition(
        session,
        assignment,
        (AssignmentStatus.ASSIGNED, AssignmentStatus.ACKNOWLEDGED),
        AssignmentStatus.DECLINED,
        clock.now(),
        reason=reason,
    )
    assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.declined",
        payload={"grid": assignment.grid_id, "reason": reason},
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock)
    ids = resolve(
        session,
        mobilisation=mobilisation,
        communities={assignment.community_id},
        actor=actor,
        clock=clock,
        display_tz=display_tz,
        cause="decline",
    )
    idempotency.remember(
        session, actor=actor.label, key=client_mutation_id, result={"assignment": assignment.id}
    )
    return Outcome(mobilisation, batches=ids, assignment=assignment)


def commanded_assignment(session: Session, actor: Actor, assignment_id: int) -> Assignment:
    assignment = visible_assignment(session, actor, assignment_id)
    if not actor.holds_any(COMMAND_ROLES):
        raise Forbidden("only command centres change assignments")
    return assignment


def reassign(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    grid_id: int,
    from_grid_id: int | None,
    pin: bool = True,
    display_tz: str = DISPLAY_TIMEZONE,
    cause: str = "reassign",
    role: AssignmentRole = AssignmentRole.WORK,
    source: AssignmentSource = AssignmentSource.MANUAL,
) -> Outcome:
    """A commander sends a person to another micro-grid in the same mobilisation; the person
    is pinned there unless told otherwise, and both communities are re-planned.

    `from_grid_id` is where the commander saw them: if they have been moved since (another
    commander, a risk fix), nothing changes and the commander is told, instead of the last
    click silently undoing the first."""
    assignment = commanded_assignment(session, actor, assignment_id)
    mobilisation = active_mobilisation(session, assignment)
    grid = grid_in_mobilisation(session, actor, mobilisation, grid_id)
    lock_assignment(session, assignment, grid.community_id)
    if assignment.grid_id != from_grid_id:
        raise Conflict(
            f"人员已被调整 Assignment {assignment.id} is no longer at grid {from_grid_id}: "
            "look again before moving them"
        )
    if assignment.status not in HOLDING:
        raise InvalidTransition(assignment.status, "assigned")
    before, now = (assignment.grid_id, assignment.community_id), clock.now()
    responder = session.get(Responder, assignment.responder_id)
    assert responder is not None
    minutes, distance, mode = travel_to(session, mobilisation, responder, grid)
    assignment.grid_id, assignment.community_id = grid.id, grid.community_id
    assignment.source, assignment.pinned = source, pin
    assignment.travel_minutes, assignment.distance_m, assignment.mode = minutes, distance, mode
    assignment.role = role
    assignment.updated_at = now
    if assignment.status != AssignmentStatus.ASSIGNED.value:
        # Committed already: they set off again now, and are expected after the trip.
        if assignment.status == AssignmentStatus.ON_SITE.value:
            assignment.status = AssignmentStatus.EN_ROUTE
            assignment.checked_in_at = None
        assignment.acknowledged_at, assignment.eta_minutes = now, math.ceil(minutes)
    session.flush()
    assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.reassigned",
        payload={
            "from": before[0],
            "grid": grid.id,
            "pinned": pin,
            "minutes": minutes,
            "cause": cause,
        },
    )
    ids = tell_sent(
        session, mobilisation, responder, grid, (minutes, distance, mode), clock, display_tz
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[before[0], grid.id], clock=clock)
    promote_staffed(
        session, mobilisation_id=mobilisation.id, grid_ids=[grid.id], clock=clock, by=actor.label
    )
    ids += resolve(
        session,
        mobilisation=mobilisation,
        communities={before[1], grid.community_id},
        actor=actor,
        clock=clock,
        display_tz=display_tz,
        cause=cause,
    )
    return Outcome(mobilisation, batches=ids, assignment=assignment)


def grid_in_mobilisation(
    session: Session, actor: Actor, mobilisation: Mobilisation, grid_id: int
) -> Grid:
    """A micro-grid of this mobilisation that the actor may see, or a clear refusal."""
    grid = session.scalar(
        select(Grid).where(Grid.id == grid_id, Grid.level == GridLevel.MICRO, visible(actor, Grid))
    )
    in_area = grid is not None and session.scalar(
        select(MobilisationArea.id).where(
            MobilisationArea.mobilisation_id == mobilisation.id,
            MobilisationArea.community_id == grid.community_id,
        )
    )
    if grid is None or not in_area:
        raise InvalidInput("gridId", "not a micro-grid of this mobilisation in your scope")
    return grid


def travel_to(
    session: Session, mobilisation: Mobilisation, responder: Responder, grid: Grid
) -> tuple[float, float, str]:
    metric = callup.metric_for(session, mobilisation.district_id)
    info = callup.load_grids(session, [grid.community_id], metric)
    target = info[grid.id]
    start = responder.geom or grid.centre
    x, y = metric.xy([start.x], [start.y])
    distance = float(((x[0] - target.x) ** 2 + (y[0] - target.y) ** 2) ** 0.5)
    minutes, mode = rule_for(mobilisation).travel(distance)
    return round(minutes, 2), round(distance, 1), mode


def set_pinned(
    session: Session, *, actor: Actor, clock: Clock, assignment_id: int, pinned: bool
) -> Outcome:
    """Pin an assignment so re-plans never move it, or unpin it."""
    assignment = commanded_assignment(session, actor, assignment_id)
    mobilisation = active_mobilisation(session, assignment)
    if assignment.pinned != pinned:
        assignment.pinned = pinned
        assignment.updated_at = clock.now()
        session.flush()
        assignment_event(
            session,
            clock=clock,
            actor=actor,
            assignment=assignment,
            kind="assignment.pinned" if pinned else "assignment.unpinned",
            payload={"grid": assignment.grid_id},
        )
    return Outcome(mobilisation, assignment=assignment)


def mark_unavailable(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    responder_id: int,
    reason: str,
    display_tz: str = DISPLAY_TIMEZONE,
) -> PersonOutcome:
    """Take a person out of every call-up from now (a leave with no end, until they are back
    on duty); free any slot they hold and re-plan around it."""
    reason = validation.text("reason", reason, max_len=500)
    if not actor.holds_any(COMMAND_ROLES):
        raise Forbidden("only command centres mark people unavailable")
    responder = session.scalar(
        select(Responder).where(Responder.id == responder_id, visible(actor, Responder))
    )
    if responder is None:
        raise NotFound(f"没有这个人员 No responder {responder_id}")
    if not person_in_place(session, actor, responder.id):
        raise Forbidden(
            "markUnavailable: 此人在您的范围以外工作 this person works outside your place"
        )
    start_leave(
        session,
        responder=responder,
        starts_at=clock.now(),
        ends_at=None,
        reason=LeaveReason.OTHER,
        note=reason,
        by=actor.label,
        clock=clock,
    )
    return release_holdings(
        session, actor=actor, clock=clock, responder=responder, reason=reason, display_tz=display_tz
    )


def release_holdings(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    responder: Responder,
    reason: str,
    display_tz: str = DISPLAY_TIMEZONE,
) -> PersonOutcome:
    """Free every slot a person on leave holds in an active mobilisation, and re-plan around
    each."""
    ids: list[str] = []
    for assignment in session.scalars(
        select(Assignment)
        .join(Mobilisation)
        .where(
            Assignment.responder_id == responder.id,
            Assignment.status.in_(HOLDING),
            Mobilisation.status == MobilisationStatus.ACTIVE.value,
        )
    ).all():
        mobilisation = get_mobilisation(session, assignment.mobilisation_id)
        lock_assignment(session, assignment)
        if assignment.status not in HOLDING:
            continue  # they answered for themselves meanwhile
        assignment.status = AssignmentStatus.RELEASED
        assignment.reason = f"unavailable: {reason}"
        assignment.updated_at = clock.now()
        session.flush()
        record_service(
            session, mobilisation=mobilisation, released=[assignment], now=assignment.updated_at
        )
        assignment_event(
            session,
            clock=clock,
            actor=actor,
            assignment=assignment,
            kind="assignment.released",
            payload={"grid": assignment.grid_id, "reason": "unavailable"},
        )
        coverage.track(
            session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock
        )
        ids += resolve(
            session,
            mobilisation=mobilisation,
            communities={assignment.community_id},
            actor=actor,
            clock=clock,
            display_tz=display_tz,
            cause="unavailable",
        )
    session.flush()
    return PersonOutcome(responder=responder, batches=ids)
