"""Who is away when: a person is unavailable exactly while a leave of theirs covers the
moment, and available again after it by itself (no job flips a flag back)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.events import record_event
from mobilize.models import Leave, LeaveReason, Responder


def covering(at: datetime) -> ColumnElement[bool]:
    """Leaves that cover `at`."""
    return (Leave.starts_at <= at) & or_(Leave.ends_at.is_(None), Leave.ends_at > at)


def away_at(at: datetime) -> ColumnElement[bool]:
    """Responders on leave at `at`: every call-up leaves them out."""
    return exists(select(Leave.id).where(Leave.responder_id == Responder.id, covering(at)))


def is_away(session: Session, responder_id: int, at: datetime) -> bool:
    found = session.scalar(
        select(Leave.id).where(Leave.responder_id == responder_id, covering(at)).limit(1)
    )
    return found is not None


def start_leave(
    session: Session,
    *,
    responder: Responder,
    starts_at: datetime,
    ends_at: datetime | None,
    reason: LeaveReason,
    note: str,
    by: str,
    clock: Clock,
) -> Leave:
    """Write a leave and its event (the checks are the caller's)."""
    now = clock.now()
    leave = Leave(
        responder_id=responder.id,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.value,
        note=note,
        recorded_by=by,
        recorded_at=now,
    )
    session.add(leave)
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=by,
        kind="responder.leave",
        subject_type="responder",
        subject_id=str(responder.id),
        payload={
            "code": responder.code,
            "leave": leave.id,
            "starts_at": starts_at.isoformat(),
            "ends_at": None if ends_at is None else ends_at.isoformat(),
            "reason": reason.value,
            "note": note,
        },
    )
    return leave
