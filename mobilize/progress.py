"""Reporting progress of long steps without tying the domain to a terminal library."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def step(self, name: str, total: int | None = None) -> None:
        """A new step begins; `total` units of work when known."""
        ...

    def advance(self, amount: int = 1) -> None:
        """Some units of the current step are done."""
        ...


class NoProgress:
    """Progress nobody watches (tests, the API)."""

    def step(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass
