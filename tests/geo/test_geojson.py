"""GeoJSON as real files come, and RFC 7946 output."""

import math

import pytest
import shapely

from geo import GeoJSONError, geometry_to_geojson, read_features

SQUARE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}


def test_feature_collection_feature_and_bare_geometry_all_read() -> None:
    collection = {
        "type": "FeatureCollection",
        "name": "stray member",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": [{"type": "Feature", "properties": {"code": "A"}, "geometry": SQUARE}],
    }
    assert read_features(collection)[0].properties == {"code": "A"}
    feature = {"type": "Feature", "properties": None, "geometry": SQUARE, "bbox": [0, 0, 1, 1]}
    read = read_features(feature)[0].geometry
    assert read is not None and read.equals(shapely.box(0, 0, 1, 1))
    bare = read_features(SQUARE)[0].geometry
    assert bare is not None and bare.area == 1


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        (None, "no geometry"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, math.nan], [1, 1], [0, 0]]]},
            "not finite",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], ["a", 0], [1, 1], [0, 0]]]}, "not a number"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "malformed Polygon"),
        ({"type": "Hexagon", "coordinates": []}, "unknown geometry type"),
    ],
)
def test_a_bad_feature_is_reported_without_losing_the_others(
    geometry: object, message: str
) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": geometry},
            {"type": "Feature", "properties": {}, "geometry": SQUARE},
        ],
    }
    bad, good = read_features(doc)
    assert bad.error is not None and message in bad.error
    assert good.error is None and good.geometry is not None


def test_not_geojson_at_all() -> None:
    with pytest.raises(GeoJSONError):
        read_features([1, 2, 3])
    with pytest.raises(GeoJSONError):
        read_features({"type": "Topology"})


def test_output_is_counter_clockwise_and_rounded() -> None:
    clockwise = shapely.Polygon([(0, 0), (0, 1.000000001), (1, 1), (1, 0)])
    out = geometry_to_geojson(clockwise)
    ring = out["coordinates"][0]
    assert shapely.LinearRing(ring).is_ccw
    assert all(x == round(x, 7) and y == round(y, 7) for x, y in ring)
