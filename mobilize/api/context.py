"""Per-request context: who is asking (from issue 3 on), a database runner and DataLoaders.

Domain services are synchronous. Each request gets one session, and every call on it runs in
a worker thread, one at a time, so the event loop never blocks and the session is never used
by two threads at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any, ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from mobilize.clock import Clock
from mobilize.districts import queries

P = ParamSpec("P")
R = TypeVar("R")


class RequestDb:
    """One session per request, driven from async code through a worker thread."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._session: Session | None = None
        self._lock = asyncio.Lock()

    def _session_now(self) -> Session:
        if self._session is None:
            self._session = self._factory()
        return self._session

    async def run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        async with self._lock:
            return await anyio.to_thread.run_sync(lambda: fn(self._session_now(), *args, **kwargs))

    async def close(self) -> None:
        """Read-only requests end by rolling back; mutations commit before this."""
        if self._session is not None:
            session, self._session = self._session, None
            await anyio.to_thread.run_sync(partial(_close, session))


def _close(session: Session) -> None:
    session.rollback()
    session.close()


class Loaders:
    """DataLoaders made on first use, one per lookup kind, living for one request."""

    def __init__(self, db: RequestDb) -> None:
        self._db = db
        self._loaders: dict[Any, DataLoader[Any, Any]] = {}

    def one(self, model: Any) -> DataLoader[int, Any]:
        """Rows of `model` by id."""
        key = ("one", model)
        if key not in self._loaders:

            async def load(ids: list[int]) -> list[Any]:
                return await self._db.run(queries.by_ids, model, ids)

            self._loaders[key] = DataLoader(load_fn=load)
        return self._loaders[key]

    def many(self, column: InstrumentedAttribute[Any]) -> DataLoader[Any, list[Any]]:
        """Lists of rows whose `column` equals each key (children by parent)."""
        key = ("many", column.class_, column.key)
        if key not in self._loaders:

            async def load(keys: list[Any]) -> list[list[Any]]:
                return await self._db.run(queries.by_column, column, keys)

            self._loaders[key] = DataLoader(load_fn=load)
        return self._loaders[key]


class Context(BaseContext):
    def __init__(self, db: RequestDb, clock: Clock) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.loaders = Loaders(db)
