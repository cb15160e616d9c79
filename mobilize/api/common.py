"""Helpers every API module shares: the resolvers' info type, global IDs decoded into the
domain's refusals, related rows through the request's loaders, and the mutation runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from sqlalchemy import select
from sqlalchemy.orm import Session
from strawberry import Info

from graphql import GraphQLError
from mobilize import errors
from mobilize.api.context import Context
from mobilize.api.errors import edit_error
from mobilize.api.relay import expect_global_id
from mobilize.mobilisation.outcome import Queued
from mobilize.models import District

Q = TypeVar("Q", bound=Queued)
R = TypeVar("R")

ContextInfo = Info[Context, None]


async def load_one(info: ContextInfo, model: Any, pk: int | None) -> Any:
    return None if pk is None else await info.context.loaders.one(model).load(pk)


async def related(info: ContextInfo, node_type: Any, model: Any, pk: int | None) -> Any:
    """A nullable relationship: the related row as `node_type`, or None when there is none
    or the caller may not see it."""
    row = await load_one(info, model, pk)
    return None if row is None else node_type.from_model(row)


def decode_id(value: str, type_name: str, argument: str) -> int:
    try:
        return expect_global_id(value, type_name, argument)
    except GraphQLError as exc:
        raise errors.InvalidInput(argument, exc.message) from None


async def run_mutation(info: ContextInfo, fn: Callable[..., Q], **kwargs: Any) -> Q:
    """One mutation's transaction, then what it queued (notifications, job runs), after
    commit."""
    ctx = info.context
    outcome: Q = await ctx.db.write(fn, actor=ctx.actor, clock=ctx.clock, **kwargs)
    ctx.dispatcher.dispatch(outcome.batches)
    ctx.dispatcher.run_jobs(outcome.jobs)
    return outcome


async def write(info: ContextInfo, fn: Callable[..., R], **kwargs: Any) -> R:
    """One domain write in its own transaction, as the caller, on the request's clock (for
    writes that queue nothing after commit)."""
    ctx = info.context
    return await ctx.db.write(fn, actor=ctx.actor, clock=ctx.clock, **kwargs)


async def answer(
    info: ContextInfo, node: Any, fn: Callable[..., Any], args: Callable[[], dict[str, Any]]
) -> Any:
    """A write answered as its mutation's union: the written row as `node`, or the typed
    refusal. `args` is called inside, so a malformed ID is a refusal like any other."""
    try:
        row = await write(info, fn, **args())
    except errors.DomainError as exc:
        return edit_error(exc)
    return node.from_model(row)


def decode_ids(values: list[strawberry.ID], type_name: str, argument: str) -> tuple[int, ...]:
    return tuple(decode_id(v, type_name, argument) for v in values)


async def district_of(info: ContextInfo, code: str | None) -> int:
    """The district a call is about: the caller's own, or the one of theirs named."""
    mine = {b.district_id for b in info.context.actor.bindings if b.district_id is not None}
    if code is not None:
        found: int | None = await info.context.db.run(_district_by_code, code)
        if found is not None and found in mine:
            return found
        raise errors.NotFound(f"没有这个区 No district {code!r} of yours")
    if len(mine) == 1:
        return next(iter(mine))
    raise errors.InvalidInput("district", "name the district: you hold places in several")


def _district_by_code(session: Session, code: str) -> int | None:
    return session.scalar(select(District.id).where(District.code == code))
