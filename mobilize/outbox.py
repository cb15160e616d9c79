"""The notification outbox: messages are rows written in the transaction that decides on
them, and delivered only after it commits: in-process in the embedded default, by a Celery
worker when a broker is configured. Delivery is at least once; a row is marked sent after
its channel accepted it."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.db import make_sessionmaker, transaction
from mobilize.db.bulk import insert_rows
from mobilize.models import Notification
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
        Notification.__table__,  # type: ignore[arg-type]
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


def deliver(session: Session, *, batches: Sequence[str], notifier: Notifier, clock: Clock) -> int:
    """Send the pending notifications of these batches; return how many went out."""
    sent = 0
    rows = session.scalars(
        select(Notification)
        .where(Notification.batch.in_(list(batches)), Notification.status == "pending")
        .order_by(Notification.id)
    ).all()
    for row in rows:
        try:
            notifier.send(Message(to=row.recipient, kind=row.kind, text=row.text))
        except Exception:
            logger.exception("notification %s failed", row.id)
            session.execute(
                update(Notification)
                .where(Notification.id == row.id)
                .values(attempts=Notification.attempts + 1)
            )
            continue
        session.execute(
            update(Notification)
            .where(Notification.id == row.id)
            .values(status="sent", sent_at=clock.now(), attempts=Notification.attempts + 1)
        )
        sent += 1
    return sent


class Dispatcher(Protocol):
    def dispatch(self, batches: Sequence[str]) -> None:
        """Have these outbox batches delivered; called after their transaction committed."""
        ...


class InProcessDispatcher:
    """The embedded default: a background thread delivers, the request does not wait."""

    def __init__(self, engine: Engine, notifier: Notifier, clock: Clock) -> None:
        self._factory = make_sessionmaker(engine)
        self._notifier = notifier
        self._clock = clock
        self._threads: list[threading.Thread] = []

    def dispatch(self, batches: Sequence[str]) -> None:
        if not batches:
            return
        thread = threading.Thread(
            target=self._run, args=(list(batches),), daemon=True, name="mobilize-outbox"
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, batches: list[str]) -> None:
        try:
            with transaction(self._factory) as session:
                deliver(session, batches=batches, notifier=self._notifier, clock=self._clock)
        except Exception:
            logger.exception("outbox delivery failed")

    def wait(self, timeout: float = 30.0) -> None:
        """Until every dispatch so far is done (tests, and the CLI before it exits)."""
        for thread in list(self._threads):
            thread.join(timeout)


class CeleryDispatcher:
    """Production: a Celery task per batch; it takes ids, never rows."""

    def dispatch(self, batches: Sequence[str]) -> None:
        if not batches:
            return
        from mobilize.worker.tasks import deliver_notifications

        deliver_notifications.delay(list(batches))
