"""Appending to the event log, in the caller's transaction: no event, no change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.db.bulk import insert_rows
from mobilize.live import touched
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
    touched(session, mobilisation_id)
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
    touched(session, mobilisation_id)


def visible_events(
    session: Session, *, actor: Actor, mobilisation_id: int, after: int, limit: int = 500
) -> tuple[list[Event], int]:
    """A mobilisation's events after sequence `after` that the actor may see, and the last
    sequence read (to continue from, even when every event read was out of their sight).

    District-wide roles see them all; area roles the events about their grids and
    communities and about the mobilisation itself."""
    from mobilize.auth.scope import district_wide, visible, visible_mobilisation
    from mobilize.models import Community, Grid

    visible_mobilisation(session, actor, mobilisation_id)
    rows = list(
        session.scalars(
            select(Event)
            .where(Event.mobilisation_id == mobilisation_id, Event.seq > after)
            .order_by(Event.seq)
            .limit(limit)
        )
    )
    last = rows[-1].seq if rows else after
    if district_wide(actor):
        return rows, last
    grids = set(session.scalars(select(Grid.id).where(visible(actor, Grid))))
    communities = set(session.scalars(select(Community.id).where(visible(actor, Community))))

    def mine(e: Event) -> bool:
        p = e.payload or {}
        return (
            e.subject_type == "mobilisation"
            or (e.subject_type == "grid" and e.subject_id.isdigit() and int(e.subject_id) in grids)
            or p.get("grid") in grids
            or p.get("from") in grids
            or p.get("community") in communities
        )

    return [e for e in rows if mine(e)], last
