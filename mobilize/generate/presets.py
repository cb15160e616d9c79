"""Scale presets. `xindu` carries the figures of the source articles (see shared/DOMAIN.md):
7 streets + 2 towns, 105 communities + 79 villages, 10,161 micro-grids of about 50 households,
12,518 micro-grid members, 61 units paired with all 184 communities sinking 3,241 cadres,
92 shock teams and 256 volunteer service teams, on 496 km²."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    district_code: str
    district_name: str
    area_km2: float
    streets: int
    communities: int
    village_share: float  # share of communities that are villages (村)
    micro_grids: int
    households_per_micro_grid: float
    micro_grids_per_general_grid: float
    units: int
    sunk_cadres: int  # the sum of the pairings' wartime quotas
    micro_grid_members: int
    shock_teams: int
    volunteer_teams: int
    individual_volunteers: int
    urban_share: float  # share of households in the urban core
    centre_lon: float = 104.16  # Xindu, Chengdu
    centre_lat: float = 30.82
    street_name: str | None = None  # a one-street district's street, named as the district is

    @property
    def households(self) -> int:
        return round(self.micro_grids * self.households_per_micro_grid)

    def with_counts(self, **counts: Any) -> Preset:
        """Explicit counts override the preset's."""
        return replace(self, **{k: v for k, v in counts.items() if v is not None})


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny",
        district_code="TINY",
        district_name="小微演示区 Tiny demo district",
        area_km2=1.2,
        streets=1,
        communities=2,
        village_share=0.0,
        micro_grids=20,
        households_per_micro_grid=50,
        micro_grids_per_general_grid=5,
        units=2,
        sunk_cadres=12,
        micro_grid_members=24,
        shock_teams=1,
        volunteer_teams=1,
        individual_volunteers=3,
        urban_share=0.9,
    ),
    "street": Preset(
        name="street",
        district_code="STREET",
        district_name="桂湖街道演示区 Guihu street demo",
        street_name="桂湖街道",
        area_km2=24.0,
        streets=1,
        communities=15,
        village_share=0.3,
        micro_grids=830,
        households_per_micro_grid=50,
        micro_grids_per_general_grid=8,
        units=5,
        sunk_cadres=264,
        micro_grid_members=1022,
        shock_teams=8,
        volunteer_teams=21,
        individual_volunteers=40,
        urban_share=0.6,
    ),
    "xindu": Preset(
        name="xindu",
        district_code="510114",
        district_name="新都区 Xindu district",
        area_km2=496.0,
        streets=9,
        communities=184,
        village_share=79 / 184,
        micro_grids=10161,
        households_per_micro_grid=50,
        micro_grids_per_general_grid=8,
        units=61,
        sunk_cadres=3241,
        micro_grid_members=12518,
        shock_teams=92,
        volunteer_teams=256,
        individual_volunteers=400,
        urban_share=0.55,
    ),
}
