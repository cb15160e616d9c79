"""Appending to the event log, in the caller's transaction: no event, no change."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.db.bulk import insert_rows
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


def record_events(
    session: Session,
    *,
    clock: Clock,
    actor: str,
    events: list[tuple[str, str, str, dict[str, Any]]],
    mobilisation_id: int | None = None,
) -> None:
    """Append many events at once (kind, subject type, subject id, payload): one statement."""
    if not events:
        return
    now = clock.now()
    insert_rows(
        session,
        Event.__table__,  # type: ignore[arg-type]
        [
            {
                "occurred_at": now,
                "actor": actor,
                "kind": kind,
                "subject_type": subject_type,
                "subject_id": subject_id,
                "payload": payload,
                "mobilisation_id": mobilisation_id,
            }
            for kind, subject_type, subject_id, payload in events
        ],
    )
