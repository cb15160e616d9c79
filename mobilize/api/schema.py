"""The schema's entry points and the extensions every request passes through."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from graphql import GraphQLError
from mobilize import models as m
from mobilize.api.auth_fields import AuthMutation, Viewer, me
from mobilize.api.executor import PerEventMemoExecutor
from mobilize.api.field_api import (
    FieldMutation,
    FieldQuery,
    HouseholdRecord,
    ProblemReport,
    Task,
)
from mobilize.api.guard import ErrorMasking, PolicyGuard, log_errors
from mobilize.api.limits import CostLimiter
from mobilize.api.live_api import LiveSubscription
from mobilize.api.observe import OperationTiming
from mobilize.api.paging import paged
from mobilize.api.relay import Connection, Node, expect_global_id, from_global_id
from mobilize.api.replay_api import ReplayQuery, ReplaySubscription
from mobilize.api.report_api import ReportQuery
from mobilize.api.risk_api import RiskMutation, RiskQuery
from mobilize.api.scalars import SCALARS
from mobilize.api.types import (
    TYPES,
    Community,
    ContextInfo,
    District,
    Grid,
    GridLevel,
    Household,
    HouseholdTag,
    Pairing,
    Responder,
    ResponderKind,
    Street,
    Team,
    TeamKind,
    Unit,
)
from mobilize.api.wartime import (
    Assignment,
    CoverageQuery,
    Mobilisation,
    PartyOrganisation,
    WartimeMutation,
    WartimeQuery,
)
from mobilize.districts import queries
from mobilize.settings import Settings

_FIRST = strawberry.argument(description="Page size (at most 500).")


def _filter(column: Any, value: str | None, type_name: str, argument: str) -> list[Any]:
    if value is None:
        return []
    return [column == expect_global_id(value, type_name, argument)]


NODE_TYPES: dict[str, Any] = {
    **TYPES,
    "Mobilisation": Mobilisation,
    "Assignment": Assignment,
    "PartyOrganisation": PartyOrganisation,
    "Task": Task,
    "HouseholdRecord": HouseholdRecord,
    "ProblemReport": ProblemReport,
}


@strawberry.type
class Query(WartimeQuery, FieldQuery, CoverageQuery, RiskQuery, ReplayQuery, ReportQuery):
    me: Viewer = strawberry.field(resolver=me, description="The signed-in user and their roles.")

    @strawberry.field(description="Any object by its global ID; null when there is none.")
    async def node(self, info: ContextInfo, id: strawberry.ID) -> Node | None:
        type_name, pk = from_global_id(id)
        node_type = NODE_TYPES.get(type_name)
        if node_type is None:
            return None
        row = await info.context.loaders.one(queries.MODELS[type_name]).load(pk)
        return None if row is None else node_type.from_model(row)

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
        tag: HouseholdTag | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Household]:
        where = _filter(m.Household.micro_grid_id, micro_grid, "Grid", "microGrid")
        if tag is not None:
            where.append(m.Household.tags.op("&")(m.HouseholdTag(tag.value).bit) != 0)
        return await paged(info, Household, m.Household, where, first, after)

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


@strawberry.type
class Mutation(AuthMutation, WartimeMutation, FieldMutation, RiskMutation):
    pass


@strawberry.type
class Subscription(LiveSubscription, ReplaySubscription):
    pass


class Schema(strawberry.Schema):
    """Strawberry's schema, logging errors our way (see `log_errors`)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        log_errors(errors, execution_context.context if execution_context else None)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema with the request limits of `settings` (defaults when None)."""
    settings = settings or Settings()
    # Factories, so each request gets fresh extension instances.
    extensions: list[Any] = [
        OperationTiming,
        PolicyGuard,
        ErrorMasking,
        ParserCache,
        ValidationCache,
        partial(MaxTokensLimiter, max_token_count=settings.max_query_tokens),
        # Rule classes made once, so the validation cache can recognise them request after
        # request (it is keyed by the rules as well as the document).
        partial(
            AddValidationRules,
            [
                *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
                *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
            ],
        ),
        partial(CostLimiter, max_cost=settings.max_query_cost),
    ]
    if settings.env == "production":
        extensions.append(DisableIntrospection)
    return Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=list(NODE_TYPES.values()),
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS, disable_field_suggestions=True),
        execution_context_class=PerEventMemoExecutor,
    )


def schema_sdl() -> str:
    """The schema as SDL, as exported to graphql/schema.graphql."""
    return build_schema().as_str() + "\n"
