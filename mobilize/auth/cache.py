"""Recently authenticated tokens, per process, for a few seconds: the phone path then skips
the token, user and binding look-ups on every request. A token revoked through this process
stops at once; through another process, within `ttl_s` (MOBILIZE_AUTH_CACHE_SECONDS)."""

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

    def put(self, key: str, actor: Actor, token_expires: datetime) -> None:
        if self._ttl <= 0:
            return
        with self._lock:
            if len(self._entries) > 50_000:
                self._entries.clear()
            self._entries[key] = (actor, token_expires, time.monotonic() + self._ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
