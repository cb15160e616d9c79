"""What the system does by itself on the beat, between the command centres' rounds.

A grid whose minimum is no longer coming (a call unanswered past `ack_timeout_minutes`, a
decline, a no-show) or would come only after the aim (`aim_minutes`) gets, at once, the person
the risk list would suggest, sent as a pinned standby; a standby whose grid has its minimum on
site without them is released, free for the next grid. The command centres still see every
grid on their risk list, and may move, pin or release anyone.

What must hold: the system sends only free people (never called, or released), so nobody
holding a slot is moved, whether they answered or not, and no grid loses anyone to another;
every change is an event (cause `auto`) and a message; the same log gives the same
reactions.
Two beats racing are harmless: each send is a risk fix whose checks run under the grids'
community locks, and a second send of the same person is refused as a conflict."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.clock import Clock
from mobilize.coverage import risk
from mobilize.coverage import service as coverage
from mobilize.errors import DomainError
from mobilize.events import record_events
from mobilize.mobilisation.locks import lock_communities
from mobilize.mobilisation.risk_fix import Sending, send_to_grid
from mobilize.mobilisation.rules import rule_for
from mobilize.models import (
    Assignment,
    AssignmentRole,
    AssignmentSource,
    AssignmentStatus,
    GridState,
    Mobilisation,
    MobilisationStatus,
    Responder,
    Role,
)
from mobilize.notify import Message
from mobilize.outbox import enqueue
from mobilize.settings import DISPLAY_TIMEZONE

AUTO = Sending(pin=True, role=AssignmentRole.STANDBY, source=AssignmentSource.AUTO, cause="auto")
_COMING = (
    AssignmentStatus.ASSIGNED.value,
    AssignmentStatus.ACKNOWLEDGED.value,
    AssignmentStatus.EN_ROUTE.value,
)


def dispatcher(district_id: int) -> Actor:
    """The system acting for the district command centre, named as such in the log."""
    return Actor(
        user_id=None,
        name="系统自动调度 Automatic dispatch",
        tag="system:auto",
        bindings=(Binding(Role.DISTRICT_COMMANDER, district_id, district_id),),
    )


def react(session: Session, *, clock: Clock, display_tz: str = DISPLAY_TIMEZONE) -> list[str]:
    """Release standbys no longer needed, then send standbys where the minimum is not coming
    in time, on every active mobilisation that has `auto_dispatch`; the outbox batches."""
    batches: list[str] = []
    for mobilisation in session.scalars(
        select(Mobilisation)
        .where(Mobilisation.status == MobilisationStatus.ACTIVE.value)
        .order_by(Mobilisation.id)
    ).all():
        if not rule_for(mobilisation).auto_dispatch:
            continue
        batches += release_standbys(session, mobilisation=mobilisation, clock=clock)
        batches += send_standbys(
            session, mobilisation=mobilisation, clock=clock, display_tz=display_tz
        )
    return batches


def send_standbys(
    session: Session, *, mobilisation: Mobilisation, clock: Clock, display_tz: str
) -> list[str]:
    """Each grid at risk gets the free person who would arrive first (see `risk.suggest`),
    when they would arrive before the grid's projection."""
    now = clock.now()
    actor = dispatcher(mobilisation.district_id)
    # One standby per grid at a time: a second would only race the first.
    at_risk = [
        r
        for r in risk.assess(session, mobilisation=mobilisation, now=now, open_only=True)
        if r.at_risk and not r.standby_coming
    ]
    if not at_risk:
        return []
    risk.suggest(
        session,
        actor=actor,
        mobilisation=mobilisation,
        risks=at_risk,
        now=now,
        free_only=True,
    )
    batches: list[str] = []
    for found in at_risk:
        fix = found.suggestion
        if fix is None:
            continue
        try:
            with session.begin_nested():
                # Another beat may have sent one since this one looked: ask again under the
                # community's lock, which that beat held until it committed.
                lock_communities(session, mobilisation.id, [found.community_id])
                if _standby_coming(session, mobilisation.id, found.grid_id):
                    continue
                outcome = send_to_grid(
                    session,
                    actor=actor,
                    clock=clock,
                    mobilisation_id=mobilisation.id,
                    grid_id=found.grid_id,
                    responder_id=fix.responder_id,
                    from_grid_id=fix.from_grid_id,
                    display_tz=display_tz,
                    sending=AUTO,
                )
        except DomainError:
            continue  # a commander moved them meanwhile: the next beat looks again
        batches += outcome.batches
    return batches


def _standby_coming(session: Session, mobilisation_id: int, grid_id: int) -> bool:
    """Whether a standby holds this grid and is not on site yet (`GridRisk.standby_coming`)."""
    return (
        session.scalar(
            select(Assignment.id)
            .where(
                Assignment.mobilisation_id == mobilisation_id,
                Assignment.grid_id == grid_id,
                Assignment.role == AssignmentRole.STANDBY.value,
                Assignment.status.in_(_COMING),
            )
            .limit(1)
        )
        is not None
    )


def release_standbys(session: Session, *, mobilisation: Mobilisation, clock: Clock) -> list[str]:
    """Standbys not yet on site, of grids whose minimum is on site without them: released,
    each told, each an event."""
    rule = rule_for(mobilisation)
    stmt = (
        select(Assignment)
        .join(
            GridState,
            and_(
                GridState.mobilisation_id == Assignment.mobilisation_id,
                GridState.grid_id == Assignment.grid_id,
            ),
        )
        .where(
            Assignment.mobilisation_id == mobilisation.id,
            Assignment.role == AssignmentRole.STANDBY.value,
            Assignment.status.in_(_COMING),
            GridState.on_site >= rule.min_on_site,
        )
        .order_by(Assignment.id)
    )
    found = session.scalars(stmt).all()
    if not found:
        return []
    # Under the communities' locks, read again: a check-in or a commander may have changed
    # them while the first read ran.
    if lock_communities(session, mobilisation.id, {a.community_id for a in found}):
        session.expire_all()
        found = session.scalars(stmt).all()
    now = clock.now()
    events, messages = [], []
    phones = dict(
        session.execute(
            select(Responder.id, Responder.phone).where(
                Responder.id.in_([a.responder_id for a in found])
            )
        ).all()
    )
    for a in found:
        a.status = AssignmentStatus.RELEASED
        a.reason = "standby_released"
        a.updated_at = now
        events.append(
            (
                "assignment.released",
                "responder",
                str(a.responder_id),
                {
                    "grid": a.grid_id,
                    "reason": "standby_released",
                    "cause": "auto",
                    "status": AssignmentStatus.RELEASED.value,
                },
            )
        )
        messages.append(
            Message(
                to=phones[a.responder_id],
                kind="released",
                text=(
                    f"【mobilize】{mobilisation.title}：网格已有人到岗，您的备岗任务解除，谢谢。"
                    " The grid is staffed: you are released from standby. Thank you."
                ),
            )
        )
    session.flush()
    record_events(
        session,
        clock=clock,
        actor=dispatcher(mobilisation.district_id).label,
        events=events,
        mobilisation_id=mobilisation.id,
    )
    coverage.track(
        session, mobilisation=mobilisation, grid_ids={a.grid_id for a in found}, clock=clock
    )
    return enqueue(session, clock=clock, messages=messages, mobilisation_id=mobilisation.id)
