"""Reading GeoJSON as real files come: a FeatureCollection, one Feature or a bare geometry,
often with stray members (`crs`, `name`, `bbox`) that we ignore; and writing RFC 7946."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import shapely.geometry

_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


class GeoJSONError(ValueError):
    """The document as a whole is not GeoJSON we can read."""


@dataclass(frozen=True)
class RawFeature:
    """One feature as found in a file: its position, properties and geometry, or why not."""

    index: int
    properties: dict[str, Any] = field(default_factory=dict)
    geometry: shapely.Geometry | None = None
    error: str | None = None


def _iter_coordinates(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple):
        if value and all(not isinstance(v, list | tuple) for v in value):
            yield from value
        else:
            for item in value:
                yield from _iter_coordinates(item)


def _check_coordinates(obj: Mapping[str, Any]) -> str | None:
    if obj.get("type") == "GeometryCollection":
        for member in obj.get("geometries") or []:
            if isinstance(member, Mapping) and (problem := _check_coordinates(member)):
                return problem
        return None
    for number in _iter_coordinates(obj.get("coordinates")):
        if isinstance(number, bool) or not isinstance(number, int | float):
            return f"coordinate {number!r} is not a number"
        if not math.isfinite(number):
            return f"coordinate {number!r} is not finite"
    return None


def _read_geometry(obj: Any) -> tuple[shapely.Geometry | None, str | None]:
    if obj is None:
        return None, "feature has no geometry"
    if not isinstance(obj, Mapping):
        return None, "geometry is not a JSON object"
    kind = obj.get("type")
    if kind not in _GEOMETRY_TYPES:
        return None, f"unknown geometry type {kind!r}"
    if kind != "GeometryCollection" and "coordinates" not in obj:
        return None, f"{kind} has no coordinates"
    if problem := _check_coordinates(obj):
        return None, problem
    try:
        geom = shapely.geometry.shape(obj)
    except (ValueError, TypeError, IndexError, AttributeError, shapely.errors.GEOSException) as exc:
        return None, f"malformed {kind}: {exc}"
    return geom, None


def read_features(document: Any) -> list[RawFeature]:
    """Read a parsed GeoJSON document into features, keeping per-feature problems."""
    if not isinstance(document, Mapping):
        raise GeoJSONError("top level is not a JSON object")
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise GeoJSONError("FeatureCollection has no 'features' list")
        return [_read_feature(i, f) for i, f in enumerate(features)]
    if kind == "Feature":
        return [_read_feature(0, document)]
    if kind in _GEOMETRY_TYPES:
        geom, error = _read_geometry(document)
        return [RawFeature(index=0, geometry=geom, error=error)]
    raise GeoJSONError(f"unknown GeoJSON type {kind!r}")


def _read_feature(index: int, obj: Any) -> RawFeature:
    if not isinstance(obj, Mapping) or obj.get("type") != "Feature":
        return RawFeature(index=index, error="not a GeoJSON Feature")
    props = obj.get("properties")
    if props is not None and not isinstance(props, Mapping):
        return RawFeature(index=index, error="'properties' is not a JSON object")
    geom, error = _read_geometry(obj.get("geometry"))
    return RawFeature(index=index, properties=dict(props or {}), geometry=geom, error=error)


def geometry_to_geojson(geom: shapely.Geometry, decimals: int = 7) -> dict[str, Any]:
    """RFC 7946 geometry: WGS-84, exterior rings counter-clockwise, ~1 cm precision."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        geom = shapely.orient_polygons(geom, exterior_cw=False)
    rounded = shapely.transform(geom, lambda coords: np.round(coords, decimals))
    return dict(shapely.geometry.mapping(rounded))
