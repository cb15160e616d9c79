"""Buildings, units and doors for a generated district (bundle format 2), at the proportions
of Wuhou's archive (the seeds): 500,200 households in 11,024 buildings (about 45 each) with
25,397 building units (about 20 households each), two doors a floor.

Its own random stream, drawn after the district is whole: adding buildings leaves every
generated place, household and person exactly as it was."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from mobilize.bundle.model import BuildingRecord, Bundle, household_address
from mobilize.models import GridLevel, ResponderKind

HOUSEHOLDS_PER_BUILDING = 500_200 / 11_024
HOUSEHOLDS_PER_UNIT = 500_200 / 25_397
DOORS_PER_FLOOR = 2
MOST_UNITS = 4


def with_buildings(bundle: Bundle, rng: np.random.Generator) -> Bundle:
    """`bundle` with its households in buildings, units and doors, and each micro-grid's
    members leading its buildings (楼栋长), one building each while there are both."""
    h = bundle.households
    n = len(h)
    micro = [g for g in bundle.grids if g.level == GridLevel.MICRO]
    index = {g.code: i for i, g in enumerate(micro)}
    grid_of = np.fromiter((index[c] for c in h.micro_grid), dtype=np.int64, count=n)
    # Each micro-grid's households west to east, cut into buildings side by side.
    order = np.lexsort((h.lon, grid_of))
    sorted_grid = grid_of[order]
    starts = np.flatnonzero(np.r_[True, sorted_grid[1:] != sorted_grid[:-1]]) if n else order
    ends = np.r_[starts[1:], n] if n else order
    building, unit, door, address = [""] * n, [""] * n, [""] * n, [""] * n
    records: list[BuildingRecord] = []
    by_grid: dict[str, list[str]] = {}
    for start, end in zip(starts, ends, strict=True):
        rows = order[start:end]
        grid = micro[int(sorted_grid[start])]
        count = max(1, round(len(rows) / HOUSEHOLDS_PER_BUILDING * rng.uniform(0.7, 1.3)))
        for b, part in enumerate(np.array_split(rows, count), start=1):
            code = f"{grid.code}B{b:02d}"
            street_address = f"{grid.name.removesuffix('微网格')}院{b}栋"
            units = int(
                np.clip(
                    round(len(part) / HOUSEHOLDS_PER_UNIT * rng.uniform(0.6, 1.4)), 1, MOST_UNITS
                )
            )
            floors = 1
            for u, members in enumerate(np.array_split(part, units), start=1):
                floors = max(floors, math.ceil(len(members) / DOORS_PER_FLOOR))
                for j, i in enumerate(members.tolist()):
                    floor, k = divmod(j, DOORS_PER_FLOOR)
                    building[i], unit[i], door[i] = code, str(u), f"{floor + 1}{k + 1:02d}"
                    address[i] = household_address(street_address, unit[i], door[i])
            # Where it stands: its most central household's point, inside the micro-grid.
            x, y = h.lon[part], h.lat[part]
            at = int(part[np.argmin((x - x.mean()) ** 2 + (y - y.mean()) ** 2)])
            records.append(
                BuildingRecord(
                    code,
                    f"{b}栋",
                    street_address,
                    float(h.lon[at]),
                    float(h.lat[at]),
                    grid.code,
                    floors,
                )
            )
            by_grid.setdefault(grid.code, []).append(code)
    responders = []
    for r in bundle.responders:
        free = by_grid.get(r.home_grid or "", [])
        if r.kind == ResponderKind.MICRO_GRID_MEMBER.value and free:
            r = replace(r, leads_building=free.pop(0))
        responders.append(r)
    households = replace(h, building=building, building_unit=unit, door=door, address=address)
    return replace(bundle, households=households, buildings=records, responders=responders)
