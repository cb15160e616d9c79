"""Column types that mean the same on both backends.

Geometry is shapely in Python, PostGIS geometry through geoalchemy2 on PostgreSQL and WKB
bytes on SQLite (spatial predicates then run in geo/). Datetimes are always UTC-aware."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import geoalchemy2
import numpy as np
import shapely
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import DateTime, Dialect, LargeBinary, type_coerce
from sqlalchemy.types import TypeDecorator, TypeEngine

SRID = 4326


class Geometry(TypeDecorator[shapely.Geometry]):
    """WGS-84 geometry of one type, e.g. Geometry("MULTIPOLYGON")."""

    impl = LargeBinary
    cache_ok = True
    # Read by geoalchemy2's DDL hooks: the migrations create our GiST indexes themselves.
    spatial_index = False

    def __init__(self, geometry_type: str = "GEOMETRY") -> None:
        super().__init__()
        self.geometry_type = geometry_type.upper()

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect is None:
            # geoalchemy2's DDL hooks ask with no dialect; we create spatial indexes ourselves.
            return LargeBinary()
        if dialect.name == "postgresql":
            return dialect.type_descriptor(
                geoalchemy2.Geometry(self.geometry_type, srid=SRID, spatial_index=False)
            )
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: shapely.Geometry | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return from_shape(value, srid=SRID)
        return shapely.to_wkb(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> shapely.Geometry | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return to_shape(value)
        return shapely.from_wkb(value)


def unparsed(column: Any) -> Any:
    """A geometry column's stored value (WKB from SQLite, hex EWKB from PostGIS), left as it
    is, for `parse_all`: thousands of rows' geometries parse in one call at a fraction of the
    cost of one call per row."""
    return type_coerce(column, LargeBinary()).label(column.key)


def parse_all(values: Sequence[Any]) -> np.ndarray[Any, Any]:
    """The shapely geometries of `unparsed` values (None stays None)."""
    return shapely.from_wkb(np.asarray(values, dtype=object))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC; naive values are refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime from the clock")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_POINT = 1  # WKB geometry type
_WITH_SRID = 0x20000000  # EWKB flag: an SRID follows the type


def _packed_points(
    lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any], srid: int | None
) -> tuple[bytes, int]:
    """Points as (E)WKB, little-endian and 2D, back to back in one buffer; and each one's size.
    Packed in one pass, without making geometries (half a million households' points cost
    seconds through GEOS)."""
    head = [("order", "u1"), ("type", "<u4")] + ([("srid", "<u4")] if srid is not None else [])
    packed = np.empty(len(lon), dtype=[*head, ("x", "<f8"), ("y", "<f8")])
    packed["order"], packed["x"], packed["y"] = 1, lon, lat
    if srid is None:
        packed["type"] = _POINT
    else:
        packed["type"], packed["srid"] = _POINT | _WITH_SRID, srid
    return packed.tobytes(), packed.dtype.itemsize


def points_wkb(lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any]) -> list[bytes]:
    """Points' WKB as `shapely.to_wkb` writes it."""
    raw, size = _packed_points(lon, lat, None)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def points_ewkb_hex(lon: np.ndarray[Any, Any], lat: np.ndarray[Any, Any]) -> list[str]:
    """Points' hex EWKB with the SRID, as PostGIS reads it in COPY."""
    raw, size = _packed_points(lon, lat, SRID)
    text = raw.hex().upper()
    return [text[i : i + 2 * size] for i in range(0, len(text), 2 * size)]
