"""The physical limit no plan can beat: for each micro-grid, the earliest any person the
call-up may send there could stand in it (a median answer, a median preparation, and their
trip at the drill's speeds), and the latest of those over the district. A run's time to 100 %
is measured against it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.drill.params import DrillParams
from mobilize.mobilisation import callup
from mobilize.mobilisation.rules import RULES, StaffingRule, TravelMode
from mobilize.models import Grid, MobilisationKind


@dataclass(frozen=True)
class LowerBound:
    minutes: float  # the latest grid's earliest possible first arrival
    grid: str  # the grid that sets it
    p95_minutes: float  # 95 % of grids could be reached by then

    def as_dict(self) -> dict[str, object]:
        return {
            "lower_bound_min": round(self.minutes, 1),
            "lower_bound_grid": self.grid,
            "lower_bound_p95_min": round(self.p95_minutes, 1),
        }


def travel_rule(params: DrillParams) -> StaffingRule:
    """The staffing rule's modes and distances at the drill's speeds and detour."""
    base = RULES[MobilisationKind.EPIDEMIC]
    walk, cycle, drive = base.modes
    return StaffingRule(
        detour_factor=params.detour_factor,
        modes=(
            TravelMode(walk.name, walk.up_to_m, params.walk_kmh),
            TravelMode(cycle.name, cycle.up_to_m, params.cycle_kmh),
            TravelMode(drive.name, drive.up_to_m, params.drive_kmh),
        ),
    )


def lower_bound(
    session: Session, *, district_id: int, params: DrillParams, now: datetime
) -> LowerBound:
    problem = callup.district_problem(
        session, district_id=district_id, rule=RULES[MobilisationKind.EPIDEMIC], now=now
    )
    grids = problem.grids
    at = {g.grid_id: k for k, g in enumerate(grids)}
    xy = np.array([(g.x, g.y) for g in grids]) if grids else np.zeros((0, 2))
    best = np.full(len(grids), np.inf)  # metres to the nearest person who may go there
    free = [p for p in problem.people if p.grids is None]
    free += [m for team in problem.teams for m in team.members]
    if free and len(grids):
        tree = shapely.STRtree(shapely.points([(p.x, p.y) for p in free]))
        (where, _), distance = tree.query_nearest(shapely.points(xy), return_distance=True)
        np.minimum.at(best, where, distance)
    for person in problem.people:
        for grid_id in (*(person.grids or ()), *person.nearby):
            k = at.get(grid_id)
            if k is not None:
                best[k] = min(best[k], float(np.hypot(xy[k, 0] - person.x, xy[k, 1] - person.y)))
    reachable = np.isfinite(best)
    minutes = np.full(len(grids), np.inf)
    minutes[reachable] = travel_rule(params).travel_minutes(best[reachable])
    minutes += params.ack_median_min + params.prepare_median_min
    if not len(grids):
        return LowerBound(0.0, "", 0.0)
    worst = int(np.argmax(minutes))
    code = session.scalar(select(Grid.code).where(Grid.id == grids[worst].grid_id)) or ""
    return LowerBound(float(minutes[worst]), code, float(np.percentile(minutes, 95)))
