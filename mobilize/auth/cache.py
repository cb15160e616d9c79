"""Recently authenticated tokens, per process, for a while: the phone path then skips the
token, user and binding look-ups on nearly every request (a phone writes every half minute).

Trust ends at once everywhere when credentials change: the committing transaction publishes
the news (`live.credentials_changed`) and every process forgets all it trusted. Only news
that cannot travel (Redis down, a command run without a broker) waits for `ttl_s`
(MOBILIZE_AUTH_CACHE_SECONDS)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from mobilize.auth.actor import Actor


class ActorCache:
    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._entries: dict[str, tuple[Actor, datetime, float]] = {}
        self._lock = threading.Lock()
        self._generation = 0

    def get(self, key: str, now: datetime) -> Actor | None:
        if self._ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        actor, token_expires, cached_until = entry
        if time.monotonic() > cached_until or now >= token_expires:
            return None
        return actor

    def generation(self) -> int:
        """Taken before a look-up and given to `put`: an answer read before a `clear` is
        not kept after it."""
        return self._generation

    def put(self, key: str, actor: Actor, token_expires: datetime, generation: int) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) > 50_000:
                self._entries.clear()
            self._entries[key] = (actor, token_expires, time.monotonic() + self._ttl)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
