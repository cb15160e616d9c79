"""Checks for input at the edge; each failure names the field (InvalidInput), so mutations
return it in their typed error union."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

from mobilize.errors import InvalidInput

T = TypeVar("T")


def text(
    field: str, value: str | None, *, max_len: int, min_len: int = 1, multiline: bool = False
) -> str:
    """Trimmed text of a sane length, without control characters; with `multiline`, line
    breaks are kept (as `\n`)."""
    value = (value or "").strip()
    if multiline:
        value = "\n".join(line.rstrip() for line in value.splitlines())
    if not min_len <= len(value) <= max_len:
        raise InvalidInput(field, f"must be {min_len} to {max_len} characters")
    if any(ord(ch) < 32 and not (multiline and ch == "\n") for ch in value):
        raise InvalidInput(field, "contains control characters")
    return value


def point(field: str, lon: float, lat: float) -> tuple[float, float]:
    """A longitude/latitude pair that is finite and on the globe."""
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise InvalidInput(field, "coordinates must be finite numbers")
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        swapped = -180.0 <= lat <= 180.0 and -90.0 <= lon <= 90.0
        hint = " (longitude and latitude swapped?)" if swapped else ""
        raise InvalidInput(field, f"coordinates {lon}, {lat} out of range{hint}")
    return lon, lat


def items(field: str, values: Sequence[T], *, max_items: int, min_items: int = 0) -> list[T]:
    """A list no longer than the service is built to take in one call."""
    if not min_items <= len(values) <= max_items:
        raise InvalidInput(field, f"must hold {min_items} to {max_items} items, got {len(values)}")
    return list(values)
