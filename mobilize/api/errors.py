"""Typed errors for mutation result unions, mapped from the domain's errors."""

from __future__ import annotations

import strawberry

from mobilize import errors


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
