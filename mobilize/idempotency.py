"""Client mutation ids: a retried request gets the first request's result, once.

The claim is a row with a unique (actor, client mutation id), inserted at the start of the
mutation's transaction: a concurrent duplicate waits on it, then finds the first result."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.clock import Clock
from mobilize.models import ClientMutation


def _find(session: Session, actor: str, key: str) -> ClientMutation | None:
    return session.scalar(
        select(ClientMutation).where(
            ClientMutation.actor == actor, ClientMutation.client_mutation_id == key
        )
    )


def claim(
    session: Session, *, actor: str, key: str | None, operation: str, clock: Clock
) -> dict[str, Any] | None:
    """The earlier result for this key, or None after claiming the key for this request."""
    if key is None:
        return None
    key = validation.text("clientMutationId", key, max_len=100)
    found = _find(session, actor, key)
    if found is not None:
        return found.result
    try:
        with session.begin_nested():
            session.add(
                ClientMutation(
                    actor=actor,
                    client_mutation_id=key,
                    operation=operation,
                    result={},
                    created_at=clock.now(),
                )
            )
    except IntegrityError:
        found = _find(session, actor, key)  # the concurrent first request has committed
        assert found is not None
        return found.result
    return None


def remember(session: Session, *, actor: str, key: str | None, result: dict[str, Any]) -> None:
    """Store the result this key will answer with from now on."""
    if key is None:
        return
    row = _find(session, actor, key.strip())
    assert row is not None, "claim() first"
    row.result = result
    session.flush()
