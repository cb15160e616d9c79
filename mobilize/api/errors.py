"""Typed errors for mutation result unions, mapped from the domain's errors."""

from __future__ import annotations

from datetime import datetime

import strawberry

from mobilize import errors
from mobilize.api.relay import to_global_id
from mobilize.districts.update import DistrictInWartime
from mobilize.idempotency import ReusedMutationId
from mobilize.mobilisation import field
from mobilize.mobilisation.outcome import (
    AlreadyActive,
    AlreadyStoodDown,
    Conflict,
    InvalidTransition,
)
from mobilize.tasks import lifecycle, records


@strawberry.interface(description="Why a mutation did not happen; the message is for people.")
class Error:
    message: str


@strawberry.type(description="An input is wrong; `field` names it.")
class ValidationError(Error):
    field: str


@strawberry.type(description="Too many attempts; try again after `retryAfterSeconds`.")
class RateLimitedError(Error):
    retry_after_seconds: int


@strawberry.type(description="The one-time code is wrong or expired.")
class InvalidCodeError(Error):
    attempts_left: int


@strawberry.type(description="No such object, or not one you may see.")
class NotFoundError(Error):
    pass


@strawberry.type(description="Part of the scope is already in wartime: the mobilisation named.")
class AlreadyActiveError(Error):
    mobilisation_id: strawberry.ID
    title: str


@strawberry.type
class AlreadyStoodDownError(Error):
    mobilisation_id: strawberry.ID


@strawberry.type(description="The assignment is not in a state that allows this change.")
class InvalidTransitionError(Error):
    current_status: str


@strawberry.type(description="Not yours to change (outside your street, or not your task).")
class ForbiddenError(Error):
    pass


@strawberry.type(description="Someone changed what this was based on meanwhile: look again.")
class ConflictError(Error):
    pass


@strawberry.type(description="Someone recorded this household first.")
class AlreadyRecordedError(Error):
    recorded_by: str
    recorded_at: datetime
    result: str


@strawberry.type(description="The check-in point is too far from the micro-grid.")
class OutOfAreaError(Error):
    distance_metres: float


@strawberry.type(
    description="A live mobilisation covers the place: its structure waits for the stand-down."
)
class InWartimeError(Error):
    mobilisation_id: strawberry.ID


CommandErrors = InvalidTransitionError | NotFoundError | ValidationError | ForbiddenError


def to_error(exc: errors.DomainError) -> Error:
    """The typed error for a domain refusal; unknown kinds are a bug and re-raised."""
    if isinstance(exc, errors.InvalidInput):
        return ValidationError(message=exc.message, field=exc.field)
    if isinstance(exc, errors.RateLimited):
        return RateLimitedError(message=exc.message, retry_after_seconds=exc.retry_after_s)
    if isinstance(exc, errors.InvalidCode):
        return InvalidCodeError(message=exc.message, attempts_left=exc.attempts_left)
    if isinstance(exc, errors.NotFound):
        return NotFoundError(message=exc.message)
    raise exc


def wartime_error(exc: errors.DomainError) -> Error:
    if isinstance(exc, AlreadyActive):
        return AlreadyActiveError(
            message=exc.message,
            title=exc.title,
            mobilisation_id=to_global_id("Mobilisation", exc.mobilisation_id),
        )
    if isinstance(exc, AlreadyStoodDown):
        return AlreadyStoodDownError(
            message=exc.message, mobilisation_id=to_global_id("Mobilisation", exc.mobilisation_id)
        )
    if isinstance(exc, InvalidTransition):
        return InvalidTransitionError(message=exc.message, current_status=exc.current)
    if isinstance(exc, errors.Forbidden):
        return ForbiddenError(message=exc.message)
    if isinstance(exc, Conflict):
        return ConflictError(message=exc.message)
    if isinstance(exc, ReusedMutationId):
        return ValidationError(message=exc.message, field="clientMutationId")
    return to_error(exc)


def field_error(exc: errors.DomainError) -> Error:
    if isinstance(exc, records.AlreadyRecorded):
        return AlreadyRecordedError(
            message=exc.message, recorded_by=exc.by, recorded_at=exc.at, result=exc.result
        )
    if isinstance(exc, field.OutOfArea):
        return OutOfAreaError(message=exc.message, distance_metres=round(exc.distance_m, 1))
    if isinstance(exc, lifecycle.TaskTransitionError):
        return InvalidTransitionError(message=exc.message, current_status=exc.current)
    if isinstance(exc, ReusedMutationId):
        return ValidationError(message=exc.message, field="clientMutationId")
    return wartime_error(exc)


def edit_error(exc: errors.DomainError) -> Error:
    """An edit's refusal: wartime names the mobilisation in the way."""
    if isinstance(exc, DistrictInWartime):
        return InWartimeError(
            message=exc.message,
            mobilisation_id=to_global_id("Mobilisation", exc.mobilisation_id),
        )
    if isinstance(exc, errors.Forbidden):
        return ForbiddenError(message=exc.message)
    return to_error(exc)
