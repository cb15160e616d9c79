"""GCJ-02 / BD-09 conversion against published reference values."""

import numpy as np
import pytest
import shapely

from geo import LocalMetric, geometry_to_wgs84, to_wgs84, wgs84_to

# Published pairs (wandergis/coordtransform's README, reused by hutool and others) for
# Tiananmen, Beijing; the inverse is iterative, so it must undo the forward formula exactly.
WGS84_POINT = (116.404, 39.915)
GCJ02_OF_IT = (116.41024449916938, 39.91640428150164)
BD09_OF_GCJ = {(116.404, 39.915): (116.41036949371029, 39.92133699351021)}
GCJ_OF_BD09 = {(116.404, 39.915): (116.39762729119315, 39.90865673957631)}


def test_wgs84_to_gcj02_matches_the_published_value() -> None:
    lon, lat = wgs84_to(*WGS84_POINT, "gcj02")
    assert (float(lon), float(lat)) == pytest.approx(GCJ02_OF_IT, abs=1e-9)


def test_gcj02_to_wgs84_inverts_to_within_a_millimetre() -> None:
    lon, lat = to_wgs84(*GCJ02_OF_IT, "gcj02")
    assert (float(lon), float(lat)) == pytest.approx(WGS84_POINT, abs=1e-8)


def test_bd09_reference_values() -> None:
    from geo.crs import _bd09_to_gcj02, _gcj02_to_bd09

    for (x, y), expected in BD09_OF_GCJ.items():
        got = _gcj02_to_bd09(np.array(x), np.array(y))
        assert (float(got[0]), float(got[1])) == pytest.approx(expected, abs=1e-9)
    for (x, y), expected in GCJ_OF_BD09.items():
        # The published inverse is an approximation; ours is exact, so they agree to ~10 cm.
        got = _bd09_to_gcj02(np.array(x), np.array(y))
        assert (float(got[0]), float(got[1])) == pytest.approx(expected, abs=2e-6)
        again = _gcj02_to_bd09(*got)
        assert (float(again[0]), float(again[1])) == pytest.approx((x, y), abs=1e-9)


def test_beijing_railway_station_bd09_to_gcj02() -> None:
    # GCJ-02 (39.90245, 116.42703) is BD-09 (39.90851, 116.43351), to the published 5 decimals.
    gcj = wgs84_to(*to_wgs84(116.43351, 39.90851, "bd09"), "gcj02")
    assert float(gcj[0]) == pytest.approx(116.42703, abs=2e-5)
    assert float(gcj[1]) == pytest.approx(39.90245, abs=2e-5)


def test_round_trip_over_chengdu_is_exact_and_the_offset_is_hundreds_of_metres() -> None:
    rng = np.random.default_rng(3)
    lon = rng.uniform(103.9, 104.4, 1000)
    lat = rng.uniform(30.5, 31.0, 1000)
    metric = LocalMetric(104.1, 30.8)
    for crs in ("gcj02", "bd09"):
        x, y = wgs84_to(lon, lat, crs)
        back_lon, back_lat = to_wgs84(x, y, crs)
        assert np.max(np.abs(back_lon - lon)) < 1e-8
        assert np.max(np.abs(back_lat - lat)) < 1e-8
    gx, gy = wgs84_to(lon, lat, "gcj02")
    ax, ay = metric.xy(lon, lat)
    bx, by = metric.xy(gx, gy)
    shift = np.hypot(bx - ax, by - ay)
    assert shift.min() > 200 and shift.max() < 700  # the trap DOMAIN.md warns about


def test_outside_china_is_left_alone_and_unknown_systems_are_refused() -> None:
    lon, lat = to_wgs84(2.35, 48.85, "gcj02")
    assert (float(lon), float(lat)) == (2.35, 48.85)
    with pytest.raises(ValueError, match="unsupported coordinate system"):
        to_wgs84(104.0, 30.0, "utm50n")


def test_geometry_conversion_moves_every_vertex() -> None:
    square = shapely.box(104.0, 30.7, 104.01, 30.71)
    moved = geometry_to_wgs84(square, "gcj02")
    assert moved.is_valid
    assert not moved.equals(square)
    assert shapely.get_num_coordinates(moved) == shapely.get_num_coordinates(square)


def test_a_shared_nearby_plane_measures_like_the_grid_s_own() -> None:
    """Check-ins measure on a cached plane near the grid (building one per call is slow): the
    distances must agree with the grid's own plane to well under a centimetre."""
    rng = np.random.default_rng(5)
    for _ in range(50):
        lon, lat = rng.uniform(103.9, 104.4), rng.uniform(30.5, 31.0)
        grid = shapely.box(lon, lat, lon + 0.003, lat + 0.002)
        here = shapely.Point(lon + rng.uniform(-0.02, 0.02), lat + rng.uniform(-0.02, 0.02))
        exact = LocalMetric.around(grid).distance_m(here, grid)
        assert LocalMetric.near(grid).distance_m(here, grid) == pytest.approx(exact, abs=0.005)
    grid = shapely.box(104.1001, 30.8001, 104.1002, 30.8002)
    assert LocalMetric.near(grid) is LocalMetric.near(grid.buffer(0.001))
