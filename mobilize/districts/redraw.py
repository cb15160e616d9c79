"""Redrawing a micro-grid's polygon between imports: checked as the importer checks a grid
(valid, inside its general grid, overlapping no sibling; gaps left are warnings), and every
household and building of the general grid placed again on the new polygons, as an import
would place them. During a live mobilisation of its community the structure stays as it is."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from geo import (
    SUPPORTED_CRS,
    GeoJSONError,
    LocalMetric,
    geometry_to_wgs84,
    place_points,
    read_features,
)
from geo.validate import coverage_gaps, outside_parents, overlapping_siblings, polygon_problem
from mobilize import validation
from mobilize.auth.actor import Actor
from mobilize.auth.policy import editors
from mobilize.auth.scope import in_place, visible
from mobilize.bundle.model import as_multipolygon
from mobilize.bundle.reader import PLACEMENT_TOLERANCE_M
from mobilize.clock import Clock
from mobilize.db.types import parse_all, unparsed
from mobilize.districts.update import DistrictInWartime
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.models import (
    LIVE,
    Building,
    District,
    Grid,
    GridLevel,
    Household,
    Mobilisation,
    MobilisationArea,
    table_of,
)


@dataclass
class Redrawn:
    grids: list[Grid]
    moved_households: list[str] = field(default_factory=list)
    moved_buildings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _polygon(field: str, geojson: Any, crs: str) -> shapely.MultiPolygon:
    if crs not in SUPPORTED_CRS:
        raise InvalidInput("crs", f"unsupported {crs!r}; use one of {', '.join(SUPPORTED_CRS)}")
    try:
        features = read_features(geojson)
    except GeoJSONError as exc:
        raise InvalidInput(field, str(exc)) from exc
    if len(features) != 1 or features[0].geometry is None:
        raise InvalidInput(field, (features[0].error if features else None) or "no polygon")
    geom = geometry_to_wgs84(features[0].geometry, crs)
    if reason := polygon_problem(geom):
        raise InvalidInput(field, reason)
    try:
        return as_multipolygon(geom)
    except TypeError as exc:
        raise InvalidInput(field, str(exc)) from exc


def redraw_micro_grids(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    shapes: Sequence[tuple[int, Any]],
    crs: str = "wgs84",
    placement_tolerance_m: float = PLACEMENT_TOLERANCE_M,
) -> Redrawn:
    """New polygons for micro-grids of one general grid, checked and applied together (a
    boundary between two neighbours moves by redrawing both at once)."""
    keeper = editors(actor, "Mutation.redrawMicroGrids")
    validation.items("grids", list(shapes), min_items=1, max_items=100)
    grids: list[Grid] = []
    new: dict[int, shapely.MultiPolygon] = {}
    for i, (grid_id, geometry) in enumerate(shapes):
        grid = session.scalar(
            select(Grid)
            .where(Grid.id == grid_id, Grid.current(), visible(keeper, Grid))
            .with_for_update()
        )
        if grid is None or grid.level != GridLevel.MICRO.value:
            raise NotFound(f"没有这个微网格 No micro-grid {grid_id}")
        if not session.scalar(select(in_place(keeper, grid.community_id))):
            raise Forbidden(f"redrawMicroGrids: 微网格 {grid.code} 不在您的范围 outside your place")
        if grid.id in new:
            raise InvalidInput(f"grids[{i}].grid", f"{grid.code} is given twice")
        if grids and grid.parent_id != grids[0].parent_id:
            raise InvalidInput(
                f"grids[{i}].grid",
                f"{grid.code} is in another general grid: redraw one general grid at a time",
            )
        grids.append(grid)
        new[grid.id] = _polygon(f"grids[{i}].geometry", geometry, crs)
    first = grids[0]
    live = session.execute(
        select(Mobilisation.id, Mobilisation.title)
        .join(MobilisationArea, MobilisationArea.mobilisation_id == Mobilisation.id)
        .where(
            MobilisationArea.community_id == first.community_id,
            MobilisationArea.active.is_(True),
            Mobilisation.status.in_(LIVE),
        )
        .limit(1)
    ).first()
    if live is not None:
        raise DistrictInWartime(live.id, live.title, [f"grids {g.code}" for g in grids])

    district = session.get_one(District, first.district_id)
    parent = session.get_one(Grid, first.parent_id)
    siblings = session.execute(
        select(Grid.id, Grid.code, unparsed(Grid.geom))
        .where(Grid.parent_id == parent.id, Grid.current())
        .order_by(Grid.id)
    ).all()
    stored = dict(zip((s.id for s in siblings), parse_all([s.geom for s in siblings]), strict=True))
    ids = [s.id for s in siblings]
    codes = [s.code for s in siblings]
    polygons = [new.get(pk, stored[pk]) for pk in ids]
    field_of = {grid.id: f"grids[{i}].geometry" for i, grid in enumerate(grids)}
    metric = LocalMetric.around(district.geom)
    in_m = metric.to_metres(np.asarray(polygons, dtype=object))
    parent_m = metric.to_metres(parent.geom)
    redrawn = [k for k, pk in enumerate(ids) if pk in new]
    for out in outside_parents(in_m[redrawn], [0] * len(redrawn), [parent_m]):
        raise InvalidInput(
            field_of[ids[redrawn[out.child]]],
            f"reaches {out.distance_m:.1f} m outside general grid {parent.code} "
            f"({out.area_m2:.0f} m² outside; tolerance 1 m)",
        )
    for overlap in overlapping_siblings(in_m, [parent.id] * len(ids)):
        a, b = overlap.first, overlap.second
        if ids[a] in new or ids[b] in new:
            mine, other = (a, b) if ids[a] in new else (b, a)
            raise InvalidInput(
                field_of[ids[mine]],
                f"{codes[mine]} overlaps {codes[other]} by {overlap.area_m2:.0f} m² "
                f"({overlap.ratio:.1%} of the smaller; tolerance 0.5%)",
            )
    warnings = [
        f"{gap.area_m2:.0f} m² of general grid {parent.code} is in no micro-grid"
        for gap in coverage_gaps([parent_m], in_m, [0] * len(ids))
    ]

    places = _placed_again(session, metric, ids, polygons, placement_tolerance_m)
    for grid in grids:
        grid.geom = new[grid.id]
        grid.centre = new[grid.id].point_on_surface()
    moved_h = _move(session, Household, places.households)
    moved_b = _move(session, Building, places.buildings)
    counts = dict.fromkeys(ids, 0)
    for target in places.households.values():
        counts[target[1]] += 1
    session.execute(
        update(table_of(Grid))
        .where(Grid.id == bindparam("grid"))
        .values(household_count=bindparam("count")),
        [{"grid": g, "count": n} for g, n in counts.items()],
    )
    for grid in grids:
        session.refresh(grid, ["household_count"])  # written just now, as a batch
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="grid.redrawn",
        subject_type="grid",
        subject_id=parent.code,
        payload={
            "grids": [g.code for g in grids],
            "moved_households": moved_h,
            "moved_buildings": moved_b,
            "warnings": warnings,
        },
    )
    return Redrawn(grids, moved_h, moved_b, warnings)


@dataclass
class _Places:
    """Code -> (id, micro-grid id) of every household and building of the general grid, on
    the new polygons (a household with a building goes where its building goes)."""

    households: dict[str, tuple[int, int, int]]  # code -> id, grid now, grid before
    buildings: dict[str, tuple[int, int, int]]


def _placed_again(
    session: Session,
    metric: LocalMetric,
    ids: list[int],
    shapes: list[shapely.MultiPolygon],
    tolerance_m: float,
) -> _Places:
    def load(model: Any, *extra: Any) -> list[Any]:
        return list(
            session.execute(
                select(model.id, model.code, model.micro_grid_id, unparsed(model.geom), *extra)
                .where(model.micro_grid_id.in_(ids), model.current())
                .order_by(model.id)
            ).all()
        )

    def place(rows: list[Any], what: str) -> list[int]:
        points = parse_all([r.geom for r in rows])
        found = place_points(shapely.get_x(points), shapely.get_y(points), shapes).tolist()
        stray = [i for i, k in enumerate(found) if k < 0]
        if stray:
            nearest = shapely.STRtree(np.asarray(shapes, dtype=object)).nearest(points[stray])
            far = []
            for i, k in zip(stray, nearest.tolist(), strict=True):
                if metric.distance_m(points[i], shapes[k]) <= tolerance_m:
                    found[i] = k
                else:
                    far.append(rows[i].code)
            if far:
                shown = ", ".join(far[:10]) + (
                    f" and {len(far) - 10} more" if len(far) > 10 else ""
                )
                raise InvalidInput(
                    "geometry",
                    f"{len(far)} {what} would lie in no micro-grid ({shown}); cover them or "
                    "redraw the neighbouring micro-grid first",
                )
        return [ids[k] for k in found]

    buildings = load(Building)
    building_grid = dict(zip((b.id for b in buildings), place(buildings, "buildings"), strict=True))
    households = load(Household, Household.building_id)
    loose = [h for h in households if h.building_id not in building_grid]
    loose_grid = dict(zip((h.id for h in loose), place(loose, "households"), strict=True))
    return _Places(
        households={
            h.code: (
                h.id,
                building_grid.get(h.building_id) or loose_grid[h.id],
                h.micro_grid_id,
            )
            for h in households
        },
        buildings={b.code: (b.id, building_grid[b.id], b.micro_grid_id) for b in buildings},
    )


def _move(session: Session, model: Any, placed: dict[str, tuple[int, int, int]]) -> list[str]:
    """Write the new micro-grid of what moved; its codes."""
    moved = {code: v for code, v in placed.items() if v[1] != v[2]}
    if moved:
        table = table_of(model)
        session.execute(
            update(table)
            .where(table.c.id == bindparam("row"))
            .values(micro_grid_id=bindparam("grid")),
            [{"row": pk, "grid": grid} for pk, grid, _ in moved.values()],
        )
    return sorted(moved)
