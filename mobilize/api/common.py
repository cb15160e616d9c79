"""Helpers every API module shares: the resolvers' info type, global IDs decoded into the
domain's refusals, related rows through the request's loaders, and the mutation runner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from strawberry import Info

from graphql import GraphQLError
from mobilize import errors
from mobilize.api.context import Context
from mobilize.api.relay import expect_global_id
from mobilize.mobilisation.outcome import Queued

Q = TypeVar("Q", bound=Queued)

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


def decode_ids(values: list[strawberry.ID], type_name: str, argument: str) -> tuple[int, ...]:
    return tuple(decode_id(v, type_name, argument) for v in values)
