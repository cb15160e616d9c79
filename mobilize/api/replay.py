"""Review in the API: the event log by page, the grids as they stand now and as they stood at
any instant, and a playback of the events at a chosen speed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry import Private

from mobilize import errors
from mobilize import models as m
from mobilize.api.common import ContextInfo, related
from mobilize.api.context import Context
from mobilize.api.coverage import Coverage
from mobilize.api.districts import Grid, Responder
from mobilize.api.enums import GridStatus
from mobilize.api.guard import SubscriptionPolicy
from mobilize.api.live import MobilisationEvent, read_events
from mobilize.api.relay import expect_global_id, place_ids
from mobilize.api.wartime import AssignmentStatus
from mobilize.auth.scope import in_scope
from mobilize.coverage.service import grid_states
from mobilize.review.replay import GridAt, PersonAt, state_in


@strawberry.type(description="One micro-grid in a mobilisation: now, or at an instant.")
class GridState:
    grid_pk: Private[int]
    status: GridStatus
    assigned: int = strawberry.field(description="People holding a slot there.")
    answered: int = strawberry.field(description="Of them, acknowledged or on the way.")
    on_site: int
    households: int
    checked: int = strawberry.field(description="Households checked.")
    mobilised_at: datetime | None = strawberry.field(
        description="When its minimum was first on site."
    )
    escalated: bool = strawberry.field(description="Sent to its street command centre.")
    missed: bool = strawberry.field(description="Not mobilised by the deadline.")

    @strawberry.field
    async def grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.grid_pk)

    @classmethod
    def from_row(cls, row: m.GridState | GridAt) -> GridState:
        if isinstance(row, GridAt):
            escalated, missed = row.escalated, row.missed
        else:
            escalated, missed = row.escalated_at is not None, row.missed_at is not None
        return cls(
            grid_pk=row.grid_id,
            status=m.GridStatus(row.status),
            assigned=row.assigned,
            answered=row.answered,
            on_site=row.on_site,
            households=row.households,
            checked=row.checked,
            mobilised_at=row.mobilised_at,
            escalated=escalated,
            missed=missed,
        )


@strawberry.type(description="One person's assignment as it stood.")
class PersonState:
    responder_pk: Private[int]
    grid_pk: Private[int | None]
    status: AssignmentStatus

    @strawberry.field
    async def responder(self, info: ContextInfo) -> Responder | None:
        return await related(info, Responder, m.Responder, self.responder_pk)

    @strawberry.field
    async def grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.grid_pk)

    @classmethod
    def from_person(cls, p: PersonAt) -> PersonState:
        return cls(
            responder_pk=p.responder_id,
            grid_pk=p.grid_id,
            status=m.AssignmentStatus(p.status),
        )


@strawberry.type(description="A mobilisation (or the part you may see) as it stood at `at`.")
class MobilisationState:
    at: datetime
    seq: int = strawberry.field(description="The last event folded in (mobilisation sequence).")
    stood_down_at: datetime | None
    coverage: Coverage
    grids: list[GridState]
    people: list[PersonState]


@strawberry.type(description="A page of the event log.")
class EventPage:
    events: list[MobilisationEvent]
    last_seq: int = strawberry.field(
        description="The last sequence read: pass it as `after` for the next page (it moves on "
        "even past events you may not see)."
    )
    has_more: bool


async def _state(
    info: ContextInfo,
    mobilisation: strawberry.ID,
    at: datetime,
    street: strawberry.ID | None,
    community: strawberry.ID | None,
) -> MobilisationState | None:
    ctx = info.context
    if at.tzinfo is None:
        raise errors.InvalidInput("at", "a time with its UTC offset, e.g. 2026-07-01T08:00:00Z")
    try:
        state, coverage, grids, people = await ctx.db.run(
            in_scope,
            state_in,
            actor=ctx.actor,
            mobilisation_id=expect_global_id(mobilisation, "Mobilisation", "mobilisation"),
            at=at,
            **place_ids(street, community),
        )
    except errors.NotFound:
        return None
    return MobilisationState(
        at=at,
        seq=state.mseq,
        stood_down_at=state.stood_down_at,
        coverage=Coverage.from_figures(coverage),
        grids=[GridState.from_row(g) for g in grids],
        people=[PersonState.from_person(p) for p in people],
    )


@strawberry.type
class ReplayQuery:
    @strawberry.field(
        description="A mobilisation's event log that you may see, in its own sequence: after "
        "`after`, optionally only some kinds (e.g. assignment.declined), `first` at a time."
    )
    async def events(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        after: int = 0,
        kinds: list[str] | None = None,
        first: int = 100,
    ) -> EventPage | None:
        ctx = info.context
        if not 1 <= first <= 500:
            raise errors.InvalidInput("first", "between 1 and 500")
        if after < 0:
            raise errors.InvalidInput("after", "0 or more")
        try:
            rows, last, more = await ctx.db.run(
                read_events,
                actor=ctx.actor,
                mobilisation_id=expect_global_id(mobilisation, "Mobilisation", "mobilisation"),
                after=after,
                limit=first,
                kinds=kinds,
            )
        except errors.NotFound:
            return None
        return EventPage(events=rows, last_seq=last, has_more=more)

    @strawberry.field(
        description="Every micro-grid's state now, in a mobilisation or a street or community "
        "of it; by default the caller's own place."
    )
    async def grid_states(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        street: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
    ) -> list[GridState] | None:
        ctx = info.context
        try:
            rows = await ctx.db.run(
                in_scope,
                grid_states,
                actor=ctx.actor,
                mobilisation_id=expect_global_id(mobilisation, "Mobilisation", "mobilisation"),
                **place_ids(street, community),
            )
        except errors.NotFound:
            return None
        return [GridState.from_row(r) for r in rows]

    @strawberry.field(
        description="Every grid's status, every person's status and the coverage as they "
        "stood at `at`, replayed from the event log; by default the caller's own place."
    )
    async def state_at(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        at: datetime,
        street: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
    ) -> MobilisationState | None:
        return await _state(info, mobilisation, at, street, community)


@strawberry.type(description="One step of a playback: the state at the start, then each event.")
class PlaybackFrame:
    at: datetime
    state: MobilisationState | None = strawberry.field(
        description="In the first frame only: where things stood at the start."
    )
    event: MobilisationEvent | None


MAX_SPEED = 3600.0


async def _pause(ctx: Context, mobilisation_id: int, seconds: float) -> None:
    """Wait between frames, checking the token again whenever news wakes us (a revocation
    wakes every subscription): a slow playback must not outlive its token's revocation."""
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while (left := until - loop.time()) > 0:
        with ctx.hub.waiter(mobilisation_id) as woken, contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout=left)
        await ctx.recheck()


