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
from mobilize.api.auth import AuthMutation, Viewer, me
from mobilize.api.common import ContextInfo
from mobilize.api.coverage import CoverageQuery
from mobilize.api.districts import TYPES, DistrictQuery
from mobilize.api.editing import EditMutation
from mobilize.api.executor import PerEventMemoExecutor
from mobilize.api.guard import ErrorMasking, PolicyGuard, log_errors
from mobilize.api.limits import CostLimiter
from mobilize.api.live import LiveSubscription
from mobilize.api.observe import OperationTiming
from mobilize.api.peacetime import Activity, Enrolment, PeacetimeMutation, PeacetimeQuery
from mobilize.api.phone import PhoneMutation, PhoneQuery, ProblemReport
from mobilize.api.relay import Node, from_global_id
from mobilize.api.replay import ReplayQuery, ReplaySubscription
from mobilize.api.report import ReportQuery
from mobilize.api.risk import RiskMutation, RiskQuery
from mobilize.api.scalars import SCALARS
from mobilize.api.tasks import HouseholdRecord, Task, TaskMutation, TaskQuery
from mobilize.api.wartime import (
    Assignment,
    Mobilisation,
    PartyOrganisation,
    WartimeMutation,
    WartimeQuery,
)
from mobilize.districts import queries
from mobilize.settings import Settings

NODE_TYPES: dict[str, Any] = {
    **TYPES,
    "Mobilisation": Mobilisation,
    "Assignment": Assignment,
    "PartyOrganisation": PartyOrganisation,
    "Task": Task,
    "HouseholdRecord": HouseholdRecord,
    "ProblemReport": ProblemReport,
    "Activity": Activity,
    "Enrolment": Enrolment,
}


@strawberry.type
class Query(
    DistrictQuery,
    WartimeQuery,
    PhoneQuery,
    TaskQuery,
    CoverageQuery,
    RiskQuery,
    ReplayQuery,
    ReportQuery,
    PeacetimeQuery,
):
    me: Viewer = strawberry.field(resolver=me, description="The signed-in user and their roles.")

    @strawberry.field(description="Any object by its global ID; null when there is none.")
    async def node(self, info: ContextInfo, id: strawberry.ID) -> Node | None:
        type_name, pk = from_global_id(id)
        node_type = NODE_TYPES.get(type_name)
        if node_type is None:
            return None
        row = await info.context.loaders.one(queries.MODELS[type_name]).load(pk)
        return None if row is None else node_type.from_model(row)


@strawberry.type
class Mutation(
    AuthMutation,
    WartimeMutation,
    PhoneMutation,
    TaskMutation,
    RiskMutation,
    EditMutation,
    PeacetimeMutation,
):
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
