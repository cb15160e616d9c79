"""Nesting, overlap, coverage and placement checks, in metres."""

import numpy as np
import shapely

from geo import LocalMetric, place_points
from geo.validate import coverage_gaps, outside_parents, overlapping_siblings, polygon_problem


def test_child_within_one_metre_of_its_parent_passes_and_beyond_fails() -> None:
    parent = shapely.box(0, 0, 100, 100)
    slightly = shapely.box(0, 0, 100.5, 100)
    clearly = shapely.box(0, 0, 103, 100)
    found = outside_parents([slightly, clearly], [0, 0], [parent])
    assert [f.child for f in found] == [1]
    assert abs(found[0].distance_m - 3.0) < 1e-9
    assert abs(found[0].area_m2 - 300.0) < 1e-6


def test_sibling_overlap_tolerance_is_half_a_percent_of_the_smaller() -> None:
    a = shapely.box(0, 0, 100, 100)
    touching = shapely.box(100, 0, 200, 100)
    small_overlap = shapely.box(99.6, 0, 200, 100)  # 40 m² = 0.4 %
    big_overlap = shapely.box(99, 0, 200, 100)  # 100 m² = 1 %
    assert overlapping_siblings([a, touching], ["g", "g"]) == []
    assert overlapping_siblings([a, small_overlap], ["g", "g"]) == []
    found = overlapping_siblings([a, big_overlap], ["g", "g"])
    assert len(found) == 1 and abs(found[0].ratio - 0.01) < 1e-9
    # Not siblings: different parents are not compared here.
    assert overlapping_siblings([a, big_overlap], ["g", "h"]) == []


def test_a_sibling_drawn_twice_or_inside_another_is_an_overlap() -> None:
    a = shapely.box(0, 0, 100, 100)
    same = shapely.box(0, 0, 100, 100)
    inside = shapely.box(10, 10, 20, 20)
    twice = overlapping_siblings([a, same], ["g", "g"])
    assert [(o.first, o.second, o.ratio) for o in twice] == [(0, 1, 1.0)]
    within = overlapping_siblings([a, inside], ["g", "g"])
    assert [(o.first, o.second, o.area_m2, o.ratio) for o in within] == [(0, 1, 100.0, 1.0)]


def test_gaps_in_micro_grid_cover_are_found_and_hairlines_ignored() -> None:
    general = shapely.box(0, 0, 100, 100)
    left = shapely.box(0, 0, 50, 100)
    right_hairline = shapely.box(50.2, 0, 100, 100)
    right_gap = shapely.box(60, 0, 100, 100)
    assert coverage_gaps([general], [left, right_hairline], [0, 0]) == []
    gaps = coverage_gaps([general], [left, right_gap], [0, 0])
    assert len(gaps) == 1 and abs(gaps[0].area_m2 - 1000.0) < 1e-6


def test_polygon_problems_are_named() -> None:
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    assert "Self-intersection" in (polygon_problem(bowtie) or "")
    assert polygon_problem(shapely.Point(0, 0)) == "expected a Polygon or MultiPolygon, found Point"
    assert polygon_problem(shapely.Polygon()) == "polygon is empty"
    assert polygon_problem(shapely.box(0, 0, 1, 1)) is None


def test_placement_is_deterministic_on_shared_edges_and_minus_one_outside() -> None:
    polys = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)]
    found = place_points([0.5, 1.0, 1.5, 5.0], [0.5, 0.5, 0.5, 5.0], polys)
    assert found.tolist() == [0, 0, 1, -1]


def test_local_metric_measures_a_kilometre_at_chengdu() -> None:
    metric = LocalMetric(104.06, 30.66)
    # One degree of longitude at 30.66°N is about 95.9 km on the WGS-84 ellipsoid.
    x, _ = metric.xy(np.array([104.06 + 0.01]), np.array([30.66]))
    assert abs(float(x[0]) - 958.4) < 1.0
    a, b = shapely.Point(104.06, 30.66), shapely.Point(104.06, 30.67)
    assert abs(metric.distance_m(a, b) - 1109.0) < 2.0
