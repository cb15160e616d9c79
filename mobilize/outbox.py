"""The notification outbox: messages are rows written in the transaction that decides on
them, and delivered only after it commits: in-process in the embedded default, by a Celery
worker when a broker is configured. Delivery is at least once; a row is marked sent after
every channel for it accepted it, and a failing channel is retried with backoff."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mobilize.clock import Clock
from mobilize.db import transaction
from mobilize.db.bulk import insert_rows
from mobilize.db.one_of import one_of
from mobilize.db.session import rowcount
from mobilize.models import LIVE, Mobilisation, Notification, table_of
from mobilize.notify import Message, Notifier

logger = logging.getLogger(__name__)


def enqueue(
    session: Session,
    *,
    clock: Clock,
    messages: Sequence[Message],
    mobilisation_id: int | None = None,
) -> list[str]:
    """Outbox rows for `messages` in the caller's transaction, as one batch; the batch id in a
    list (empty when there is nothing to send), for the edge to dispatch after commit."""
    if not messages:
        return []
    now = clock.now()
    batch = uuid.uuid4().hex
    insert_rows(
        session,
        table_of(Notification),
        [
            {
                "batch": batch,
                "created_at": now,
                "recipient": m.to,
                "kind": m.kind,
                "text": m.text,
                "mobilisation_id": mobilisation_id,
                "status": "pending",
                "attempts": 0,
            }
            for m in messages
        ],
    )
    return [batch]


CHUNK = 500  # rows claimed (and their outcomes written) at a time
LEASE = timedelta(minutes=2)  # a claimed row is left alone this long by other deliverers
BACKOFF_S = (30, 60, 120, 300, 600, 1200, 1800)  # after the 1st, 2nd, ... failed attempt


def backoff(attempts: int) -> timedelta:
    """How long to wait before the next try, after `attempts` failed ones."""
    return timedelta(seconds=BACKOFF_S[min(attempts, len(BACKOFF_S)) - 1])


def deliver(
    factory: sessionmaker[Session],
    *,
    notifier: Notifier,
    clock: Clock,
    batches: Sequence[str] | None = None,
    max_attempts: int = 8,
    limit: int = CHUNK,
) -> int:
    """Send every pending notification that is due (of these batches, or any), `limit` at a
    time until none is left; return how many went out. A dispatch so sends its whole batch,
    and after an outage the backlog drains as fast as the channels take it. Messages of live
    mobilisations go before all others, so a call to the grid is never queued behind a
    finished mobilisation's thank-you."""
    sent = 0
    while True:
        claimed = _claim(factory, clock=clock, batches=batches, limit=limit)
        if not claimed:
            return sent
        sent += _send(factory, claimed, notifier=notifier, clock=clock, max_attempts=max_attempts)


def _due(now: datetime) -> Any:
    return and_(
        Notification.status == "pending",
        or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now),
    )


def _claim(
    factory: sessionmaker[Session], *, clock: Clock, batches: Sequence[str] | None, limit: int
) -> list[Any]:
    """Up to `limit` due rows, live mobilisations' first, leased to this deliverer in one short
    transaction (a row leased by another is not due)."""
    now = clock.now()
    due = _due(now)
    with transaction(factory) as session:
        query = select(Notification.id).where(due).order_by(Notification.id).limit(limit)
        if batches is not None:
            ids = list(session.scalars(query.where(Notification.batch.in_(list(batches)))))
        else:
            live = select(Mobilisation.id).where(Mobilisation.status.in_([s.value for s in LIVE]))
            ids = list(session.scalars(query.where(Notification.mobilisation_id.in_(live))))
            if len(ids) < limit:
                ids += session.scalars(
                    query.limit(limit - len(ids)).where(~one_of(Notification.id, ids))
                )
        if not ids:
            return []
        lease = now + LEASE
        session.execute(
            update(Notification)
            .where(one_of(Notification.id, ids), due)
            .values(next_attempt_at=lease)
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(
                Notification.id,
                Notification.recipient,
                Notification.kind,
                Notification.text,
                Notification.attempts,
                Notification.delivered,
            ).where(one_of(Notification.id, ids), Notification.next_attempt_at == lease)
        ).all()
    rank = {pk: i for i, pk in enumerate(ids)}  # sent in the order chosen: live ones first
    return sorted(rows, key=lambda r: rank[r.id])


def _send(
    factory: sessionmaker[Session],
    rows: list[Any],
    *,
    notifier: Notifier,
    clock: Clock,
    max_attempts: int,
) -> int:
    """Send claimed rows with no transaction open (a slow channel never holds a lock a
    mutation waits for), then write their outcomes in one: channels that took a message are
    not asked again."""
    outcomes: list[tuple[Any, list[str], list[str]]] = []
    for row in rows:
        message = Message(to=row.recipient, kind=row.kind, text=row.text)
        accepted: set[str] = set(row.delivered or [])
        errors: list[str] = []
        for channel in notifier.channels:
            if channel.name in accepted or not channel.accepts(message):
                continue
            try:
                channel.send(message, key=f"mobilize-notification-{row.id}")
                accepted.add(channel.name)
            except Exception as exc:
                logger.warning("notification %s via %s failed: %s", row.id, channel.name, exc)
                errors.append(f"{channel.name}: {exc}")
        outcomes.append((row, sorted(accepted), errors))
    sent = 0
    # One executemany per shape of outcome (an activation's thousands of messages are one
    # statement, not one ORM update each).
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    after = clock.now()
    for row, done, errors in outcomes:
        attempts = row.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "delivered": done}
        if not errors:
            values.update(status="sent", sent_at=after, next_attempt_at=None, last_error=None)
            sent += 1
        else:
            values["last_error"] = "; ".join(errors)[:500]
            if attempts >= max_attempts:
                values.update(status="failed", next_attempt_at=None)
            else:
                values["next_attempt_at"] = after + backoff(attempts)
        groups.setdefault(tuple(sorted(values)), []).append(
            {"row": row.id, **{f"v_{k}": v for k, v in values.items()}}
        )
    with transaction(factory) as session:
        for names, params in groups.items():
            session.execute(_outcome_update(names), params)
    return sent


def cancel_pending(session: Session, *, mobilisation_id: int, now: datetime) -> int:
    """A stood-down mobilisation's messages not yet sent are not sent: kept, marked
    `cancelled` (the record says what was never said). Returns how many."""
    cancelled: int = rowcount(
        session.execute(
            update(Notification)
            .where(
                Notification.mobilisation_id == mobilisation_id, Notification.status == "pending"
            )
            .values(status="cancelled", next_attempt_at=None, last_error=f"stood down at {now}")
            .execution_options(synchronize_session=False)
        )
    )
    return cancelled


def _outcome_update(names: tuple[str, ...]) -> Any:
    table = table_of(Notification)
    return (
        update(table)
        .where(table.c.id == bindparam("row"))
        .values({name: bindparam(f"v_{name}") for name in names})
    )
