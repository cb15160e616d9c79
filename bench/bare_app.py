"""The comparison for bench/phone_load.py: the same database work behind a bare FastAPI route,
no GraphQL, so the cost of the GraphQL layer can be measured."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Header, HTTPException
from fastapi.concurrency import run_in_threadpool

from mobilize.auth.users import TokenRejected, authenticate
from mobilize.clock import SystemClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.errors import DomainError
from mobilize.settings import get_settings
from mobilize.tasks import records

engine = make_engine(get_settings().database_url, pool_size=10)
factory = make_sessionmaker(engine)
clock = SystemClock()
app = FastAPI()


def _record(token: str, body: dict[str, Any]) -> dict[str, Any]:
    """As the GraphQL mutation does: one transaction, rolled back on a refusal."""
    try:
        with transaction(factory) as session:
            actor = authenticate(session, secret=token, clock=clock, address="bench")
            record = records.record_household(
                session,
                actor=actor,
                clock=clock,
                task_id=body["task"],
                household_id=body["household"],
                kind="check",
                result="ok",
                client_mutation_id=body["key"],
            )
            return {"id": record.id}
    except TokenRejected as exc:
        raise HTTPException(401, exc.reason) from None
    except DomainError as exc:
        return {"error": exc.code}


@app.post("/record")
async def record(body: dict[str, Any], authorization: str = Header()) -> dict[str, Any]:
    return await run_in_threadpool(_record, authorization.removeprefix("Bearer "), body)
