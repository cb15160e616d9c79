"""Risk in the API: the grids projected to miss the deadline, and the one-click fix."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import Private

from mobilize import errors
from mobilize import models as m
from mobilize.api.common import ContextInfo, decode_id, related, run_mutation
from mobilize.api.districts import Grid, Responder
from mobilize.api.enums import RiskReason
from mobilize.api.errors import (
    AlreadyStoodDownError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    wartime_error,
)
from mobilize.api.relay import expect_global_id, place_ids
from mobilize.api.wartime import Assignment
from mobilize.coverage import risk
from mobilize.mobilisation import risk_fix


@strawberry.type(description="The engine's fix: send this person; accept it with acceptRiskFix.")
class RiskSuggestion:
    responder_pk: Private[int]
    from_grid_pk: Private[int | None]
    travel_minutes: float
    arrives_at: datetime

    @strawberry.field
    async def responder(self, info: ContextInfo) -> Responder | None:
        return await related(info, Responder, m.Responder, self.responder_pk)

    @strawberry.field(description="Where they hold a slot now; null: they are free.")
    async def from_grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.from_grid_pk)


@strawberry.type(description="One micro-grid against the deadline.")
class GridRisk:
    grid_pk: Private[int]
    status: str
    at_risk: bool
    projected_arrival: datetime | None = strawberry.field(
        description="When its minimum is projected on site; null: never, as things stand."
    )
    minutes_late: float | None
    reasons: list[RiskReason]
    reason_labels: list[str] = strawberry.field(description="The reasons in Chinese.")
    reason_labels_en: list[str] = strawberry.field(description="The reasons in English.")
    suggestion: RiskSuggestion | None

    @strawberry.field
    async def grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.grid_pk)

    @classmethod
    def from_risk(cls, r: risk.GridRisk, deadline: datetime) -> GridRisk:
        fix = r.suggestion
        return cls(
            grid_pk=r.grid_id,
            status=r.status,
            at_risk=r.at_risk,
            projected_arrival=r.projected,
            minutes_late=r.minutes_late(deadline),
            reasons=list(r.reasons),
            reason_labels=[risk.REASON_NAMES[x] for x in r.reasons],
            reason_labels_en=[risk.REASON_NAMES_ZH_EN[x][1] for x in r.reasons],
            suggestion=None
            if fix is None
            else RiskSuggestion(
                responder_pk=fix.responder_id,
                from_grid_pk=fix.from_grid_id,
                travel_minutes=fix.travel_minutes,
                arrives_at=fix.arrives_at,
            ),
        )


RiskFixResult = Annotated[
    Assignment
    | ConflictError
    | AlreadyStoodDownError
    | NotFoundError
    | ValidationError
    | ForbiddenError,
    strawberry.union("RiskFixResult"),
]


@strawberry.type
class RiskQuery:
    @strawberry.field(
        description="Micro-grids projected to miss the deadline, worst first, each with its "
        "reasons and a suggested fix; `all` adds the grids on track. By default the caller's "
        "own place."
    )
    async def risk(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        street: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
        all: bool = False,
        first: int = 100,
    ) -> list[GridRisk] | None:
        ctx = info.context
        if not 1 <= first <= 500:
            raise errors.InvalidInput("first", "between 1 and 500")
        try:
            found, risks = await ctx.db.run(
                risk.risk_for,
                actor=ctx.actor,
                mobilisation_id=expect_global_id(mobilisation, "Mobilisation", "mobilisation"),
                now=ctx.clock.now(),
                **place_ids(street, community),
                only_at_risk=not all,
                limit=first,
            )
        except errors.NotFound:
            return None
        return [GridRisk.from_risk(r, found.deadline) for r in risks]


@strawberry.type
class RiskMutation:
    @strawberry.mutation(
        description="Accept a suggested fix: send the person to the grid, pinned. Give the "
        "grid they were suggested from (`fromGrid`, null when free): if they moved since, "
        "nothing changes and you get a ConflictError."
    )
    async def accept_risk_fix(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        grid: strawberry.ID,
        responder: strawberry.ID,
        from_grid: strawberry.ID | None = None,
        client_mutation_id: str | None = None,
    ) -> RiskFixResult:
        try:
            outcome = await run_mutation(
                info,
                risk_fix.send_to_grid,
                mobilisation_id=decode_id(mobilisation, "Mobilisation", "mobilisation"),
                grid_id=decode_id(grid, "Grid", "grid"),
                responder_id=decode_id(responder, "Responder", "responder"),
                from_grid_id=decode_id(from_grid, "Grid", "fromGrid") if from_grid else None,
                display_tz=info.context.settings.display_timezone,
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return wartime_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        assert outcome.assignment is not None  # a fix always names the assignment it made
        return Assignment.from_model(outcome.assignment)
