"""Appending to the event log, in the caller's transaction: no event, no change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.models import Event


def record_event(
    session: Session,
    *,
    clock: Clock,
    actor: str,
    kind: str,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any] | None = None,
    mobilisation_id: int | None = None,
) -> Event:
    """Append one event; flushed so its sequence number is known, committed by the edge."""
    event = Event(
        occurred_at=clock.now(),
        actor=actor,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload or {},
        mobilisation_id=mobilisation_id,
    )
    session.add(event)
    session.flush()
    return event
