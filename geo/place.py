"""Point-in-polygon in bulk: which polygon holds each point, through an STRtree."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray


def place_points(xs: ArrayLike, ys: ArrayLike, polygons: ArrayLike) -> NDArray[np.int64]:
    """Index into `polygons` of the polygon that covers each point, -1 where none does.

    A point on a shared edge goes to the lowest-index polygon, so placement is deterministic.
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    polys = np.asarray(polygons, dtype=object)
    result = np.full(len(xs), -1, dtype=np.int64)
    if len(xs) == 0 or len(polys) == 0:
        return result
    points = shapely.points(xs, ys)
    tree = shapely.STRtree(polys)
    point_idx, poly_idx = tree.query(points, predicate="intersects")
    if len(point_idx):
        # Sort so that, per point, the lowest polygon index comes last and wins the assignment.
        order = np.lexsort((-poly_idx, point_idx))
        result[point_idx[order]] = poly_idx[order]
    return result
