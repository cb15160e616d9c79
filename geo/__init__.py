"""Pure spatial code for mobilize: shapely and pyproj in, geometry out; no database, no web."""

from geo.crs import CRS, SUPPORTED_CRS, geometry_to_wgs84, to_wgs84, wgs84_to
from geo.geojson import GeoJSONError, RawFeature, geometry_to_geojson, read_features
from geo.metric import LocalMetric
from geo.place import place_points

__all__ = [
    "CRS",
    "SUPPORTED_CRS",
    "GeoJSONError",
    "LocalMetric",
    "RawFeature",
    "geometry_to_geojson",
    "geometry_to_wgs84",
    "place_points",
    "read_features",
    "to_wgs84",
    "wgs84_to",
]
