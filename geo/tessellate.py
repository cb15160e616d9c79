"""Splitting a polygon into k parts that follow where people live: k-means over the points
inside it, seeds snapped to real points, Voronoi cells clipped to the parent.

Cells tile the parent exactly (no gaps, no overlaps beyond float noise), each holds at least
its seed point, and the result depends only on the inputs and the random generator."""

from __future__ import annotations

import numpy as np
import shapely
from numpy.typing import NDArray

_KMEANS_ROUNDS = 10


def kmeans_seeds(
    xy: NDArray[np.float64], k: int, rng: np.random.Generator, sample: int = 20_000
) -> NDArray[np.float64]:
    """k distinct seed points taken from `xy`, spread like the points (k-means++, Lloyd)."""
    unique = np.unique(xy, axis=0)
    if len(unique) <= k:
        return unique
    pts = (
        unique if len(unique) <= sample else unique[rng.choice(len(unique), sample, replace=False)]
    )
    centres = np.empty((k, 2))
    centres[0] = pts[rng.integers(len(pts))]
    d2 = np.sum((pts - centres[0]) ** 2, axis=1)
    for i in range(1, k):
        total = d2.sum()
        pick = rng.choice(len(pts), p=d2 / total) if total > 0 else rng.integers(len(pts))
        centres[i] = pts[pick]
        d2 = np.minimum(d2, np.sum((pts - centres[i]) ** 2, axis=1))
    for _ in range(_KMEANS_ROUNDS):
        nearest = _nearest(pts, centres)
        for i in range(k):
            members = pts[nearest == i]
            if len(members):
                centres[i] = members.mean(axis=0)
    # Snap each centre to a distinct real point, so every cell holds at least one point.
    nearest_point = _nearest(centres, unique)
    taken: set[int] = set()
    seeds = []
    for c, j in zip(centres, nearest_point, strict=True):
        if int(j) in taken:
            d = np.sum((unique - c) ** 2, axis=1)
            d[list(taken)] = np.inf
            j = int(np.argmin(d))
        taken.add(int(j))
        seeds.append(unique[j])
    return np.asarray(seeds)


def _nearest(points: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.int64]:
    out = np.empty(len(points), dtype=np.int64)
    step = max(1, 2_000_000 // max(1, len(centres)))
    for start in range(0, len(points), step):
        chunk = points[start : start + step]
        d = ((chunk[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        out[start : start + step] = np.argmin(d, axis=1)
    return out


def voronoi_cells(parent: shapely.Geometry, seeds: NDArray[np.float64]) -> list[shapely.Geometry]:
    """The parent split into one polygonal cell per seed, in seed order."""
    if len(seeds) == 1:
        return [parent]
    minx, miny, maxx, maxy = parent.bounds
    pad = max(maxx - minx, maxy - miny)
    frame = shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame, ordered=True)
    cells = shapely.intersection(shapely.get_parts(diagram), parent)
    return [polygonal(c) for c in cells]


def polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Only the areal parts of a geometry (overlay results may carry stray lines and points)."""
    if isinstance(geom, shapely.Polygon | shapely.MultiPolygon):
        return geom
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, shapely.Polygon) and p.area > 0]
    return shapely.MultiPolygon(parts) if len(parts) != 1 else parts[0]


def allocate(total: int, weights: NDArray[np.float64] | list[float], minimum: int = 1) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder), >= minimum."""
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    if n == 0:
        return []
    base = np.full(n, minimum, dtype=np.int64)
    rest = total - base.sum()
    if rest <= 0:
        return base.tolist()
    share = w / w.sum() * rest if w.sum() > 0 else np.full(n, rest / n)
    floors = np.floor(share).astype(np.int64)
    left = int(rest - floors.sum())
    order = np.argsort(-(share - floors), kind="stable")
    floors[order[:left]] += 1
    return (base + floors).tolist()