@strawberry.type
class ReplaySubscription:
    @strawberry.subscription(
        permission_classes=[SubscriptionPolicy],
        description="Replay a mobilisation from `start`: first the state then, then each event "
        "you may see, spaced as they happened divided by `speed` (60: an hour in a minute), "
        "until `end` or the last event.",
    )
    async def playback(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        start: datetime,
        speed: float = 60.0,
        end: datetime | None = None,
    ) -> AsyncGenerator[PlaybackFrame, None]:
        ctx = info.context
        if not 0 < speed <= MAX_SPEED:
            raise errors.InvalidInput("speed", f"more than 0 and at most {MAX_SPEED:g}")
        pk = expect_global_id(mobilisation, "Mobilisation", "mobilisation")
        first = await _state(info, mobilisation, start, None, None)
        await ctx.db.close()
        if first is None:
            raise errors.NotFound(f"没有这个动员 No mobilisation {mobilisation}")
        yield PlaybackFrame(at=start, state=first, event=None)
        clock = asyncio.get_running_loop().time
        began, seq = clock(), first.seq
        while True:
            await ctx.recheck()
            try:
                rows, seq, more = await ctx.db.run(
                    read_events, actor=ctx.actor, mobilisation_id=pk, after=seq, limit=500
                )
            finally:
                await ctx.db.close()
            for row in rows:
                if end is not None and row.occurred_at > end:
                    return
                due = began + (row.occurred_at - start).total_seconds() / speed
                await _pause(ctx, pk, due - clock())
                yield PlaybackFrame(at=row.occurred_at, state=None, event=row)
            if not more:
                return
