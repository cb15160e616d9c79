"""Coverage in the API: where each micro-grid stands against the three-hour target, per
place the caller may ask about."""

from __future__ import annotations

from typing import Any

import strawberry

from mobilize import errors
from mobilize.api.common import ContextInfo
from mobilize.api.relay import expect_global_id, place_ids


@strawberry.type
class StatusCount:
    status: str = strawberry.field(description="unstaffed, assigned, arriving, mobilised, checked")
    count: int


@strawberry.type
class CurvePoint:
    minute: int = strawberry.field(description="Minutes since T0.")
    mobilised: int = strawberry.field(description="Micro-grids mobilised by then.")


@strawberry.type(description="How far a scope is from the three-hour promise.")
class Coverage:
    grids: int
    by_status: list[StatusCount]
    mobilised_pct: float
    households: int
    households_checked: int
    households_checked_pct: float
    minutes_left: float
    curve: list[CurvePoint]

    @classmethod
    def from_figures(cls, found: Any) -> Coverage:
        return cls(
            grids=found.grids,
            by_status=[StatusCount(status=k, count=v) for k, v in found.by_status.items()],
            mobilised_pct=found.mobilised_pct,
            households=found.households,
            households_checked=found.households_checked,
            households_checked_pct=found.households_checked_pct,
            minutes_left=found.minutes_left,
            curve=[CurvePoint(minute=m_, mobilised=n) for m_, n in found.curve],
        )


@strawberry.type
class CoverageQuery:
    @strawberry.field(
        description="Coverage of a mobilisation, or of one street or community "
        "in it; by default the caller's own place."
    )
    async def coverage(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        street: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
    ) -> Coverage | None:
        from mobilize.auth.scope import in_scope
        from mobilize.coverage.service import coverage

        ctx = info.context
        try:
            found = await ctx.db.run(
                in_scope,
                coverage,
                actor=ctx.actor,
                mobilisation_id=expect_global_id(mobilisation, "Mobilisation", "mobilisation"),
                now=ctx.clock.now(),
                **place_ids(street, community),
            )
        except errors.NotFound:
            return None
        return Coverage.from_figures(found)
