"""Scalars beyond GraphQL's own: GeoJSON geometry (RFC 7946, WGS-84)."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

GeoJSON = NewType("GeoJSON", dict)  # type: ignore[type-arg]


def _parse(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError("GeoJSON input must be an object with a 'type'")
    return value


SCALARS: dict[object, ScalarDefinition] = {
    GeoJSON: strawberry.scalar(
        name="GeoJSON",
        description="A GeoJSON geometry object (RFC 7946): WGS-84 longitude, latitude.",
        specified_by_url="https://www.rfc-editor.org/rfc/rfc7946",
        serialize=lambda value: value,
        parse_value=_parse,
    )
}
