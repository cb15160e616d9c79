"""Peacetime in the API: leave and return, commitments (`mobilize.peacetime`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from mobilize import errors
from mobilize.api.common import ContextInfo, decode_id
from mobilize.api.districts import Commitment, Leave, Responder
from mobilize.api.enums import LeaveReason
from mobilize.api.errors import ForbiddenError, NotFoundError, ValidationError, edit_error
from mobilize.peacetime import leave

Errors = ValidationError | NotFoundError | ForbiddenError
LeaveResult = Annotated[Leave | Errors, strawberry.union("LeaveResult")]
BackResult = Annotated[Responder | Errors, strawberry.union("BackOnDutyResult")]
CommitmentResult = Annotated[Commitment | Errors, strawberry.union("CommitmentResult")]


@strawberry.type
class PeacetimeMutation:
    @strawberry.mutation(description="请假: from now (or `startsAt`) to `endsAt` (or until back).")
    async def record_leave(
        self,
        info: ContextInfo,
        responder: strawberry.ID,
        reason: LeaveReason,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        note: str = "",
    ) -> LeaveResult:
        ctx = info.context
        try:
            row = await ctx.db.write(
                leave.record_leave,
                actor=ctx.actor,
                clock=ctx.clock,
                responder_id=decode_id(responder, "Responder", "responder"),
                reason=reason,
                starts_at=starts_at,
                ends_at=ends_at,
                note=note,
                display_tz=ctx.settings.display_timezone,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Leave.from_model(row)

    @strawberry.mutation(description="销假: back on duty now, called up again from this moment.")
    async def back_on_duty(self, info: ContextInfo, responder: strawberry.ID) -> BackResult:
        ctx = info.context
        try:
            row = await ctx.db.write(
                leave.back_on_duty,
                actor=ctx.actor,
                clock=ctx.clock,
                responder_id=decode_id(responder, "Responder", "responder"),
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Responder.from_model(row)

    @strawberry.mutation(description="承诺: what a person promises for a year.")
    async def record_commitment(
        self, info: ContextInfo, responder: strawberry.ID, year: int, promise: str
    ) -> CommitmentResult:
        ctx = info.context
        try:
            row = await ctx.db.write(
                leave.record_commitment,
                actor=ctx.actor,
                clock=ctx.clock,
                responder_id=decode_id(responder, "Responder", "responder"),
                year=year,
                promise=promise,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Commitment.from_model(row)

    @strawberry.mutation(description="践诺: what was done about a commitment.")
    async def record_fulfilment(
        self, info: ContextInfo, commitment: strawberry.ID, fulfilment: str
    ) -> CommitmentResult:
        ctx = info.context
        try:
            row = await ctx.db.write(
                leave.record_fulfilment,
                actor=ctx.actor,
                clock=ctx.clock,
                commitment_id=decode_id(commitment, "Commitment", "commitment"),
                fulfilment=fulfilment,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return Commitment.from_model(row)
