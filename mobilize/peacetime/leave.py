"""Leave and return (请假/销假), and commitments (承诺/践诺): recorded by the person on their
phone or by whoever keeps their place. A leave that covers now takes the person out of any
slot they hold, and the plan is made again around it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import Actor
from mobilize.auth.policy import editors
from mobilize.auth.scope import person_in_place, visible
from mobilize.clock import Clock
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.mobilisation.assignments import release_holdings
from mobilize.models import Commitment, Leave, LeaveReason, Responder
from mobilize.peacetime.availability import covering, start_leave
from mobilize.settings import DISPLAY_TIMEZONE

LONGEST_LEAVE = timedelta(days=366)


def person_for(session: Session, actor: Actor, responder_id: int, operation: str) -> Responder:
    """The person an operation is about, if it is the caller themself or someone whose place
    the caller keeps under the roles the policy grants `operation`."""
    responder = session.scalar(
        select(Responder)
        .where(Responder.id == responder_id, Responder.current(), visible(actor, Responder))
        .with_for_update()
    )
    if responder is None:
        raise NotFound(f"没有这个人员 No responder {responder_id}")
    if responder.id in actor.responder_ids:
        return responder
    keeper = editors(actor, operation)
    if keeper.bindings and person_in_place(session, keeper, responder.id):
        return responder
    raise Forbidden(f"{operation.split('.')[-1]}: 此人在您的范围以外 this person is not yours")


def record_leave(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    responder_id: int,
    reason: LeaveReason,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    note: str = "",
    display_tz: str = DISPLAY_TIMEZONE,
) -> Leave:
    """A leave from `starts_at` (now if not given) to `ends_at` (open if not given)."""
    responder = person_for(session, actor, responder_id, "Mutation.recordLeave")
    now = clock.now()
    starts = starts_at or now
    note = validation.text("note", note, max_len=500, min_len=0)
    if ends_at is not None and ends_at <= starts:
        raise InvalidInput("endsAt", "must be after the start")
    if (ends_at or starts) - starts > LONGEST_LEAVE or starts - now > LONGEST_LEAVE:
        raise InvalidInput("endsAt", "a leave is recorded at most a year ahead and a year long")
    clash = session.scalar(
        select(Leave)
        .where(
            Leave.responder_id == responder.id,
            or_(Leave.ends_at.is_(None), Leave.ends_at > starts),
            *([Leave.starts_at < ends_at] if ends_at is not None else []),
        )
        .limit(1)
    )
    if clash is not None:
        until = clash.ends_at.isoformat() if clash.ends_at else "back on duty"
        raise InvalidInput(
            "startsAt", f"overlaps the leave from {clash.starts_at.isoformat()} to {until}"
        )
    leave = start_leave(
        session,
        responder=responder,
        starts_at=starts,
        ends_at=ends_at,
        reason=reason,
        note=note,
        by=actor.label,
        clock=clock,
    )
    if starts <= now:
        release_holdings(
            session,
            actor=actor,
            clock=clock,
            responder=responder,
            reason=f"on leave ({reason.value})",
            display_tz=display_tz,
        )
    return leave


def back_on_duty(session: Session, *, actor: Actor, clock: Clock, responder_id: int) -> Responder:
    """End the leave that covers now: called up again from this moment."""
    responder = person_for(session, actor, responder_id, "Mutation.backOnDuty")
    now = clock.now()
    current = session.scalars(
        select(Leave).where(Leave.responder_id == responder.id, covering(now)).with_for_update()
    ).all()
    if not current:
        raise InvalidInput("responder", f"{responder.name} is not on leave")
    for leave in current:
        leave.ends_at = now
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="responder.back",
        subject_type="responder",
        subject_id=str(responder.id),
        payload={"code": responder.code, "leaves": [leave.id for leave in current]},
    )
    return responder


def record_commitment(
    session: Session, *, actor: Actor, clock: Clock, responder_id: int, year: int, promise: str
) -> Commitment:
    """承诺: what a person promises for a year."""
    responder = person_for(session, actor, responder_id, "Mutation.recordCommitment")
    if not 2000 <= year <= clock.now().year + 1:
        raise InvalidInput("year", f"{year} is not this year, the next or a past one")
    commitment = Commitment(
        responder_id=responder.id,
        year=year,
        promise=validation.text("promise", promise, max_len=500),
        fulfilment="",
        recorded_at=clock.now(),
    )
    session.add(commitment)
    session.flush()
    _commitment_event(session, clock, actor, responder, commitment, "commitment.made")
    return commitment


def record_fulfilment(
    session: Session, *, actor: Actor, clock: Clock, commitment_id: int, fulfilment: str
) -> Commitment:
    """践诺: what was done about a promise (written again as it grows; each an event)."""
    commitment = session.get(Commitment, commitment_id, with_for_update=True)
    if commitment is None:
        raise NotFound(f"没有这个承诺 No commitment {commitment_id}")
    responder = person_for(session, actor, commitment.responder_id, "Mutation.recordFulfilment")
    commitment.fulfilment = validation.text("fulfilment", fulfilment, max_len=1000)
    commitment.fulfilled_at = clock.now()
    _commitment_event(session, clock, actor, responder, commitment, "commitment.kept")
    return commitment


def _commitment_event(
    session: Session,
    clock: Clock,
    actor: Actor,
    responder: Responder,
    commitment: Commitment,
    kind: str,
) -> None:
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind=kind,
        subject_type="responder",
        subject_id=str(responder.id),
        payload={
            "code": responder.code,
            "commitment": commitment.id,
            "year": commitment.year,
            "promise": commitment.promise,
            "fulfilment": commitment.fulfilment,
        },
    )
