"""Checks of a nested grid: each function takes geometry in metres (see LocalMetric) and
returns findings by position, so the caller can name the file and feature code."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray

NESTING_TOLERANCE_M = 1.0
OVERLAP_TOLERANCE_RATIO = 0.005
GAP_MIN_WIDTH_M = 1.0
GAP_MIN_AREA_M2 = 1.0


@dataclass(frozen=True)
class Outside:
    child: int
    parent: int
    area_m2: float
    distance_m: float


@dataclass(frozen=True)
class Overlap:
    first: int
    second: int
    area_m2: float
    ratio: float


@dataclass(frozen=True)
class Gap:
    parent: int
    area_m2: float


def polygon_problem(geom: shapely.Geometry | None) -> str | None:
    """Why a geometry cannot be a grid polygon, or None when it can."""
    if geom is None or shapely.is_empty(geom):
        return "polygon is empty"
    if not isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return f"expected a Polygon or MultiPolygon, found {geom.geom_type}"
    if not shapely.is_valid(geom):
        return f"invalid polygon: {shapely.is_valid_reason(geom)}"
    if shapely.area(geom) <= 0:
        return "polygon has no area"
    return None


def outside_parents(
    children: ArrayLike,
    parent_of: Sequence[int],
    parents: ArrayLike,
    tolerance_m: float = NESTING_TOLERANCE_M,
) -> list[Outside]:
    """Children that reach further than `tolerance_m` outside their parent."""
    kids = np.asarray(children, dtype=object)
    if len(kids) == 0:
        return []
    pidx = np.asarray(parent_of, dtype=np.int64)
    parent_arr = np.asarray(parents, dtype=object)[pidx]
    grown = shapely.buffer(np.asarray(parents, dtype=object), tolerance_m)[pidx]
    ok = shapely.covered_by(kids, grown)
    findings = []
    for i in np.flatnonzero(~ok):
        outside = shapely.difference(kids[i], parent_arr[i])
        corners = shapely.points(shapely.get_coordinates(outside))
        distance = np.max(shapely.distance(corners, parent_arr[i]), initial=0.0)
        findings.append(
            Outside(
                child=int(i),
                parent=int(pidx[i]),
                area_m2=float(shapely.area(outside)),
                distance_m=float(distance),
            )
        )
    return findings


def overlapping_siblings(
    geoms: ArrayLike,
    group_of: Sequence[object],
    ratio: float = OVERLAP_TOLERANCE_RATIO,
) -> list[Overlap]:
    """Pairs of siblings (same group) whose overlap exceeds `ratio` of the smaller's area: two
    that cross, two that are the same polygon, and one inside another alike (the DE-9IM
    `overlaps` predicate would miss the last two)."""
    arr = np.asarray(geoms, dtype=object)
    if len(arr) < 2:
        return []
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    groups = np.asarray([str(g) for g in group_of], dtype=object)
    same = groups[left] == groups[right]
    left, right = left[same], right[same]
    if len(left) == 0:
        return []
    areas = shapely.area(shapely.intersection(arr[left], arr[right]))
    smaller = np.minimum(shapely.area(arr[left]), shapely.area(arr[right]))
    ratios = np.divide(areas, smaller, out=np.ones_like(areas), where=smaller > 0)
    return [
        Overlap(first=int(a), second=int(b), area_m2=float(ar), ratio=float(r))
        for a, b, ar, r in zip(left, right, areas, ratios, strict=True)
        if r > ratio
    ]


def coverage_gaps(
    parents: ArrayLike,
    children: ArrayLike,
    parent_of: Sequence[int],
    min_width_m: float = GAP_MIN_WIDTH_M,
    min_area_m2: float = GAP_MIN_AREA_M2,
) -> list[Gap]:
    """Parents whose children leave holes wider than `min_width_m` uncovered."""
    parent_arr = np.asarray(parents, dtype=object)
    originals = np.asarray(children, dtype=object)
    kids = shapely.buffer(originals, min_width_m / 2.0)
    by_parent: dict[int, list[int]] = defaultdict(list)
    for child, parent in enumerate(parent_of):
        by_parent[int(parent)].append(child)
    gaps = []
    for p in range(len(parent_arr)):
        members = by_parent.get(p)
        if not members:
            continue  # a parent with no children is reported by the caller, not as a gap
        # Decide on grown children, so hairlines of float noise are no gap; report true area.
        hole = shapely.difference(parent_arr[p], shapely.union_all(kids[members]))
        if float(shapely.area(hole)) > min_area_m2:
            exact = shapely.difference(parent_arr[p], shapely.union_all(originals[members]))
            gaps.append(Gap(parent=p, area_m2=float(shapely.area(exact))))
    return gaps


def points_outside(
    xs: ArrayLike, ys: ArrayLike, area: shapely.Geometry, tolerance_m: float = NESTING_TOLERANCE_M
) -> NDArray[np.int64]:
    """Positions of points (in metres) further than `tolerance_m` outside `area`."""
    grown = shapely.buffer(area, tolerance_m)
    shapely.prepare(grown)
    inside = shapely.contains_xy(grown, np.asarray(xs, float), np.asarray(ys, float))
    return np.flatnonzero(~inside)
