"""Synthetic districts: deterministic, realistic, valid, and the xindu figures exact."""

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import shapely
import shapely.geometry

from geo import LocalMetric
from geo.crs import geometry_from_wgs84
from mobilize.bundle import Bundle, read_bundle, write_bundle
from mobilize.generate import PRESETS, generate_district
from mobilize.generate.boundary import BoundaryError, read_boundary


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def test_same_seed_same_bundle_other_seed_other_bundle(tmp_path: Path) -> None:
    a = write_bundle(generate_district(PRESETS["tiny"], seed=5), tmp_path / "a")
    b = write_bundle(generate_district(PRESETS["tiny"], seed=5), tmp_path / "b")
    c = write_bundle(generate_district(PRESETS["tiny"], seed=6), tmp_path / "c")
    assert _files(a) == _files(b)
    assert _files(a)["grids.geojson"] != _files(c)["grids.geojson"]


def test_tiny_preset_is_valid_and_sized_for_tests(tiny_bundle: Bundle, tmp_path: Path) -> None:
    counts = tiny_bundle.counts()
    assert (counts["streets"], counts["communities"], counts["micro_grids"]) == (1, 2, 20)
    read = read_bundle(write_bundle(tiny_bundle, tmp_path))
    assert read.warnings == []


def test_explicit_counts_override_the_preset() -> None:
    preset = PRESETS["tiny"].with_counts(communities=3, micro_grids=30, units=3)
    counts = generate_district(preset, seed=1).counts()
    assert (counts["communities"], counts["micro_grids"], counts["units"]) == (3, 30, 3)


def test_households_cluster_in_the_core_and_carry_plausible_tags(small_bundle: Bundle) -> None:
    h = small_bundle.households
    per_grid = np.array(list(Counter(h.micro_grid).values()))
    assert 35 <= np.median(per_grid) <= 65
    for tag_share in [np.mean(h.tags & (1 << bit) != 0) for bit in range(7)]:
        assert 0.005 < tag_share < 0.35
    # Micro-grids are smaller where people are dense: the core's grids cover less ground.
    metric = LocalMetric.around(small_bundle.district_geom)
    micro = [g for g in small_bundle.grids if g.level == "micro"]
    areas = np.asarray(metric.area_m2(np.array([g.geom for g in micro], dtype=object)))
    assert np.percentile(areas, 90) > 4 * np.percentile(areas, 10)


@pytest.mark.slow
def test_xindu_preset_carries_the_seed_figures() -> None:
    bundle = generate_district(PRESETS["xindu"], seed=1)
    counts = bundle.counts()
    assert counts["streets"] == 9 and counts["communities"] == 184
    assert counts["micro_grids"] == 10_161
    assert 1_200 <= counts["general_grids"] <= 1_340
    assert abs(counts["households"] - 508_000) < 1_000
    assert counts["units"] == 61
    assert {p.community for p in bundle.pairings} == {c.code for c in bundle.communities}
    assert sum(p.wartime_quota for p in bundle.pairings) == 3_241
    kinds = Counter(r.kind for r in bundle.responders)
    assert kinds["sunk_cadre"] == 3_241
    assert kinds["micro_grid_member"] == 12_518
    assert kinds["grid_worker"] == counts["general_grids"]
    teams = Counter(t.kind for t in bundle.teams)
    assert teams == {"shock_team": 92, "volunteer_service_team": 256}
    staffed = {r.home_grid for r in bundle.responders if r.kind == "micro_grid_member"}
    unstaffed = counts["micro_grids"] - len(staffed)
    assert 500 < unstaffed < 5_000  # spread unevenly: some micro-grids have no member
    assert Counter(c.kind for c in bundle.communities) == {"community": 105, "village": 79}
    assert sum(1 for s in bundle.streets if s.name.endswith("镇")) == 2


def awkward_boundary() -> shapely.MultiPolygon:
    """A district with a lake (hole) and an island, near Chengdu, in WGS-84."""
    main = shapely.box(104.10, 30.78, 104.14, 30.82).difference(
        shapely.Point(104.12, 30.80).buffer(0.004)
    )
    island = shapely.box(104.16, 30.79, 104.17, 30.80)
    return shapely.MultiPolygon([main, island])


def test_a_real_boundary_with_holes_and_islands_is_covered(tmp_path: Path) -> None:
    outline = awkward_boundary()
    source = tmp_path / "boundary.geojson"
    gcj = geometry_from_wgs84(outline, "gcj02")
    source.write_text(
        json.dumps(
            {
                "type": "Feature",
                "properties": {"name": "x"},
                "geometry": shapely.geometry.mapping(gcj),
            }
        )
    )
    boundary = read_boundary(source, "gcj02")
    assert shapely.hausdorff_distance(boundary, outline) < 1e-7
    preset = PRESETS["tiny"].with_counts(communities=4, micro_grids=40)
    bundle = read_bundle(
        write_bundle(generate_district(preset, seed=3, boundary=boundary), tmp_path / "b")
    )
    metric = LocalMetric.around(outline)
    covered = shapely.union_all([c.geom for c in bundle.communities])
    uncovered = metric.area_m2(shapely.difference(outline, covered))
    outside = metric.area_m2(shapely.difference(covered, outline))
    # Only centimetre rounding along ~20 km of edges may differ: well under 100 m² of ~14 km².
    assert uncovered < 100.0 and outside < 100.0
    lake = shapely.Point(104.12, 30.80).buffer(0.0039)
    assert not shapely.contains_xy(lake, bundle.households.lon, bundle.households.lat).any()
    assert any(g.geom.intersects(outline.geoms[1]) for g in bundle.grids if g.level == "micro")


def test_boundary_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "b.geojson"
    path.write_text('{"type": "Point", "coordinates": [104, 30]}')
    with pytest.raises(BoundaryError, match="no polygon"):
        read_boundary(path, "wgs84")
    path.write_text("{oops")
    with pytest.raises(BoundaryError, match="line 1 column 2: malformed JSON"):
        read_boundary(path, "wgs84")


@pytest.mark.parametrize("seed", [1, 2])
def test_the_street_demo_is_called_after_the_street_it_holds(seed: int) -> None:
    bundle = generate_district(PRESETS["street"], seed=seed)
    assert [s.name for s in bundle.streets] == ["桂湖街道"]
    assert bundle.district_name.startswith("桂湖街道")
