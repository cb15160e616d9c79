"""Fixed-window rate limits, in-process or shared through Redis when a broker is configured.

Counting lives in Redis (INCR + EXPIRE), never in a home-made server, so several API
processes share one limit."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from mobilize.errors import RateLimited

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    """`count` hits per `window_s` seconds."""

    count: int
    window_s: int

    @classmethod
    def parse(cls, text: str) -> Limit:
        """'600/60' means 600 per 60 seconds."""
        count, _, window = text.partition("/")
        return cls(int(count), int(window or 60))


class Counter(Protocol):
    def incr(self, key: str, window_s: int) -> int:
        """Add one to `key`, which lapses after `window_s`; return the new count."""
        ...


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def incr(self, key: str, window_s: int) -> int:
        with self._lock:
            if len(self._counts) > 100_000:  # old windows: drop them all, cheaply
                self._counts.clear()
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]


class RedisCounter:
    """Shared counts; while Redis is unreachable each process counts alone (and says so)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._errors = redis.RedisError
        self._fallback = MemoryCounter()

    def incr(self, key: str, window_s: int) -> int:
        try:
            pipe = self._redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, window_s + 1)
            count, _ = pipe.execute()
            return int(count)
        except self._errors as exc:
            logger.warning("rate limits counted in-process: Redis unreachable (%s)", exc)
            return self._fallback.incr(key, window_s)


class RateLimiter:
    def __init__(self, counter: Counter, now: Callable[[], float] = time.time) -> None:
        self._counter = counter
        self._now = now

    def hit(self, name: str, key: str, limit: Limit) -> None:
        """Count one attempt; RateLimited (with seconds to wait) once the window is full."""
        now = self._now()
        window = math.floor(now / limit.window_s)
        count = self._counter.incr(f"mobilize:rl:{name}:{key}:{window}", limit.window_s)
        if count > limit.count:
            retry_after = max(1, math.ceil((window + 1) * limit.window_s - now))
            raise RateLimited(retry_after, name)


def make_rate_limiter(broker_url: str | None) -> RateLimiter:
    """Shared through Redis when a broker is configured, else in this process only."""
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        return RateLimiter(RedisCounter(broker_url))
    return RateLimiter(MemoryCounter())
