"""The embedded default's background work: threads deliver notifications and run job runs
after the request's commit, so the request does not wait for them."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from mobilize import jobs
from mobilize.clock import Clock
from mobilize.db import make_sessionmaker
from mobilize.live import Broker, attach
from mobilize.notify import Notifier
from mobilize.outbox import deliver
from mobilize.settings import DISPLAY_TIMEZONE
from mobilize.worker.kinds import KINDS

logger = logging.getLogger(__name__)


class InProcessDispatcher:
    """A `jobs.Dispatcher` of threads in this process."""

    def __init__(
        self,
        engine: Engine,
        notifier: Notifier,
        clock: Clock,
        *,
        max_attempts: int = 8,
        display_tz: str = DISPLAY_TIMEZONE,
    ) -> None:
        self._factory = make_sessionmaker(engine)
        self._notifier = notifier
        self._clock = clock
        self._max_attempts = max_attempts
        self._display_tz = display_tz
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def publish_to(self, broker: Broker) -> None:
        """Jobs' commits wake live subscriptions like the API's own (`live.attach`)."""
        attach(self._factory, broker)

    def dispatch(self, batches: Sequence[str]) -> None:
        if batches:
            self._start(self._deliver, list(batches))

    def retry(self) -> None:
        self._start(self._deliver, None)

    def run_jobs(self, run_ids: Sequence[str]) -> None:
        for run_id in run_ids:
            self._start(self._job, run_id)

    def _start(self, target: Callable[[Any], None], arg: Any) -> None:
        # The request's context (its request id) goes with the work.
        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(target, arg), daemon=True, name="mobilize-bg"
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _deliver(self, batches: list[str] | None) -> None:
        try:
            deliver(
                self._factory,
                batches=batches,
                notifier=self._notifier,
                clock=self._clock,
                max_attempts=self._max_attempts,
            )
        except Exception:
            logger.exception("outbox delivery failed")

    def _job(self, run_id: str) -> None:
        try:
            batches = jobs.run(
                self._factory,
                run_id,
                kinds=KINDS,
                clock=self._clock,
                display_tz=self._display_tz,
                worker=f"in-process:{os.getpid()}",
            )
        except Exception:  # the scheduler's tick runs it again after the lease
            logger.exception("job %s failed", run_id)
            return
        if batches:
            self._deliver(batches)

    def wait(self, timeout: float = 60.0) -> None:
        """Until every dispatch so far is done (tests, and the CLI before it exits); work a
        finished job queued is waited for too."""
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            with self._lock:
                alive = [t for t in self._threads if t.is_alive()]
            if not alive:
                return
            for thread in alive:
                thread.join(max(0.0, give_up - time.monotonic()))
