"""The district in the API: its places, people and pairings as GraphQL types, each mapped
explicitly from its ORM row by `from_model`, and the queries that page through them.

Relationships resolve through the request's DataLoaders, so a page of 500 grids with their
parents and children costs the same few statements as a page of 5."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import shapely
import strawberry
from strawberry import Private

from geo import geometry_to_geojson
from mobilize import models as m
from mobilize.api.common import ContextInfo, load_one, related
from mobilize.api.enums import (
    CommunityKind,
    GridLevel,
    HouseholdTag,
    LeaveReason,
    ResponderKind,
    TeamKind,
)
from mobilize.api.paging import paged
from mobilize.api.relay import Connection, Node, expect_global_id, to_global_id
from mobilize.api.scalars import GeoJSON
from mobilize.db.session import AnyRow
from mobilize.districts import queries
from mobilize.tasks.records import in_visiting_order


def _geojson(geom: shapely.Geometry | None) -> Any:
    return None if geom is None else geometry_to_geojson(geom)


@strawberry.type(description="区: the district, outermost polygon.")
class District(Node):
    pk: Private[int]
    code: str
    name: str
    source_crs: str = strawberry.field(description="Coordinate system the bundle came in.")
    imported_at: datetime
    geometry: GeoJSON

    @classmethod
    def from_model(cls, row: m.District) -> District:
        return cls(
            id=to_global_id("District", row.id),
            pk=row.id,
            code=row.code,
            name=row.name,
            source_crs=row.source_crs,
            imported_at=row.imported_at,
            geometry=_geojson(row.geom),
        )

    @strawberry.field(description="街道/镇 in this district.")
    async def streets(self, info: ContextInfo) -> list[Street]:
        rows = await info.context.loaders.many(m.Street.district_id).load(self.pk)
        return [Street.from_model(r) for r in rows]


@strawberry.type(description="街道/镇: a street or town, one street command centre.")
class Street(Node):
    pk: Private[int]
    district_pk: Private[int]
    code: str
    name: str
    geometry: GeoJSON

    @classmethod
    def from_model(cls, row: m.Street) -> Street:
        return cls(
            id=to_global_id("Street", row.id),
            pk=row.id,
            district_pk=row.district_id,
            code=row.code,
            name=row.name,
            geometry=_geojson(row.geom),
        )

    @strawberry.field
    async def district(self, info: ContextInfo) -> District:
        return District.from_model(await load_one(info, m.District, self.district_pk))

    @strawberry.field(description="社区/村 in this street.")
    async def communities(self, info: ContextInfo) -> list[Community]:
        rows = await info.context.loaders.many(m.Community.street_id).load(self.pk)
        return [Community.from_model(r) for r in rows]


@strawberry.type(description="社区/村: a community or village, the master grid (总网格).")
class Community(Node):
    pk: Private[int]
    street_pk: Private[int]
    code: str
    name: str
    kind: CommunityKind
    geometry: GeoJSON

    @classmethod
    def from_model(cls, row: m.Community) -> Community:
        return cls(
            id=to_global_id("Community", row.id),
            pk=row.id,
            street_pk=row.street_id,
            code=row.code,
            name=row.name,
            kind=m.CommunityKind(row.kind),
            geometry=_geojson(row.geom),
        )

    @strawberry.field
    async def street(self, info: ContextInfo) -> Street:
        return Street.from_model(await load_one(info, m.Street, self.street_pk))

    @strawberry.field(description="Grids of this community; general grids only unless asked.")
    async def grids(
        self, info: ContextInfo, level: GridLevel | None = GridLevel.GENERAL
    ) -> list[Grid]:
        rows = await info.context.loaders.many(m.Grid.community_id).load(self.pk)
        return [Grid.from_model(r) for r in rows if level is None or r.level == level.value]

    @strawberry.field(description="Units paired with this community (结对).")
    async def pairings(self, info: ContextInfo) -> list[Pairing]:
        rows = await info.context.loaders.many(m.Pairing.community_id).load(self.pk)
        return [Pairing.from_model(r) for r in rows]


@strawberry.type(
    description="A general grid (一般网格, 300–500 households) or a micro-grid (微网格, about 50)."
)
class Grid(Node):
    pk: Private[int]
    community_pk: Private[int]
    parent_pk: Private[int | None]
    code: str
    name: str
    level: GridLevel
    household_count: int
    geometry: GeoJSON
    centre: GeoJSON = strawberry.field(
        description="A point inside the grid, for labels and directions."
    )

    @classmethod
    def from_model(cls, row: m.Grid) -> Grid:
        return cls(
            id=to_global_id("Grid", row.id),
            pk=row.id,
            community_pk=row.community_id,
            parent_pk=row.parent_id,
            code=row.code,
            name=row.name,
            level=m.GridLevel(row.level),
            household_count=row.household_count,
            geometry=_geojson(row.geom),
            centre=_geojson(row.centre),
        )

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community:
        return Community.from_model(await load_one(info, m.Community, self.community_pk))

    @strawberry.field(description="The general grid of a micro-grid; null for a general grid.")
    async def parent(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.parent_pk)

    @strawberry.field(description="The micro-grids of a general grid; empty for a micro-grid.")
    async def children(self, info: ContextInfo) -> list[Grid]:
        rows = await info.context.loaders.many(m.Grid.parent_id).load(self.pk)
        return [Grid.from_model(r) for r in rows]

    @strawberry.field(description="Households of a micro-grid; empty for a general grid.")
    async def households(self, info: ContextInfo) -> list[Household]:
        rows = await info.context.loaders.many(m.Household.micro_grid_id).load(self.pk)
        return [Household.from_model(r) for r in rows]


@strawberry.type(description="户: a household, with its seven-colour tags.")
class Household(Node):
    pk: Private[int]
    micro_grid_pk: Private[int]
    building_pk: Private[int | None]
    code: str
    size: int = strawberry.field(description="People living there; 0 for a vacant home.")
    tags: list[HouseholdTag]
    building_unit: str = strawberry.field(description="单元 in its building; empty if none.")
    door: str = strawberry.field(description="门牌/房号; empty if none.")
    address: str = strawberry.field(description="地址, searchable (`households(search:)`).")

    @classmethod
    def from_model(cls, row: m.Household | AnyRow) -> Household:
        """From the model or a listed row (`tasks.LISTED_HOUSEHOLD`, no geometry)."""
        return cls(
            id=to_global_id("Household", row.id),
            pk=row.id,
            micro_grid_pk=row.micro_grid_id,
            building_pk=row.building_id,
            code=row.code,
            size=row.size,
            tags=m.HouseholdTag.unmask(row.tags),
            building_unit=row.building_unit,
            door=row.door,
            address=row.address,
        )

    @strawberry.field(description="楼栋 the household lives in; null for a house on its own.")
    async def building(self, info: ContextInfo) -> Building | None:
        return await related(info, Building, m.Building, self.building_pk)

    # Loaded only when asked: the phone lists fifty households at a time without their points.
    @strawberry.field
    async def location(self, info: ContextInfo) -> GeoJSON:
        return _geojson((await load_one(info, m.Household, self.pk)).geom)

    @strawberry.field
    async def micro_grid(self, info: ContextInfo) -> Grid:
        return Grid.from_model(await load_one(info, m.Grid, self.micro_grid_pk))


@strawberry.type(description="楼栋: a building in one micro-grid, with its leader (楼栋长).")
class Building(Node):
    pk: Private[int]
    micro_grid_pk: Private[int]
    code: str
    name: str
    address: str
    floors: int
    location: GeoJSON

    @classmethod
    def from_model(cls, row: m.Building) -> Building:
        return cls(
            id=to_global_id("Building", row.id),
            pk=row.id,
            micro_grid_pk=row.micro_grid_id,
            code=row.code,
            name=row.name,
            address=row.address,
            floors=row.floors,
            location=_geojson(row.geom),
        )

    @strawberry.field
    async def micro_grid(self, info: ContextInfo) -> Grid:
        return Grid.from_model(await load_one(info, m.Grid, self.micro_grid_pk))

    @strawberry.field(description="Its households unit by unit, door by door.")
    async def households(self, info: ContextInfo) -> list[Household]:
        rows = await info.context.loaders.many(m.Household.building_id).load(self.pk)
        return [Household.from_model(r) for r in in_visiting_order(rows)]

    @strawberry.field(description="楼栋长: the person who leads it, if any (and visible).")
    async def leader(self, info: ContextInfo) -> Responder | None:
        rows = await info.context.loaders.many(m.Responder.leads_building_id).load(self.pk)
        return Responder.from_model(rows[0]) if rows else None


@strawberry.type(description="机关/企事业单位: a unit that sinks cadres to its paired communities.")
class Unit(Node):
    pk: Private[int]
    code: str
    name: str
    location: GeoJSON

    @classmethod
    def from_model(cls, row: m.Unit) -> Unit:
        return cls(
            id=to_global_id("Unit", row.id),
            pk=row.id,
            code=row.code,
            name=row.name,
            location=_geojson(row.geom),
        )

    @strawberry.field(description="Communities this unit is paired with.")
    async def pairings(self, info: ContextInfo) -> list[Pairing]:
        rows = await info.context.loaders.many(m.Pairing.unit_id).load(self.pk)
        return [Pairing.from_model(r) for r in rows]


@strawberry.type(description="结对: a unit paired with a community, with its wartime quota.")
class Pairing(Node):
    pk: Private[int]
    unit_pk: Private[int]
    community_pk: Private[int]
    wartime_quota: int = strawberry.field(description="Cadres the unit sinks here in wartime.")

    @classmethod
    def from_model(cls, row: m.Pairing) -> Pairing:
        return cls(
            id=to_global_id("Pairing", row.id),
            pk=row.id,
            unit_pk=row.unit_id,
            community_pk=row.community_id,
            wartime_quota=row.wartime_quota,
        )

    @strawberry.field
    async def unit(self, info: ContextInfo) -> Unit:
        return Unit.from_model(await load_one(info, m.Unit, self.unit_pk))

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community:
        return Community.from_model(await load_one(info, m.Community, self.community_pk))


@strawberry.type(description="党员突击队 shock team or 志愿服务队 volunteer service team.")
class Team(Node):
    pk: Private[int]
    unit_pk: Private[int | None]
    code: str
    name: str
    kind: TeamKind

    @classmethod
    def from_model(cls, row: m.Team) -> Team:
        return cls(
            id=to_global_id("Team", row.id),
            pk=row.id,
            unit_pk=row.unit_id,
            code=row.code,
            name=row.name,
            kind=m.TeamKind(row.kind),
        )

    @strawberry.field
    async def unit(self, info: ContextInfo) -> Unit | None:
        return await related(info, Unit, m.Unit, self.unit_pk)

    @strawberry.field
    async def members(self, info: ContextInfo) -> list[Responder]:
        rows = await info.context.loaders.many(m.Responder.team_id).load(self.pk)
        return [Responder.from_model(r) for r in rows]


@strawberry.type(
    description="A person who can be called: grid worker, micro-grid member, sunk "
    "cadre, shock team member or volunteer."
)
class Responder(Node):
    pk: Private[int]
    unit_pk: Private[int | None]
    team_pk: Private[int | None]
    home_grid_pk: Private[int | None]
    leads_building_pk: Private[int | None]
    code: str
    name: str
    phone: str
    kind: ResponderKind
    skills: list[str]
    location: GeoJSON | None = strawberry.field(description="Home or usual place, if known.")

    @classmethod
    def from_model(cls, row: m.Responder) -> Responder:
        return cls(
            id=to_global_id("Responder", row.id),
            pk=row.id,
            unit_pk=row.unit_id,
            team_pk=row.team_id,
            home_grid_pk=row.home_grid_id,
            leads_building_pk=row.leads_building_id,
            code=row.code,
            name=row.name,
            phone=row.phone,
            kind=m.ResponderKind(row.kind),
            skills=list(row.skills or []),
            location=_geojson(row.geom),
        )

    @strawberry.field
    async def unit(self, info: ContextInfo) -> Unit | None:
        return await related(info, Unit, m.Unit, self.unit_pk)

    @strawberry.field
    async def team(self, info: ContextInfo) -> Team | None:
        return await related(info, Team, m.Team, self.team_pk)

    @strawberry.field
    async def home_grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.home_grid_pk)

    @strawberry.field(description="请假 on record, the latest first.")
    async def leaves(self, info: ContextInfo) -> list[Leave]:
        rows = await info.context.loaders.many(m.Leave.responder_id).load(self.pk)
        return [Leave.from_model(r) for r in sorted(rows, key=lambda r: r.starts_at, reverse=True)]

    @strawberry.field(description="On leave at this moment: left out of every call-up.")
    async def on_leave(self, info: ContextInfo) -> bool:
        now = info.context.clock.now()
        rows = await info.context.loaders.many(m.Leave.responder_id).load(self.pk)
        return any(r.starts_at <= now and (r.ends_at is None or r.ends_at > now) for r in rows)

    @strawberry.field(description="承诺 and 践诺, by year.")
    async def commitments(self, info: ContextInfo) -> list[Commitment]:
        rows = await info.context.loaders.many(m.Commitment.responder_id).load(self.pk)
        return [Commitment.from_model(r) for r in sorted(rows, key=lambda r: (r.year, r.id))]

    @strawberry.field(description="楼栋长 of this building, if they lead one.")
    async def leads_building(self, info: ContextInfo) -> Building | None:
        return await related(info, Building, m.Building, self.leads_building_pk)


@strawberry.type(
    description="请假: a person away from `startsAt` until `endsAt` (open: until back)."
)
class Leave(Node):
    starts_at: datetime
    ends_at: datetime | None
    reason: LeaveReason
    note: str

    @classmethod
    def from_model(cls, row: m.Leave) -> Leave:
        return cls(
            id=to_global_id("Leave", row.id),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            reason=LeaveReason(row.reason),
            note=row.note,
        )


@strawberry.type(description="承诺 for a year, and 践诺 what was done about it.")
class Commitment(Node):
    pk: Private[int]
    year: int
    promise: str
    fulfilment: str
    fulfilled_at: datetime | None

    @classmethod
    def from_model(cls, row: m.Commitment) -> Commitment:
        return cls(
            id=to_global_id("Commitment", row.id),
            pk=row.id,
            year=row.year,
            promise=row.promise,
            fulfilment=row.fulfilment,
            fulfilled_at=row.fulfilled_at,
        )


TYPES: dict[str, Any] = {
    "District": District,
    "Street": Street,
    "Community": Community,
    "Grid": Grid,
    "Household": Household,
    "Building": Building,
    "Leave": Leave,
    "Commitment": Commitment,
    "Unit": Unit,
    "Pairing": Pairing,
    "Team": Team,
    "Responder": Responder,
}


Search = Annotated[
    str | None,
    strawberry.argument(
        description="Text the address, name or code contains, e.g. 「3栋」 or 「1单元502」."
    ),
]


def _filter(column: Any, value: str | None, type_name: str, argument: str) -> list[Any]:
    if value is None:
        return []
    return [column == expect_global_id(value, type_name, argument)]


@strawberry.type
class DistrictQuery:
    @strawberry.field(description="A district by code; the first one when no code is given.")
    async def district(self, info: ContextInfo, code: str | None = None) -> District | None:
        row = await info.context.db.run(queries.district_by_code, code, actor=info.context.actor)
        return None if row is None else District.from_model(row)

    @strawberry.field
    async def streets(
        self, info: ContextInfo, first: int = 50, after: str | None = None
    ) -> Connection[Street]:
        return await paged(info, Street, m.Street, [], first, after)

    @strawberry.field
    async def communities(
        self,
        info: ContextInfo,
        street: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Community]:
        where = _filter(m.Community.street_id, street, "Street", "street")
        return await paged(info, Community, m.Community, where, first, after)

    @strawberry.field(description="General grids and micro-grids, filtered.")
    async def grids(
        self,
        info: ContextInfo,
        level: GridLevel | None = None,
        community: strawberry.ID | None = None,
        parent: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Grid]:
        where = _filter(m.Grid.community_id, community, "Community", "community")
        where += _filter(m.Grid.parent_id, parent, "Grid", "parent")
        if level is not None:
            where.append(m.Grid.level == level.value)
        return await paged(info, Grid, m.Grid, where, first, after)

    @strawberry.field
    async def households(
        self,
        info: ContextInfo,
        micro_grid: strawberry.ID | None = None,
        building: strawberry.ID | None = None,
        tag: HouseholdTag | None = None,
        search: Search = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Household]:
        where = _filter(m.Household.micro_grid_id, micro_grid, "Grid", "microGrid")
        where += _filter(m.Household.building_id, building, "Building", "building")
        if tag is not None:
            where.append(m.Household.tags.op("&")(m.HouseholdTag(tag.value).bit) != 0)
        if search:
            where.append(queries.containing(search, m.Household.address, m.Household.code))
        return await paged(info, Household, m.Household, where, first, after)

    @strawberry.field(description="楼栋 in the places you may see, filtered.")
    async def buildings(
        self,
        info: ContextInfo,
        micro_grid: strawberry.ID | None = None,
        search: Search = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Building]:
        where = _filter(m.Building.micro_grid_id, micro_grid, "Grid", "microGrid")
        if search:
            where.append(
                queries.containing(search, m.Building.address, m.Building.name, m.Building.code)
            )
        return await paged(info, Building, m.Building, where, first, after)

    @strawberry.field
    async def units(
        self, info: ContextInfo, first: int = 50, after: str | None = None
    ) -> Connection[Unit]:
        return await paged(info, Unit, m.Unit, [], first, after)

    @strawberry.field
    async def pairings(
        self,
        info: ContextInfo,
        unit: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Pairing]:
        where = _filter(m.Pairing.unit_id, unit, "Unit", "unit")
        where += _filter(m.Pairing.community_id, community, "Community", "community")
        return await paged(info, Pairing, m.Pairing, where, first, after)

    @strawberry.field
    async def teams(
        self,
        info: ContextInfo,
        kind: TeamKind | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Team]:
        where = [] if kind is None else [m.Team.kind == kind.value]
        return await paged(info, Team, m.Team, where, first, after)

    @strawberry.field
    async def responders(
        self,
        info: ContextInfo,
        kind: ResponderKind | None = None,
        unit: strawberry.ID | None = None,
        team: strawberry.ID | None = None,
        home_grid: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Responder]:
        where = _filter(m.Responder.unit_id, unit, "Unit", "unit")
        where += _filter(m.Responder.team_id, team, "Team", "team")
        where += _filter(m.Responder.home_grid_id, home_grid, "Grid", "homeGrid")
        if kind is not None:
            where.append(m.Responder.kind == kind.value)
        return await paged(info, Responder, m.Responder, where, first, after)
