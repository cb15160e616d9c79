"""A realistic synthetic district: households cluster in an urban core and thin out into
villages; every level is cut from its parent where the households are, so each micro-grid
holds about its share of households; forces follow the preset's figures exactly.

One module because it is one pass with one random stream: each level is cut from the one
before, and splitting the steps would only pass the stream and the partial district around."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import shapely
from numpy.typing import NDArray

from geo import LocalMetric, place_points
from geo.tessellate import allocate, kmeans_seeds, voronoi_cells
from mobilize.bundle.model import (
    Bundle,
    CommunityRecord,
    GridRecord,
    HouseholdTable,
    PairingRecord,
    ResponderRecord,
    StreetRecord,
    TeamRecord,
    UnitRecord,
    as_multipolygon,
)
from mobilize.generate import names
from mobilize.generate.buildings import with_buildings
from mobilize.generate.presets import Preset
from mobilize.models import HouseholdTag, ResponderKind, TeamKind
from mobilize.progress import NoProgress, Progress

_PRECISION_DEG = 1e-7  # about 1 cm, what the bundle files keep

# Yearly shares of households carrying each tag, urban and village (七彩图 rates, plausible).
_TAG_RATES: dict[HouseholdTag, tuple[float, float]] = {
    HouseholdTag.PARTY_MEMBER: (0.12, 0.10),
    HouseholdTag.EMPTY_NEST: (0.07, 0.14),
    HouseholdTag.ELDERLY: (0.13, 0.20),
    HouseholdTag.HARDSHIP: (0.02, 0.05),
    HouseholdTag.DISABILITY: (0.03, 0.04),
    HouseholdTag.RENTED: (0.20, 0.05),
    HouseholdTag.VACANT: (0.05, 0.08),
}
_SKILLS = (
    "driving",
    "first_aid",
    "medical",
    "sampling",
    "logistics",
    "publicity",
    "elder_care",
    "dialect",
    "it_support",
    "security",
)


@dataclass
class _Level:
    """Cells of one level in metres, their parent cell and the households inside."""

    cells: list[shapely.Geometry]
    parent: list[int]
    members: list[NDArray[np.int64]]


def _outline(area_km2: float, rng: np.random.Generator) -> shapely.Polygon:
    """A star-shaped irregular district of the given area, centred on the origin (metres)."""
    theta = np.linspace(0, 2 * np.pi, 361)[:-1]
    r = np.ones_like(theta)
    for k in range(2, 8):
        r += rng.uniform(0.02, 0.10) / math.sqrt(k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    ring = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    unit = shapely.Polygon(ring)
    scale = math.sqrt(area_km2 * 1e6 / unit.area)
    return shapely.Polygon(ring * scale)


def _sample_inside(
    area: shapely.Geometry, n: int, draw: Callable[[int], NDArray[np.float64]]
) -> NDArray[np.float64]:
    shapely.prepare(area)
    out: list[NDArray[np.float64]] = []
    have = 0
    while have < n:
        batch = draw(max(1024, int((n - have) * 1.3)))
        keep = batch[shapely.contains_xy(area, batch[:, 0], batch[:, 1])]
        out.append(keep)
        have += len(keep)
    return np.concatenate(out)[:n]


def _households_xy(
    district: shapely.Geometry, core: NDArray[np.float64], preset: Preset, rng: np.random.Generator
) -> NDArray[np.float64]:
    n = preset.households
    size = math.sqrt(district.area)
    sigma_core = 0.16 * size
    n_core = round(n * preset.urban_share)
    n_village = round((n - n_core) * 0.85)
    n_scatter = n - n_core - n_village
    minx, miny, maxx, maxy = district.bounds

    def uniform(m: int) -> NDArray[np.float64]:
        return np.column_stack([rng.uniform(minx, maxx, m), rng.uniform(miny, maxy, m)])

    n_villages = max(3, round(preset.communities * max(preset.village_share, 0.1) * 3))
    villages = _sample_inside(district, n_villages, uniform)
    sigma_village = min(300.0, 0.03 * size)

    def around_core(m: int) -> NDArray[np.float64]:
        return core + rng.normal(0.0, sigma_core, (m, 2))

    def around_villages(m: int) -> NDArray[np.float64]:
        centres = villages[rng.integers(len(villages), size=m)]
        return centres + rng.normal(0.0, sigma_village, (m, 2))

    parts = [
        _sample_inside(district, n_core, around_core),
        _sample_inside(district, n_village, around_villages),
        _sample_inside(district, n_scatter, uniform),
    ]
    return np.concatenate(parts)


def _split(
    parents: list[shapely.Geometry],
    members: list[NDArray[np.int64]],
    counts: list[int],
    xy: NDArray[np.float64],
    rng: np.random.Generator,
) -> _Level:
    level = _Level(cells=[], parent=[], members=[])
    for p, (parent, idx, k) in enumerate(zip(parents, members, counts, strict=True)):
        seeds = kmeans_seeds(xy[idx], k, rng)
        cells = voronoi_cells(parent, seeds)
        where = place_points(xy[idx, 0], xy[idx, 1], cells)
        for c, cell in enumerate(cells):
            level.cells.append(cell)
            level.parent.append(p)
            level.members.append(idx[where == c])
    return level


def _to_degrees(metric: LocalMetric, cells: list[shapely.Geometry]) -> list[shapely.MultiPolygon]:
    degrees = metric.to_degrees(np.asarray(cells, dtype=object))
    snapped = shapely.set_precision(degrees, _PRECISION_DEG)
    return [as_multipolygon(g) for g in snapped]


def generate_district(
    preset: Preset,
    *,
    seed: int = 0,
    boundary: shapely.Geometry | None = None,
    progress: Progress | None = None,
) -> Bundle:
    """A district bundle for `preset`; the same preset, seed and boundary give the same bundle.

    `boundary` (WGS-84) replaces the synthetic outline: a real district, holes and islands
    included, is then split so that its communities cover it.
    """
    step = (progress or NoProgress()).step
    rng = np.random.default_rng(seed)

    step("drawing the district and its households")
    if boundary is None:
        metric = LocalMetric(preset.centre_lon, preset.centre_lat)
        district_m: shapely.Geometry = _outline(preset.area_km2, rng)
    else:
        metric = LocalMetric.around(boundary)
        district_m = shapely.make_valid(metric.to_metres(boundary))
    largest = max(shapely.get_parts(district_m), key=lambda g: g.area)
    core = np.asarray(shapely.get_coordinates(largest.point_on_surface())[0])
    xy = _households_xy(district_m, core, preset, rng)
    everyone = np.arange(len(xy))

    step("cutting streets and communities")
    streets = _split([district_m], [everyone], [preset.streets], xy, rng)
    per_street = allocate(preset.communities, [len(m) for m in streets.members])
    communities = _split(streets.cells, streets.members, per_street, xy, rng)

    step("cutting general grids and micro-grids")
    micro_per_community = allocate(preset.micro_grids, [len(m) for m in communities.members])
    general_per_community = [
        min(m, max(1, round(m / preset.micro_grids_per_general_grid))) for m in micro_per_community
    ]
    general = _split(communities.cells, communities.members, general_per_community, xy, rng)
    micro_per_general: list[int] = []
    for c, m in enumerate(micro_per_community):
        mine = [g for g, parent in enumerate(general.parent) if parent == c]
        micro_per_general.extend(allocate(m, [len(general.members[g]) for g in mine]))
    micro = _split(general.cells, general.members, micro_per_general, xy, rng)

    step("naming places and converting to WGS-84")
    bundle = _assemble(
        preset, rng, metric, district_m, xy, core, streets, communities, general, micro
    )
    return with_buildings(bundle, np.random.default_rng((seed, 1)))


def _assemble(
    preset: Preset,
    rng: np.random.Generator,
    metric: LocalMetric,
    district_m: shapely.Geometry,
    xy: NDArray[np.float64],
    core: NDArray[np.float64],
    streets: _Level,
    communities: _Level,
    general: _Level,
    micro: _Level,
) -> Bundle:
    district_geom = _to_degrees(metric, [district_m])[0]
    street_geoms = _to_degrees(metric, streets.cells)
    community_geoms = _to_degrees(metric, communities.cells)
    general_geoms = _to_degrees(metric, general.cells)
    micro_geoms = _to_degrees(metric, micro.cells)

    town_count = round(len(streets.cells) * 2 / 9) if len(streets.cells) > 3 else 0
    street_names = names.place_names(len(streets.cells), "街道", rng)
    street_names[len(street_names) - town_count :] = [
        n.replace("街道", "镇") for n in street_names[len(street_names) - town_count :]
    ]
    if preset.street_name is not None and len(street_names) == 1:
        street_names = [preset.street_name]  # the district is called after it
    street_codes = [f"S{i + 1:02d}" for i in range(len(streets.cells))]
    street_records = [
        StreetRecord(c, n, g)
        for c, n, g in zip(street_codes, street_names, street_geoms, strict=True)
    ]

    density = [
        len(m) / max(cell.area, 1.0)
        for m, cell in zip(communities.members, communities.cells, strict=True)
    ]
    n_village = round(len(density) * preset.village_share)
    village = set(np.argsort(density, kind="stable")[:n_village].tolist())
    stems = names.place_names(len(communities.cells), "", rng)
    community_codes: list[str] = []
    community_records = []
    seen_in_street: dict[int, int] = {}
    for i, geom in enumerate(community_geoms):
        s = communities.parent[i]
        seen_in_street[s] = seen_in_street.get(s, 0) + 1
        code = f"{street_codes[s]}C{seen_in_street[s]:03d}"
        community_codes.append(code)
        kind = "village" if i in village else "community"
        community_records.append(
            CommunityRecord(
                code,
                stems[i] + ("村" if kind == "village" else "社区"),
                street_codes[s],
                kind,
                geom,
            )
        )

    grid_records: list[GridRecord] = []
    general_codes: list[str] = []
    counter: dict[int, int] = {}
    for g, geom in enumerate(general_geoms):
        c = general.parent[g]
        counter[c] = counter.get(c, 0) + 1
        code = f"{community_codes[c]}G{counter[c]:02d}"
        general_codes.append(code)
        grid_records.append(
            GridRecord(
                code,
                f"{community_records[c].name}第{counter[c]}网格",
                "general",
                community_codes[c],
                geom,
            )
        )
    micro_codes: list[str] = []
    counter = {}
    for m, geom in enumerate(micro_geoms):
        g = micro.parent[m]
        counter[g] = counter.get(g, 0) + 1
        code = f"{general_codes[g]}M{counter[g]:02d}"
        micro_codes.append(code)
        grid_records.append(
            GridRecord(
                code, f"{grid_records[g].name}{counter[g]}号微网格", "micro", general_codes[g], geom
            )
        )

    households = _households(
        metric, xy, micro, micro_codes, micro_geoms, communities, village, general, rng
    )
    units = _units(preset, metric, district_m, core, rng)
    pairings = _pairings(preset, communities, community_codes, core, units, rng)
    teams = _teams(preset, units, community_records, rng)
    responders = _responders(
        preset,
        metric,
        xy,
        units,
        pairings,
        teams,
        general,
        general_codes,
        micro,
        micro_codes,
        core,
        rng,
    )
    # Three communities in four have their party secretary on record: a grid worker there.
    worker_of = {r.home_grid: r.code for r in responders if r.kind == "grid_worker"}
    community_records = [
        replace(c, secretary=worker_of.get(f"{c.code}G01")) if rng.random() < 0.75 else c
        for c in community_records
    ]
    return Bundle(
        district_code=preset.district_code,
        district_name=preset.district_name,
        district_geom=district_geom,
        streets=street_records,
        communities=community_records,
        grids=grid_records,
        households=households,
        units=units,
        pairings=pairings,
        teams=teams,
        responders=responders,
    )


def _households(
    metric: LocalMetric,
    xy: NDArray[np.float64],
    micro: _Level,
    micro_codes: list[str],
    micro_geoms: list[shapely.MultiPolygon],
    communities: _Level,
    village: set[int],
    general: _Level,
    rng: np.random.Generator,
) -> HouseholdTable:
    order = np.concatenate(micro.members) if micro.members else np.zeros(0, dtype=np.int64)
    lon, lat = metric.lonlat(xy[order, 0], xy[order, 1])
    lon, lat = np.round(lon, 7), np.round(lat, 7)
    # Rounding moves a point by up to 1 cm: place again on the stored polygons, drop strays.
    found = place_points(lon, lat, micro_geoms)
    keep = found >= 0
    lon, lat, found = lon[keep], lat[keep], found[keep]
    n = len(found)
    community_of_micro = np.asarray([general.parent[g] for g in micro.parent], dtype=np.int64)
    in_village = np.isin(community_of_micro[found], np.fromiter(village, dtype=np.int64))
    tags = np.zeros(n, dtype=np.int64)
    for tag, (urban, rural) in _TAG_RATES.items():
        rate = np.where(in_village, rural, urban)
        tags |= np.where(rng.random(n) < rate, tag.bit, 0)
    sizes = np.clip(1 + rng.poisson(1.8, n), 1, 8)
    sizes = np.where(tags & HouseholdTag.VACANT.bit, 0, sizes)
    sizes = np.where((tags & HouseholdTag.EMPTY_NEST.bit) & (sizes > 2), 2, sizes)
    return HouseholdTable(
        code=[f"H{i + 1:07d}" for i in range(n)],
        lon=lon,
        lat=lat,
        size=sizes.astype(np.int64),
        tags=tags,
        micro_grid=[micro_codes[i] for i in found.tolist()],
    )


def _units(
    preset: Preset,
    metric: LocalMetric,
    district_m: shapely.Geometry,
    core: NDArray[np.float64],
    rng: np.random.Generator,
) -> list[UnitRecord]:
    sigma = 0.04 * math.sqrt(district_m.area)
    xy = _sample_inside(district_m, preset.units, lambda m: core + rng.normal(0, sigma, (m, 2)))
    lon, lat = metric.lonlat(xy[:, 0], xy[:, 1])
    return [
        UnitRecord(f"U{i + 1:03d}", name, round(float(x), 7), round(float(y), 7))
        for i, (name, x, y) in enumerate(zip(names.unit_names(preset.units), lon, lat, strict=True))
    ]


def _pairings(
    preset: Preset,
    communities: _Level,
    community_codes: list[str],
    core: NDArray[np.float64],
    units: list[UnitRecord],
    rng: np.random.Generator,
) -> list[PairingRecord]:
    """Every community gets a unit (dealt around the compass so each unit's communities lie
    together); about one in seven gets a second; quotas follow households."""
    if not units or not community_codes:
        return []
    centres = np.asarray([shapely.get_coordinates(c.centroid)[0] for c in communities.cells])
    angle = np.arctan2(centres[:, 1] - core[1], centres[:, 0] - core[0])
    order = np.argsort(angle, kind="stable").tolist()
    chunks = allocate(len(order), [1.0] * len(units), minimum=0)
    pairs: list[tuple[int, int]] = []
    start = 0
    for u, size in enumerate(chunks):
        pairs.extend((u, c) for c in order[start : start + size])
        start += size
    if len(units) > 1:
        for c in order:
            if rng.random() < 0.15:
                first = next(u for u, cc in pairs if cc == c)
                pairs.append(((first + 1 + int(rng.integers(len(units) - 1))) % len(units), c))
    pairs.sort()
    weights = [float(len(communities.members[c])) for _, c in pairs]
    quotas = allocate(
        preset.sunk_cadres, weights, minimum=1 if preset.sunk_cadres >= len(pairs) else 0
    )
    return [
        PairingRecord(units[u].code, community_codes[c], q)
        for (u, c), q in zip(pairs, quotas, strict=True)
    ]


def _teams(
    preset: Preset,
    units: list[UnitRecord],
    communities: list[CommunityRecord],
    rng: np.random.Generator,
) -> list[TeamRecord]:
    teams = []
    for i in range(preset.shock_teams):
        unit = units[i % len(units)] if units else None
        label = unit.name if unit else "区"
        number = i // max(1, len(units)) + 1
        teams.append(
            TeamRecord(
                f"ST{i + 1:03d}",
                f"{label}党员突击队" + (f"{number}队" if number > 1 else ""),
                TeamKind.SHOCK_TEAM.value,
                unit.code if unit else None,
            )
        )
    for i in range(preset.volunteer_teams):
        community = communities[i % len(communities)] if communities else None
        unit = units[int(rng.integers(len(units)))] if units and rng.random() < 0.3 else None
        label = community.name if community else "区"
        number = i // max(1, len(communities)) + 1
        teams.append(
            TeamRecord(
                f"VT{i + 1:03d}",
                f"{label}志愿服务队" + (f"{number}队" if number > 1 else ""),
                TeamKind.VOLUNTEER_SERVICE_TEAM.value,
                unit.code if unit else None,
            )
        )
    return teams


def _responders(
    preset: Preset,
    metric: LocalMetric,
    xy: NDArray[np.float64],
    units: list[UnitRecord],
    pairings: list[PairingRecord],
    teams: list[TeamRecord],
    general: _Level,
    general_codes: list[str],
    micro: _Level,
    micro_codes: list[str],
    core: NDArray[np.float64],
    rng: np.random.Generator,
) -> list[ResponderRecord]:
    """Grid workers, micro-grid members, sunk cadres, shock team members and volunteers."""
    people: list[tuple[str, str | None, str | None, str | None, NDArray[np.float64] | None]] = []

    def home_in(members: NDArray[np.int64]) -> NDArray[np.float64] | None:
        return xy[members[rng.integers(len(members))]] if len(members) else None

    for g, code in enumerate(general_codes):
        people.append(
            (ResponderKind.GRID_WORKER.value, None, None, code, home_in(general.members[g]))
        )
    # Uneven on purpose: some micro-grids have several members, some none.
    weights = rng.gamma(0.8, 1.0, len(micro_codes))
    counts: NDArray[np.int64] | list[int] = (
        rng.multinomial(preset.micro_grid_members, weights / weights.sum())
        if len(micro_codes)
        else []
    )
    for m, count in enumerate(counts):
        for _ in range(int(count)):
            people.append(
                (
                    ResponderKind.MICRO_GRID_MEMBER.value,
                    None,
                    None,
                    micro_codes[m],
                    home_in(micro.members[m]),
                )
            )
    cadres_by_unit: dict[str, int] = {}
    for p in pairings:
        cadres_by_unit[p.unit] = cadres_by_unit.get(p.unit, 0) + p.wartime_quota
    spread = 0.12 * math.sqrt(float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1])) or 1.0)
    for unit in units:
        for _ in range(cadres_by_unit.get(unit.code, 0)):
            people.append(
                (
                    ResponderKind.SUNK_CADRE.value,
                    unit.code,
                    None,
                    None,
                    core + rng.normal(0, spread, 2),
                )
            )
    for team in teams:
        kind = (
            ResponderKind.SHOCK_TEAM_MEMBER
            if team.kind == TeamKind.SHOCK_TEAM
            else ResponderKind.VOLUNTEER
        ).value
        for _ in range(int(rng.integers(6, 15))):
            home = xy[int(rng.integers(len(xy)))] if len(xy) else None
            people.append((kind, team.unit, team.code, None, home))
    for _ in range(preset.individual_volunteers):
        home = xy[int(rng.integers(len(xy)))] if len(xy) else None
        people.append((ResponderKind.VOLUNTEER.value, None, None, None, home))

    n = len(people)
    person_names = names.person_names(n, rng)
    phones = names.phone_numbers(n, rng)
    skill_count = rng.integers(0, 3, n)
    seniority = rng.integers(0, 31, n)
    homes = np.asarray([h if h is not None else (np.nan, np.nan) for *_, h in people])
    lon, lat = metric.lonlat(homes[:, 0], homes[:, 1]) if n else (np.zeros(0), np.zeros(0))
    records = []
    for i, (kind, unit_code, team_code, home_grid, _home) in enumerate(people):
        skills = tuple(sorted(rng.choice(_SKILLS, size=int(skill_count[i]), replace=False)))
        has_home = bool(np.isfinite(lon[i]))
        records.append(
            ResponderRecord(
                code=f"R{i + 1:06d}",
                name=person_names[i],
                phone=phones[i],
                kind=kind,
                unit=unit_code,
                team=team_code,
                home_grid=home_grid,
                lon=round(float(lon[i]), 7) if has_home else None,
                lat=round(float(lat[i]), 7) if has_home else None,
                skills=tuple(str(s) for s in skills),
                seniority=int(seniority[i]),
            )
        )
    return records
