"""Editing the district through the API (`mobilize.districts.edit`, `.redraw`): each
mutation answers with the edited object or a typed error naming the field or the
mobilisation that stands in the way."""

from __future__ import annotations

from typing import Annotated

import strawberry

from mobilize import errors
from mobilize import models as m
from mobilize.api.common import (
    ContextInfo,
    answer,
    decode_id,
    decode_ids,
    district_of,
    write,
)
from mobilize.api.districts import Grid, Household, Pairing, Responder, Team
from mobilize.api.enums import HouseholdTag, ResponderKind, TeamKind
from mobilize.api.errors import (
    ForbiddenError,
    InWartimeError,
    NotFoundError,
    ValidationError,
    edit_error,
)
from mobilize.api.scalars import GeoJSON
from mobilize.districts import edit, redraw

EditErrors = ValidationError | NotFoundError | ForbiddenError | InWartimeError
HouseholdEditResult = Annotated[Household | EditErrors, strawberry.union("HouseholdEditResult")]
ResponderEditResult = Annotated[Responder | EditErrors, strawberry.union("ResponderEditResult")]
PairingEditResult = Annotated[Pairing | EditErrors, strawberry.union("PairingEditResult")]
TeamEditResult = Annotated[Team | EditErrors, strawberry.union("TeamEditResult")]


@strawberry.input(description="A micro-grid's new polygon (GeoJSON, in the call's `crs`).")
class GridShapeInput:
    grid: strawberry.ID
    geometry: GeoJSON


@strawberry.type(description="Micro-grids redrawn, and the households that changed grid.")
class RedrawnGrids:
    grids: list[Grid]
    moved_households: list[str] = strawberry.field(description="Codes now in another grid.")
    moved_buildings: list[str]
    warnings: list[str] = strawberry.field(description="Gaps left in the general grid.")


RedrawResult = Annotated[RedrawnGrids | EditErrors, strawberry.union("RedrawResult")]


@strawberry.input(description="A person as the roster keeps them (the bundle's columns).")
class PersonInput:
    name: str
    phone: str
    kind: ResponderKind
    unit: strawberry.ID | None = None
    team: strawberry.ID | None = None
    home_grid: strawberry.ID | None = None
    lon: float | None = None
    lat: float | None = None
    skills: list[str] = strawberry.field(default_factory=list)

    def values(self) -> edit.PersonValues:
        return edit.PersonValues(
            name=self.name,
            phone=self.phone,
            kind=m.ResponderKind(self.kind.value),
            unit_id=decode_id(self.unit, "Unit", "unit") if self.unit else None,
            team_id=decode_id(self.team, "Team", "team") if self.team else None,
            home_grid_id=decode_id(self.home_grid, "Grid", "homeGrid") if self.home_grid else None,
            lon=self.lon,
            lat=self.lat,
            skills=tuple(self.skills),
        )


@strawberry.type
class EditMutation:
    @strawberry.mutation(description="A household's tags, size, address, unit or door.")
    async def edit_household(
        self,
        info: ContextInfo,
        household: strawberry.ID,
        tags: list[HouseholdTag] | None = None,
        size: int | None = None,
        address: str | None = None,
        building_unit: str | None = None,
        door: str | None = None,
    ) -> HouseholdEditResult:
        return await answer(
            info,
            Household,
            edit.edit_household,
            lambda: dict(
                household_id=decode_id(household, "Household", "household"),
                tags=None if tags is None else [m.HouseholdTag(t.value) for t in tags],
                size=size,
                address=address,
                building_unit=building_unit,
                door=door,
            ),
        )

    @strawberry.mutation(description="Enrol a person (a volunteer, a new cadre) in your place.")
    async def add_responder(
        self,
        info: ContextInfo,
        code: str,
        person: PersonInput,
        district: str | None = None,
    ) -> ResponderEditResult:
        try:
            row = await write(
                info,
                edit.add_responder,
                district_id=await district_of(info, district),
                code=code,
                values=person.values(),
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Responder.from_model(row)

    @strawberry.mutation(description="Change a person: phone, unit, team, home grid...")
    async def edit_responder(
        self, info: ContextInfo, responder: strawberry.ID, person: PersonInput
    ) -> ResponderEditResult:
        return await answer(
            info,
            Responder,
            edit.edit_responder,
            lambda: dict(
                responder_id=decode_id(responder, "Responder", "responder"),
                values=person.values(),
            ),
        )

    @strawberry.mutation(description="A person leaves the roster: kept with their history.")
    async def retire_responder(
        self, info: ContextInfo, responder: strawberry.ID, reason: str
    ) -> ResponderEditResult:
        return await answer(
            info,
            Responder,
            edit.retire_responder,
            lambda: dict(
                responder_id=decode_id(responder, "Responder", "responder"),
                reason=reason,
            ),
        )

    @strawberry.mutation(description="Pair a unit with a community, or change its quota.")
    async def set_pairing(
        self,
        info: ContextInfo,
        unit: strawberry.ID,
        community: strawberry.ID,
        wartime_quota: int,
    ) -> PairingEditResult:
        return await answer(
            info,
            Pairing,
            edit.set_pairing,
            lambda: dict(
                unit_id=decode_id(unit, "Unit", "unit"),
                community_id=decode_id(community, "Community", "community"),
                quota=wartime_quota,
            ),
        )

    @strawberry.mutation(description="End a pairing: kept on record.")
    async def retire_pairing(self, info: ContextInfo, pairing: strawberry.ID) -> PairingEditResult:
        try:
            row = await write(
                info, edit.retire_pairing, pairing_id=decode_id(pairing, "Pairing", "pairing")
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Pairing.from_model(row)

    @strawberry.mutation(description="Create a team or change one, by code.")
    async def save_team(
        self,
        info: ContextInfo,
        code: str,
        name: str,
        kind: TeamKind,
        unit: strawberry.ID | None = None,
        district: str | None = None,
    ) -> TeamEditResult:
        try:
            row = await write(
                info,
                edit.save_team,
                district_id=await district_of(info, district),
                code=code,
                name=name,
                kind=m.TeamKind(kind.value),
                unit_id=decode_id(unit, "Unit", "unit") if unit else None,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Team.from_model(row)

    @strawberry.mutation(description="People join or leave a team.")
    async def set_team_members(
        self,
        info: ContextInfo,
        team: strawberry.ID,
        add: list[strawberry.ID] | None = None,
        remove: list[strawberry.ID] | None = None,
    ) -> TeamEditResult:
        return await answer(
            info,
            Team,
            edit.set_team_members,
            lambda: dict(
                team_id=decode_id(team, "Team", "team"),
                add=decode_ids(add or [], "Responder", "add"),
                remove=decode_ids(remove or [], "Responder", "remove"),
            ),
        )

    @strawberry.mutation(
        description="Redraw micro-grids of one general grid together (a boundary between "
        "neighbours moves by redrawing both): checked as at import, households placed again."
    )
    async def redraw_micro_grids(
        self, info: ContextInfo, grids: list[GridShapeInput], crs: str = "wgs84"
    ) -> RedrawResult:
        try:
            done = await write(
                info,
                redraw.redraw_micro_grids,
                shapes=[
                    (decode_id(g.grid, "Grid", f"grids[{i}].grid"), g.geometry)
                    for i, g in enumerate(grids)
                ],
                crs=crs,
                placement_tolerance_m=info.context.settings.placement_tolerance_m,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return RedrawnGrids(
            grids=[Grid.from_model(g) for g in done.grids],
            moved_households=done.moved_households,
            moved_buildings=done.moved_buildings,
            warnings=done.warnings,
        )
