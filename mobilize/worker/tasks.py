"""Celery tasks: each takes ids, opens its own session, and may run twice safely."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from mobilize.clock import SystemClock
from mobilize.coverage.milestones import run_due
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.notify import notifier_from_settings
from mobilize.outbox import deliver
from mobilize.review.replay import snapshot_due
from mobilize.settings import get_settings
from mobilize.worker.app import app


@lru_cache(maxsize=1)
def _engine() -> Engine:
    return make_engine(get_settings().database_url)


@app.task(name="mobilize.deliver_notifications")  # type: ignore[untyped-decorator]
def deliver_notifications(batches: list[str] | None) -> int:
    """Send these outbox batches (None: every retry that is due); rows already sent are
    skipped, so a rerun sends nothing twice."""
    settings = get_settings()
    return deliver(
        make_sessionmaker(_engine()),
        batches=batches,
        notifier=notifier_from_settings(settings),
        clock=SystemClock(),
        max_attempts=settings.notify_max_attempts,
    )


@app.task(name="mobilize.tick")  # type: ignore[untyped-decorator]
def tick() -> list[str]:
    """Celery beat's tick: escalations and deadlines due now, then their notifications and
    the retries that are due, then replay snapshots. Each milestone is claimed once and each
    snapshot keyed, so overlapping ticks are safe."""
    settings = get_settings()
    with transaction(make_sessionmaker(_engine())) as session:
        batches = run_due(session, clock=SystemClock(), display_tz=settings.display_timezone)
    deliver_notifications(batches)
    deliver_notifications(None)
    with transaction(make_sessionmaker(_engine())) as session:
        snapshot_due(session, settings.replay_snapshot_every)
    return batches
