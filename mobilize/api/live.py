"""Subscriptions: coverage as it changes, and a mobilisation's events as they happen.

Each subscription reads from the database after every wake-up (see mobilize/live.py) and
gives its read session back before waiting, so a thousand open sockets hold no connections."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from sqlalchemy.orm import Session
from strawberry.scalars import JSON

from mobilize.api.common import ContextInfo
from mobilize.api.coverage import Coverage
from mobilize.api.guard import SubscriptionPolicy
from mobilize.api.relay import expect_global_id, place_ids
from mobilize.auth.scope import in_scope
from mobilize.coverage.service import coverage
from mobilize.events import visible_events
from mobilize.live import changes


@strawberry.type(description="One entry of the event log.")
class MobilisationEvent:
    seq: int = strawberry.field(
        description="Its place in the mobilisation's own sequence (1, 2, 3...): resume after "
        "it with `after`."
    )
    kind: str
    occurred_at: datetime
    actor: str
    subject_type: str
    subject_id: str
    payload: JSON


def read_events(session: Session, **kwargs: Any) -> tuple[list[MobilisationEvent], int, bool]:
    """`visible_events`, copied out before the session closes (its rows expire then)."""
    rows, last, more = visible_events(session, **kwargs)
    return (
        [
            MobilisationEvent(
                seq=e.mseq or 0,
                kind=e.kind,
                occurred_at=e.occurred_at,
                actor=e.actor,
                subject_type=e.subject_type,
                subject_id=e.subject_id,
                payload=e.payload,
            )
            for e in rows
        ],
        last,
        more,
    )


@strawberry.type
class LiveSubscription:
    @strawberry.subscription(
        permission_classes=[SubscriptionPolicy],
        description="Coverage of a mobilisation (or a street or community in it; by default "
        "your own place): now, then each time it changes.",
    )
    async def coverage_changed(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        street: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
    ) -> AsyncGenerator[Coverage, None]:
        ctx = info.context
        pk = expect_global_id(mobilisation, "Mobilisation", "mobilisation")
        place = place_ids(street, community)
        last = None
        async for _ in changes(
            ctx.hub, pk, ctx.settings.live_poll_seconds, ctx.settings.live_batch_seconds
        ):
            await ctx.recheck()
            try:
                found = await ctx.db.run(
                    in_scope,
                    coverage,
                    actor=ctx.actor,
                    mobilisation_id=pk,
                    now=ctx.clock.now(),
                    **place,
                )
            finally:
                await ctx.db.close()
            figures = found.figures()
            if figures != last:
                last = figures
                yield Coverage.from_figures(found)

    @strawberry.subscription(
        permission_classes=[SubscriptionPolicy],
        description="A mobilisation's events that you may see, from just after sequence "
        "`after` (0: from the start), then as they happen.",
    )
    async def mobilisation_events(
        self, info: ContextInfo, mobilisation: strawberry.ID, after: int = 0
    ) -> AsyncGenerator[MobilisationEvent, None]:
        ctx = info.context
        pk = expect_global_id(mobilisation, "Mobilisation", "mobilisation")
        seq = after
        async for _ in changes(
            ctx.hub, pk, ctx.settings.live_poll_seconds, ctx.settings.live_batch_seconds
        ):
            await ctx.recheck()
            while True:
                try:
                    rows, seq, more = await ctx.db.run(
                        read_events, actor=ctx.actor, mobilisation_id=pk, after=seq
                    )
                finally:
                    await ctx.db.close()
                for row in rows:
                    yield row
                if not more:
                    break
