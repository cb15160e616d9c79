"""How many requests one API process serves at once.

A request holds one pooled database connection while it runs and needs a worker thread for
each step. Unbounded, a burst lets more requests take connections than there are threads to
finish them while the threads wait for connections: every request then stalls until the pool
times out (the collapse the soak found). With at most `slots` requests inside, fewer than the
pool's connections and the threads, nobody waits for a connection; a request that cannot get
a slot within `wait_s` is answered 503 with Retry-After at once, and phones retry with the
same client mutation id."""

from __future__ import annotations

import asyncio

BUSY_MESSAGE = "服务繁忙，请稍后重试 The server is busy; retry in {s} s"


class Busy(Exception):
    pass


class Admission:
    def __init__(self, slots: int, wait_s: float, retry_after_s: int = 1) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.slots = slots
        self.wait_s = wait_s
        self.retry_after_s = retry_after_s
        self._free = asyncio.Semaphore(slots)

    async def acquire(self, wait_s: float | None) -> None:
        """A slot; Busy after `wait_s` (None: wait as long as it takes)."""
        if wait_s is None:
            await self._free.acquire()
            return
        try:
            async with asyncio.timeout(wait_s):
                await self._free.acquire()
        except TimeoutError:
            raise Busy from None

    def release(self) -> None:
        self._free.release()
