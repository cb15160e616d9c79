"""A real district outline for `mobilize generate --boundary`: any GeoJSON form, any of the
supported coordinate systems, multipolygons with holes and islands."""

from __future__ import annotations

import json
from pathlib import Path

import shapely

from geo import GeoJSONError, geometry_to_wgs84, read_features
from geo.validate import polygon_problem


class BoundaryError(ValueError):
    pass


def read_boundary(path: str | Path, crs: str) -> shapely.Geometry:
    """The union of the file's polygons, in WGS-84."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise BoundaryError(f"cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise BoundaryError(
            f"line {exc.lineno} column {exc.colno}: malformed JSON: {exc.msg}"
        ) from None
    try:
        features = read_features(document)
    except GeoJSONError as exc:
        raise BoundaryError(str(exc)) from None
    polygons = []
    for feature in features:
        if feature.error or feature.geometry is None:
            raise BoundaryError(f"feature #{feature.index + 1}: {feature.error}")
        parts = [
            g
            for g in shapely.get_parts(feature.geometry)
            if isinstance(g, shapely.Polygon | shapely.MultiPolygon)
        ]
        polygons.extend(parts)
    if not polygons:
        raise BoundaryError("no polygon in the file")
    outline = geometry_to_wgs84(shapely.union_all(polygons), crs)
    if problem := polygon_problem(outline):
        raise BoundaryError(problem)
    return outline
