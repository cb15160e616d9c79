"""Per-request context: who is asking, a database runner and DataLoaders.

Domain services are synchronous. Each request gets one session, and every call on it runs in
a worker thread, one at a time, so the event loop never blocks and the session is never used
by two threads at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from mobilize import jobs
from mobilize.api.admission import Admission
from mobilize.auth.actor import Actor
from mobilize.auth.ratelimit import RateLimiter
from mobilize.auth.users import TokenRejected
from mobilize.clock import Clock
from mobilize.db import transaction
from mobilize.districts import queries
from mobilize.errors import SignedOut
from mobilize.jobs import Dispatcher
from mobilize.live import Hub
from mobilize.mobilisation import switch
from mobilize.notify import Notifier
from mobilize.settings import Settings

R = TypeVar("R")


class RequestDb:
    """A read session per request, and one short write transaction per mutation, all driven
    from async code through worker threads.

    With `admission` (a WebSocket's, which lives for hours), it holds an admission slot
    whenever it holds a connection, as an HTTP request does for its whole life."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        writer: sessionmaker[Session],
        admission: Admission | None = None,
    ) -> None:
        self._factory = factory
        self._writer = writer
        self._session: Session | None = None
        self._lock = asyncio.Lock()
        self._admission = admission
        self._holding = False

    async def _enter(self) -> None:
        if self._admission is not None and not self._holding:
            await self._admission.acquire(None)
            self._holding = True

    def _leave(self) -> None:
        if self._holding and self._session is None:
            self._holding = False
            assert self._admission is not None
            self._admission.release()

    def _session_now(self) -> Session:
        if self._session is None:
            self._session = self._factory()
        return self._session

    async def run(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """Read: call fn(session, ...) in a worker thread."""
        async with self._lock:
            await self._enter()
            try:
                return await _in_thread(lambda: fn(self._session_now(), *args, **kwargs))
            finally:
                self._leave()  # only if no session was opened

    async def write(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
        """A mutation's one transaction: fn(session, ...) then commit; roll back if it raises.

        The read session gives its connection back first: a request never holds two pooled
        connections at once, so a full pool cannot deadlock requests waiting on each other."""

        def call() -> R:
            if self._session is not None:
                session, self._session = self._session, None
                _close(session)
            with transaction(self._writer) as session:
                return fn(session, *args, **kwargs)

        async with self._lock:
            await self._enter()
            try:
                return await _in_thread(call)
            finally:
                self._leave()

    async def close(self) -> None:
        """The read session ends by rolling back; mutations committed in `write`."""
        async with self._lock:
            if self._session is not None:
                session, self._session = self._session, None
                await _in_thread(partial(_close, session))
            self._leave()


async def _in_thread(call: Callable[[], R]) -> R:
    """`call()` in a worker thread, waited for to the end even when the caller is cancelled
    (a page reloaded, a socket dropped, a subscription stopped): the thread runs on either way,
    and until it is done nobody else may have the session it uses. Cancelled, the caller
    gives up the lock only then, and the cancellation goes on up."""
    running = asyncio.ensure_future(anyio.to_thread.run_sync(call))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        while not running.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([running])
        if not running.cancelled():
            running.exception()  # its own failure, if any, is the cancelled caller's no more
        raise


def _close(session: Session) -> None:
    session.rollback()
    session.close()


class Loaders:
    """DataLoaders made on first use, one per lookup kind, for one request and one actor."""

    def __init__(self, db: RequestDb, actor: Actor) -> None:
        self._db = db
        self._actor = actor
        self._loaders: dict[Any, DataLoader[Any, Any]] = {}

    def one(self, model: Any) -> DataLoader[int, Any]:
        """Rows of `model` by id; None for a row out of the actor's scope."""
        key = ("one", model)
        if key not in self._loaders:

            async def load(ids: list[int]) -> list[Any]:
                return await self._db.run(queries.by_ids, model, ids, actor=self._actor)

            self._loaders[key] = DataLoader(load_fn=load)
        return self._loaders[key]

    def many(self, column: InstrumentedAttribute[Any]) -> DataLoader[Any, list[Any]]:
        """Lists of visible rows whose `column` equals each key (children by parent)."""
        key = ("many", column.class_, column.key)
        if key not in self._loaders:

            async def load(keys: list[Any]) -> list[list[Any]]:
                return await self._db.run(queries.by_column, column, keys, actor=self._actor)

            self._loaders[key] = DataLoader(load_fn=load)
        return self._loaders[key]

    def activations(self) -> DataLoader[int, Any]:
        """Each mobilisation's activation run, by mobilisation id (the caller has the
        mobilisation in sight already, so its run is too)."""
        key = (switch.ACTIVATION,)
        if key not in self._loaders:

            async def load(ids: list[int]) -> list[Any]:
                return await self._db.run(jobs.runs_of, switch.ACTIVATION, [str(i) for i in ids])

            self._loaders[key] = DataLoader(load_fn=load)
        return self._loaders[key]


class Context(BaseContext):
    def __init__(
        self,
        *,
        db: RequestDb,
        clock: Clock,
        actor: Actor,
        settings: Settings,
        limiter: RateLimiter,
        notifier: Notifier,
        dispatcher: Dispatcher,
        hub: Hub,
        authenticate: Callable[[RequestDb, str | None, str], Awaitable[Actor]],
        credentials: str | None = None,
    ) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.actor = actor
        self.settings = settings
        self.limiter = limiter
        self.notifier = notifier
        self.dispatcher = dispatcher
        self.hub = hub
        self.authenticate = authenticate
        self.connection_params: dict[str, object] | None = None  # a WebSocket's init payload
        self.credentials = credentials  # the Authorization value the actor was read from
        self.loaders = Loaders(db, actor)

    def use(self, actor: Actor, credentials: str) -> None:
        """Act as `actor` from now on (a WebSocket that signed in with connection_init)."""
        self.actor = actor
        self.credentials = credentials
        self.loaders = Loaders(self.db, actor)

    async def recheck(self) -> None:
        """For a subscription, at each wake-up: its token must still open the door (not
        revoked, expired or disabled) and grant the same roles, or the stream ends."""
        if not self.actor.authenticated:
            return
        try:
            now = await self.authenticate(self.db, self.credentials, self.actor.address)
        except TokenRejected as exc:
            raise SignedOut(exc.reason) from None
        finally:
            await self.db.close()
        if now.bindings != self.actor.bindings:
            raise SignedOut("您的角色已变更 your roles changed; subscribe again")
