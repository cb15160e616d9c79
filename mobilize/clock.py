"""Time as a dependency: domain code asks a Clock, so drills run on simulated time and
replays are deterministic."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time, for the real day."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """Time that moves only when told: tests and drills."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("time does not run backwards")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            if instant.astimezone(UTC) < self._now:
                raise ValueError("time does not run backwards")
            self._now = instant.astimezone(UTC)
