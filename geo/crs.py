"""China's map coordinate systems and their conversion to WGS-84.

GCJ-02 (Amap, Tencent) shifts WGS-84 by a non-invertible formula of a few hundred metres;
BD-09 (Baidu) applies a further rotation on top of GCJ-02. The forward formulas are public;
the inverse is found by fixed-point iteration until the forward image matches to ~1 mm.
Points outside China's bounding box are left as they are, as the official formula does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

CRS = Literal["wgs84", "gcj02", "bd09"]
SUPPORTED_CRS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0
_INVERSE_TOLERANCE_DEG = 1e-9
_INVERSE_MAX_STEPS = 30

Floats = NDArray[np.float64]


def _in_china(lon: Floats, lat: Floats) -> NDArray[np.bool_]:
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _delta(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    d_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sqrt_abs_x
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sqrt_abs_x
        + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, d_lon, 0.0), np.where(inside, d_lat, 0.0)


def _wgs84_to_gcj02(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    d_lon, d_lat = _delta(lon, lat)
    return lon + d_lon, lat + d_lat


def _invert(
    forward: Callable[[Floats, Floats], tuple[Floats, Floats]],
    lon: Floats,
    lat: Floats,
    guess: tuple[Floats, Floats],
) -> tuple[Floats, Floats]:
    """Solve forward(x) = (lon, lat) by fixed-point steps; the shifts are smooth and small."""
    x, y = guess[0].copy(), guess[1].copy()
    for _ in range(_INVERSE_MAX_STEPS):
        fx, fy = forward(x, y)
        err_x, err_y = fx - lon, fy - lat
        x -= err_x
        y -= err_y
        worst = max(np.max(np.abs(err_x), initial=0.0), np.max(np.abs(err_y), initial=0.0))
        if worst < _INVERSE_TOLERANCE_DEG:
            break
    return x, y


def _gcj02_to_wgs84(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    return _invert(_wgs84_to_gcj02, lon, lat, (lon, lat))


def _gcj02_to_bd09(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    """Baidu's published inverse is itself approximate (~1e-6°); polish it to the exact one."""
    return _invert(_gcj02_to_bd09, lon, lat, _bd09_to_gcj02_approx(lon, lat))


def _bd09_to_gcj02_approx(lon: Floats, lat: Floats) -> tuple[Floats, Floats]:
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[Floats, Floats]:
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def to_wgs84(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[Floats, Floats]:
    """Convert coordinates given in `crs` to WGS-84 (EPSG:4326), vectorised."""
    x, y = _arrays(lon, lat)
    if crs == "wgs84":
        return x.copy(), y.copy()
    if crs == "gcj02":
        return _gcj02_to_wgs84(x, y)
    if crs == "bd09":
        return _gcj02_to_wgs84(*_bd09_to_gcj02(x, y))
    raise ValueError(f"unsupported coordinate system {crs!r}; expected one of {SUPPORTED_CRS}")


def wgs84_to(lon: ArrayLike, lat: ArrayLike, crs: str) -> tuple[Floats, Floats]:
    """Convert WGS-84 coordinates to `crs`: the way out to Chinese web maps, and for tests."""
    x, y = _arrays(lon, lat)
    if crs == "wgs84":
        return x.copy(), y.copy()
    if crs == "gcj02":
        return _wgs84_to_gcj02(x, y)
    if crs == "bd09":
        return _gcj02_to_bd09(*_wgs84_to_gcj02(x, y))
    raise ValueError(f"unsupported coordinate system {crs!r}; expected one of {SUPPORTED_CRS}")


def _transform_geometry(
    geom: shapely.Geometry, fn: Callable[[Floats, Floats, str], tuple[Floats, Floats]], crs: str
) -> shapely.Geometry:
    def apply(coords: Floats) -> Floats:
        lon, lat = fn(coords[:, 0], coords[:, 1], crs)
        return np.column_stack([lon, lat])

    return shapely.transform(geom, apply)


def geometry_to_wgs84(geom: shapely.Geometry, crs: str) -> shapely.Geometry:
    """Convert every vertex of a geometry given in `crs` to WGS-84."""
    return geom if crs == "wgs84" else _transform_geometry(geom, to_wgs84, crs)


def geometry_from_wgs84(geom: shapely.Geometry, crs: str) -> shapely.Geometry:
    """Convert every vertex of a WGS-84 geometry to `crs`."""
    return geom if crs == "wgs84" else _transform_geometry(geom, wgs84_to, crs)
