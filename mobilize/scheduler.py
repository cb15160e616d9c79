"""The embedded default's beat: a thread that, every few seconds of wall time, does what is
due by the injected clock (escalations, deadlines, notification retries, replay snapshots,
job runs that were lost).
In production Celery beat sends the same steps as tasks (`mobilize.worker.tasks`: escalate,
snapshot, republish_jobs)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import Engine

from mobilize import jobs
from mobilize.clock import Clock
from mobilize.coverage.milestones import run_due
from mobilize.db import make_sessionmaker, transaction
from mobilize.jobs import Dispatcher
from mobilize.live import Broker, attach
from mobilize.review.replay import snapshot_due
from mobilize.settings import DISPLAY_TIMEZONE

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        dispatcher: Dispatcher,
        *,
        interval_s: float = 15.0,
        display_tz: str = DISPLAY_TIMEZONE,
        broker: Broker | None = None,
        snapshot_every: int = 5000,
        job_lease_seconds: int = 3600,
    ) -> None:
        self._writer = make_sessionmaker(engine)
        if broker is not None:
            attach(self._writer, broker)
        self._clock = clock
        self._dispatcher = dispatcher
        self._interval = interval_s
        self._display_tz = display_tz
        self._snapshot_every = snapshot_every
        self._lease = timedelta(seconds=job_lease_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> list[str]:
        """Do what is due now; hand the notifications it queued to the dispatcher."""
        with transaction(self._writer) as session:
            batches = run_due(session, clock=self._clock, display_tz=self._display_tz)
        self._dispatcher.dispatch(batches)
        self._dispatcher.retry()
        with transaction(self._writer) as session:
            snapshot_due(session, self._snapshot_every)
            again = jobs.stalled(session, now=self._clock.now(), lease=self._lease)
        self._dispatcher.run_jobs(again)
        return batches

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.tick()
            except Exception:  # a bad tick must not end the beat; the next one retries
                logger.exception("scheduled tick failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="mobilize-beat")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
