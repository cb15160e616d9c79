"""Celery tasks, and the dispatcher that sends them (production's `jobs.Dispatcher`). Each task
takes ids, opens its own sessions, and may run twice safely: job runs are locked and marked
done in the transaction that does their work (`mobilize.jobs`), notifications are marked sent
row by row, milestones are claimed once and snapshots keyed."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery import Task
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mobilize import jobs
from mobilize.clock import SystemClock
from mobilize.coverage.milestones import run_due
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.live import attach, make_broker
from mobilize.notify import notifier_from_settings
from mobilize.outbox import deliver
from mobilize.review.replay import snapshot_due
from mobilize.settings import get_settings
from mobilize.worker.app import app
from mobilize.worker.kinds import KINDS

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _engine() -> Engine:
    return make_engine(get_settings().database_url)


@lru_cache(maxsize=1)
def _factory() -> sessionmaker[Session]:
    """Sessions whose commits wake the API processes' live subscriptions."""
    factory = make_sessionmaker(_engine())
    attach(factory, make_broker(get_settings().broker_url))
    return factory


@app.task(name="mobilize.deliver_notifications")
def deliver_notifications(batches: list[str] | None) -> int:
    """Send these outbox batches (None: every retry that is due); rows already sent are
    skipped, so a rerun sends nothing twice."""
    settings = get_settings()
    return deliver(
        _factory(),
        batches=batches,
        notifier=notifier_from_settings(settings),
        clock=SystemClock(),
        max_attempts=settings.notify_max_attempts,
    )


@app.task(
    name="mobilize.run_job",
    bind=True,
    max_retries=jobs.MAX_ATTEMPTS,
    default_retry_delay=5,
)
def run_job(self: Task, run_id: str) -> None:
    """One delivery of a job run (an activation's solve). A worker killed mid-solve leaves
    its transaction uncommitted and the message unacknowledged: the broker delivers it again
    and this runs from the start. Errors other than a domain refusal are retried."""
    settings = get_settings()
    try:
        batches = jobs.run(
            _factory(),
            run_id,
            kinds=KINDS,
            clock=SystemClock(),
            display_tz=settings.display_timezone,
            worker=f"{self.request.hostname}/{os.getpid()}",
        )
    except Exception as exc:
        raise self.retry(exc=exc) from exc
    CeleryDispatcher().dispatch(batches)


@app.task(name="mobilize.escalate")
def escalate() -> list[str]:
    """Escalations and deadlines due now, then their notifications and the retries that are
    due. Each milestone is claimed once, so overlapping ticks are safe."""
    settings = get_settings()
    with transaction(_factory()) as session:
        batches = run_due(session, clock=SystemClock(), display_tz=settings.display_timezone)
    dispatcher = CeleryDispatcher()
    dispatcher.dispatch(batches)
    dispatcher.retry()
    return batches


@app.task(name="mobilize.snapshot")
def snapshot() -> int:
    """Replay snapshots for mobilisations whose log grew enough (keyed: racing is harmless)."""
    with transaction(_factory()) as session:
        return snapshot_due(session, get_settings().replay_snapshot_every)


@app.task(name="mobilize.republish_jobs")
def republish_jobs() -> list[str]:
    """Publish again the job runs whose publish was lost or whose worker is long gone."""
    lease = timedelta(seconds=get_settings().job_lease_seconds)
    with transaction(_factory()) as session:
        again = jobs.stalled(session, now=SystemClock().now(), lease=lease)
    CeleryDispatcher().run_jobs(again)
    return again


class CeleryDispatcher:
    """A `jobs.Dispatcher` over Celery; it sends ids, never rows. The transaction that queued
    the work has committed already, so a broker that is down must not fail it: the rows wait
    (outbox, job_run) and beat's next tick, once the broker is back, sends them."""

    def dispatch(self, batches: Sequence[str]) -> None:
        if batches:
            self._send(deliver_notifications, list(batches))

    def retry(self) -> None:
        self._send(deliver_notifications, None)

    def run_jobs(self, run_ids: Sequence[str]) -> None:
        for run_id in run_ids:
            self._send(run_job, run_id)

    @staticmethod
    def _send(task: Any, arg: list[str] | str | None) -> None:
        try:
            task.delay(arg)
        except Exception as exc:  # the broker: kombu raises its own and OS errors
            logger.warning("%s waits in the database: broker unreachable (%s)", task.name, exc)
