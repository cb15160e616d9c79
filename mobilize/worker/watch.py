"""The worker watches its own consumer. After a Redis reconnection Celery's consumer can die
without a word (celery/celery#8030, #8091, #10205): the process lives on and takes nothing,
so notifications wait for ever. A worker whose consumer stops answering pings while the
broker answers ends itself, and its supervisor (compose's restart policy, or `Topology`)
starts a fresh one; the tasks it held go back to the queue (acks_late)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def _end_process() -> None:
    """A warm shutdown first; a consumer whose hub died may hang in it, so then for good."""
    os.kill(os.getpid(), signal.SIGTERM)
    threading.Timer(30.0, os._exit, args=(70,)).start()


class ConsumerWatch(threading.Thread):
    def __init__(
        self,
        app: Any,
        hostname: str,
        every_s: float,
        misses: int = 3,
        end: Callable[[], None] = _end_process,
    ) -> None:
        super().__init__(name="consumer-watch", daemon=True)
        self.app = app
        self.hostname = hostname
        self.every_s = every_s
        self.misses = misses
        self._end = end
        self._halt = threading.Event()  # not `_stop`: Thread has its own

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        logger.info("worker %s: pinging its own consumer every %s s", self.hostname, self.every_s)
        missed = 0
        while not self._halt.wait(self.every_s):
            if not self._broker_answers():
                missed = 0  # the broker is down: nobody consumes; not this worker's fault
                continue
            if self._consumer_answers():
                missed = 0
                continue
            missed += 1
            logger.warning(
                "worker %s: its consumer did not answer a ping (%d of %d)",
                self.hostname,
                missed,
                self.misses,
            )
            if missed >= self.misses:
                logger.error(
                    "worker %s: the broker answers but this worker's consumer does not; "
                    "ending the process so that a fresh one takes the queue",
                    self.hostname,
                )
                self._end()
                return

    def _broker_answers(self) -> bool:
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
            return True
        except Exception:
            return False

    def _consumer_answers(self) -> bool:
        try:
            replies = self.app.control.ping(destination=[self.hostname], timeout=5)
        except Exception:
            return True  # the ping itself failed: the broker, not the consumer
        return any(self.hostname in reply for reply in replies)
