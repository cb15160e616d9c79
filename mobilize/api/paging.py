"""One page of a list, as a Relay connection, read through the scope-aware service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from mobilize.api.common import ContextInfo
from mobilize.api.relay import Connection, from_cursor
from mobilize.districts import queries


async def paged(
    info: ContextInfo,
    node_type: Any,
    model: Any,
    where: list[ColumnElement[bool]],
    first: int,
    after: str | None,
) -> Any:
    """`first` rows of `model` after the cursor, that the actor may see, matching `where`."""
    result = await info.context.db.run(
        queries.page,
        model,
        actor=info.context.actor,
        where=where,
        first=first,
        after=from_cursor(after),
    )
    return Connection.build(
        [node_type.from_model(r) for r in result.rows],
        [r.id for r in result.rows],
        has_next=result.has_next,
        has_previous=result.has_previous,
        total=result.total,
    )
