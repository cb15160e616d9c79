"""Directions to a grid in the map apps Chinese phones have.

Amap (高德) takes GCJ-02 and Baidu BD-09 coordinates; the grid is stored in WGS-84, so each link
carries the point converted to its app's system, or the app would put the person hundreds of
metres from their grid."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from geo.crs import wgs84_to


@dataclass(frozen=True)
class Directions:
    app: str  # amap | baidu
    label: str  # 中文 English
    url: str


def directions_to(lon: float, lat: float, name: str) -> list[Directions]:
    """Links that open each app's walking directions to (lon, lat), a WGS-84 point."""
    g_lon, g_lat = (float(v[0]) for v in wgs84_to([lon], [lat], "gcj02"))
    b_lon, b_lat = (float(v[0]) for v in wgs84_to([lon], [lat], "bd09"))
    title = quote(name)
    return [
        Directions(
            "amap",
            "高德地图 Amap",
            f"https://uri.amap.com/navigation?to={g_lon:.6f},{g_lat:.6f},{title}"
            "&mode=walk&coordinate=gaode&callnative=1&src=mobilize",
        ),
        Directions(
            "baidu",
            "百度地图 Baidu Maps",
            f"baidumap://map/direction?destination=latlng:{b_lat:.6f},{b_lon:.6f}|name:{title}"
            "&coord_type=bd09ll&mode=walking&src=mobilize",
        ),
    ]
