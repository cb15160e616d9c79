"""Celery tasks: each takes ids, opens its own session, and may run twice safely."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine

from mobilize.clock import SystemClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.notify import LogNotifier
from mobilize.outbox import deliver
from mobilize.settings import get_settings
from mobilize.worker.app import app


@lru_cache(maxsize=1)
def _engine() -> Engine:
    return make_engine(get_settings().database_url)


@app.task(name="mobilize.deliver_notifications")  # type: ignore[untyped-decorator]
def deliver_notifications(batches: list[str]) -> int:
    """Send these outbox batches; rows already sent are skipped, so a rerun sends nothing
    twice."""
    with transaction(make_sessionmaker(_engine())) as session:
        return deliver(session, batches=batches, notifier=LogNotifier(), clock=SystemClock())
