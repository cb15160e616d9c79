"""Fixed-window rate limits, in-process or shared through Redis when a broker is configured.

Counting lives in Redis (INCR + EXPIRE), never in a home-made server, so several API
processes share one limit."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

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


class Hit(NamedTuple):
    """One attempt counted under `name` for `key` (an address, a token's digest, a phone)."""

    name: str
    key: str
    limit: Limit


class Counter(Protocol):
    def incr(self, keys: Sequence[tuple[str, int]]) -> list[int]:
        """Add one to each key, which lapses after its window in seconds; return the new
        counts. All in one round trip: every API request counts two."""
        ...


class MemoryCounter:
    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def incr(self, keys: Sequence[tuple[str, int]]) -> list[int]:
        with self._lock:
            if len(self._counts) > 100_000:  # old windows: drop them all, cheaply
                self._counts.clear()
            counts = []
            for key, _window_s in keys:
                self._counts[key] = self._counts.get(key, 0) + 1
                counts.append(self._counts[key])
            return counts


class RedisCounter:
    """Shared counts; while Redis is unreachable each process counts alone (and says so)."""

    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._errors = redis.RedisError
        self._fallback = MemoryCounter()

    def incr(self, keys: Sequence[tuple[str, int]]) -> list[int]:
        try:
            pipe = self._redis.pipeline(transaction=False)
            for key, window_s in keys:
                pipe.incr(key)
                pipe.expire(key, window_s + 1)
            return [int(count) for count in pipe.execute()[::2]]
        except self._errors as exc:
            logger.warning("rate limits counted in-process: Redis unreachable (%s)", exc)
            return self._fallback.incr(keys)


class RateLimiter:
    def __init__(self, counter: Counter, now: Callable[[], float] = time.time) -> None:
        self._counter = counter
        self._now = now

    def hit(self, *hits: Hit) -> None:
        """Count one attempt against each limit; RateLimited (with seconds to wait) when one
        of them is past its window's count, the first such in the order given."""
        now = self._now()
        windows = [math.floor(now / h.limit.window_s) for h in hits]
        counts = self._counter.incr(
            [
                (f"mobilize:rl:{h.name}:{h.key}:{window}", h.limit.window_s)
                for h, window in zip(hits, windows, strict=True)
            ]
        )
        for h, window, count in zip(hits, windows, counts, strict=True):
            if count > h.limit.count:
                retry_after = max(1, math.ceil((window + 1) * h.limit.window_s - now))
                raise RateLimited(retry_after, h.name)


def make_rate_limiter(broker_url: str | None) -> RateLimiter:
    """Shared through Redis when a broker is configured, else in this process only."""
    if broker_url and broker_url.startswith(("redis://", "rediss://")):
        return RateLimiter(RedisCounter(broker_url))
    return RateLimiter(MemoryCounter())
