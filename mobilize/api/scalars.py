"""Scalars beyond GraphQL's own: GeoJSON geometry (RFC 7946, WGS-84), and a DateTime that
refuses a time it cannot hold in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

GeoJSON = NewType("GeoJSON", dict)


def _parse(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError("GeoJSON input must be an object with a 'type'")
    return value


def _parse_datetime(value: Any) -> datetime:
    """ISO 8601, as Strawberry reads it; and it must lie in years 1..9999 once in UTC
    (`9999-12-31T23:59:59-12:00` does not), or every store and comparison would overflow."""
    if not isinstance(value, str):
        raise ValueError(f"DateTime wants an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is not None:
        try:
            parsed.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value[:40]!r} is outside the years 1 to 9999 in UTC") from None
    return parsed


SCALARS: dict[object, ScalarDefinition] = {
    datetime: strawberry.scalar(
        name="DateTime",
        description="Date with time (ISO 8601); give its UTC offset.",
        serialize=datetime.isoformat,
        parse_value=_parse_datetime,
    ),
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="A GeoJSON geometry object (RFC 7946): WGS-84 longitude, latitude.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=lambda value: value,
        parse_value=_parse,
    ),
}
