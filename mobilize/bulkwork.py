"""Bulk work (reading, importing or activating a district) without the cycle collector's
pauses.

Such work builds hundreds of thousands of objects that live until it ends; Python's cycle
collector walks them all again each time enough new ones pile up: a third of reading xindu's
bundle, a sixth of activating it. Nothing in this work relies on the collector (its garbage
is freed by reference counting), so it is paused for the duration and resumes after, when
one collection takes whatever cycles were left.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def without_gc_pauses() -> Iterator[None]:
    """The block runs with the cycle collector paused (as it was, if already paused)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
