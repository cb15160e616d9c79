"""A district as read from (or written to) a bundle: all geometry already in WGS-84."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from numpy.typing import NDArray

from mobilize.bundle.problems import Problem

BUNDLE_FORMAT = "mobilize-bundle/2"  # what the writer writes
READABLE_FORMATS = ("mobilize-bundle/1", BUNDLE_FORMAT)  # 1: no buildings, units or doors


@dataclass(frozen=True)
class StreetRecord:
    code: str
    name: str
    geom: shapely.MultiPolygon


@dataclass(frozen=True)
class CommunityRecord:
    code: str
    name: str
    street: str
    kind: str
    geom: shapely.MultiPolygon
    secretary: str | None = None  # responder code of the community's party secretary


@dataclass(frozen=True)
class GridRecord:
    code: str
    name: str
    level: str
    parent: str  # community code for general grids, general-grid code for micro-grids
    geom: shapely.MultiPolygon


@dataclass
class HouseholdTable:
    """Households as columns: half a million rows stay cheap this way."""

    code: list[str]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    size: NDArray[np.int64]
    tags: NDArray[np.int64]  # HouseholdTag bitmask
    micro_grid: list[str]  # placed or given micro-grid code
    # Format 2; "" where not given (a format 1 bundle, a house with no building).
    building: list[str] = field(default_factory=list)
    building_unit: list[str] = field(default_factory=list)  # 单元, `unit` in the file
    door: list[str] = field(default_factory=list)
    address: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("building", "building_unit", "door", "address"):
            if not getattr(self, name):
                setattr(self, name, [""] * len(self.code))

    def __len__(self) -> int:
        return len(self.code)

    def subset(self, rows: Sequence[int]) -> HouseholdTable:
        index = np.asarray(rows, dtype=np.int64)
        return HouseholdTable(
            code=[self.code[i] for i in rows],
            lon=self.lon[index],
            lat=self.lat[index],
            size=self.size[index],
            tags=self.tags[index],
            micro_grid=[self.micro_grid[i] for i in rows],
            building=[self.building[i] for i in rows],
            building_unit=[self.building_unit[i] for i in rows],
            door=[self.door[i] for i in rows],
            address=[self.address[i] for i in rows],
        )


@dataclass(frozen=True)
class BuildingRecord:
    """楼栋, in one micro-grid."""

    code: str
    name: str
    address: str
    lon: float
    lat: float
    micro_grid: str
    floors: int


@dataclass(frozen=True)
class UnitRecord:
    code: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class PairingRecord:
    unit: str
    community: str
    wartime_quota: int


@dataclass(frozen=True)
class TeamRecord:
    code: str
    name: str
    kind: str
    unit: str | None


@dataclass(frozen=True)
class ResponderRecord:
    code: str
    name: str
    phone: str
    kind: str
    unit: str | None
    team: str | None
    home_grid: str | None
    lon: float | None
    lat: float | None
    skills: tuple[str, ...]
    seniority: int = 0  # years of service; the most senior sunk cadre leads without a secretary
    leads_building: str | None = None  # 楼栋长: the building they lead


@dataclass
class Bundle:
    district_code: str
    district_name: str
    district_geom: shapely.MultiPolygon
    streets: list[StreetRecord]
    communities: list[CommunityRecord]
    grids: list[GridRecord]
    households: HouseholdTable
    units: list[UnitRecord]
    pairings: list[PairingRecord]
    teams: list[TeamRecord]
    responders: list[ResponderRecord]
    buildings: list[BuildingRecord] = field(default_factory=list)
    source_crs: str = "wgs84"
    warnings: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "streets": len(self.streets),
            "communities": len(self.communities),
            "general_grids": sum(1 for g in self.grids if g.level == "general"),
            "micro_grids": sum(1 for g in self.grids if g.level == "micro"),
            "buildings": len(self.buildings),
            "households": len(self.households),
            "units": len(self.units),
            "pairings": len(self.pairings),
            "teams": len(self.teams),
            "responders": len(self.responders),
        }


def as_multipolygon(geom: shapely.Geometry) -> shapely.MultiPolygon:
    """Grids are stored as MULTIPOLYGON, one type per column for QGIS and GDAL."""
    if isinstance(geom, shapely.MultiPolygon):
        return geom
    if isinstance(geom, shapely.Polygon):
        return shapely.MultiPolygon([geom])
    raise TypeError(f"expected a polygon, got {geom.geom_type}")


def household_address(building_address: str, unit: str, door: str) -> str:
    """A household's address from its building's: 「…3栋」 + 「2单元」 + 「502室」."""
    return building_address + (f"{unit}单元" if unit else "") + (f"{door}室" if door else "")
