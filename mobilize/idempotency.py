"""Client mutation ids: a retried request gets the first request's result, once.

The claim is a row with a unique (actor, client mutation id), inserted at the start of the
mutation's transaction: a concurrent duplicate waits on it, then finds the first result."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.clock import Clock
from mobilize.db.bulk import insert_if_absent
from mobilize.errors import DomainError
from mobilize.models import ClientMutation, table_of


def _find(session: Session, actor: str, key: str) -> ClientMutation | None:
    return session.scalar(
        select(ClientMutation).where(
            ClientMutation.actor == actor, ClientMutation.client_mutation_id == key
        )
    )


class ReusedMutationId(DomainError):
    code = "MUTATION_ID_REUSED"

    def __init__(self, key: str, operation: str) -> None:
        super().__init__(
            f"该请求编号已用于其他操作 clientMutationId {key!r} was already used for a different "
            f"{operation} request"
        )
        self.field = "clientMutationId"


def _fingerprint(operation: str, request: dict[str, Any]) -> str:
    body = json.dumps({"operation": operation, "input": request}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _answer(found: ClientMutation, key: str, operation: str, fingerprint: str) -> dict[str, Any]:
    if found.operation != operation or found.fingerprint != fingerprint:
        raise ReusedMutationId(key, operation)
    return found.result


def claim(
    session: Session,
    *,
    actor: str,
    key: str | None,
    operation: str,
    clock: Clock,
    request: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The earlier result for this key, or None after claiming the key for this request.

    The same key with a different request (`request` holds the inputs) is refused."""
    if key is None:
        return None
    key = validation.text("clientMutationId", key, max_len=100)
    fingerprint = _fingerprint(operation, request or {})
    # Claim first: a retry is the rare case, so the usual request makes one round trip.
    claimed = insert_if_absent(
        session,
        table_of(ClientMutation),
        {
            "actor": actor,
            "client_mutation_id": key,
            "operation": operation,
            "fingerprint": fingerprint,
            "result": {},
            "created_at": clock.now(),
        },
    )
    if claimed is None:
        found = _find(session, actor, key)  # the first request has committed
        assert found is not None
        return _answer(found, key, operation, fingerprint)
    return None


def remember(session: Session, *, actor: str, key: str | None, result: dict[str, Any]) -> None:
    """Store the result this key will answer with from now on."""
    if key is None:
        return
    t = table_of(ClientMutation)  # a plain UPDATE: the ORM's update path cost more than it
    session.execute(
        update(t)
        .where(t.c.actor == actor, t.c.client_mutation_id == key.strip())
        .values(result=result)
    )
