"""Live updates: after a transaction that recorded events commits, every API process hears
which mobilisations changed and wakes the subscriptions waiting on them.

The database stays the only source of truth: the message says only "mobilisation N
changed", and a woken subscription reads what it needs. So a lost message costs at most one
poll interval (subscriptions also poll), and a duplicate costs one cheap query. In the
embedded default the news travels in-process; with a broker URL it goes through Redis
pub/sub, so a check-in on one API process reaches a subscriber on another.

The same way, a transaction that changed credentials (`credentials_changed`) tells every
process to forget the tokens it trusted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from mobilize.models import CredentialChange

logger = logging.getLogger(__name__)

CHANGED = "mobilize.changed_mobilisations"  # session.info key, filled by record_event(s)
CHANNEL = "mobilize:changes"
CREDENTIALS = "mobilize.credentials_changed"  # session.info key, set by credentials_changed
CREDENTIALS_CHANNEL = "mobilize:credentials"


def touched(session: Session, mobilisation_id: int | None) -> None:
    """Note that this transaction changed a mobilisation (called where events are recorded)."""
    if mobilisation_id is not None:
        session.info.setdefault(CHANGED, set()).add(mobilisation_id)


def credentials_changed(session: Session, at: datetime) -> None:
    """Note that this transaction changed who may do what (a token revoked, a role granted,
    places re-imported): once it commits, every API process forgets the tokens it trusted,
    told through the broker at once and, broker or not, by the row written here, which
    `watch_credentials` sees within a second."""
    session.add(CredentialChange(changed_at=at))
    session.info[CREDENTIALS] = True


LATEST_CHANGE = "SELECT max(id) FROM credential_change"  # the newest change (NULL for none)


async def watch_credentials(engine: Engine, hub: Hub, every_s: float) -> None:
    """Tell `hub` whenever the newest credential change moves: a revocation made by a
    command with no broker, or published while Redis was down, still reaches this process.
    Back after the database was unreachable, it tells too: a change may have been missed.

    It reads on a bare pooled connection, beneath SQLAlchemy's statement events: a read
    every second is no request's, and must not show among a request's statements."""
    import anyio.to_thread

    def read() -> int:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(LATEST_CHANGE)
            row = cursor.fetchone()
            cursor.close()
            return int(row[0] or 0) if row else 0
        finally:
            raw.close()

    seen: int | None = None
    down = False
    while True:
        try:
            latest = await anyio.to_thread.run_sync(read)
        except Exception as exc:  # the readiness check says so; keep looking
            if not down:
                logger.warning("credential watch: database unreachable (%s)", exc)
            down = True
        else:
            # Any move, not only forward: a wiped test database starts again from 1.
            if (seen is not None and latest != seen) or down:
                hub.credentials_changed()
            seen, down = latest, False
        await asyncio.sleep(every_s)


class Hub:
    """This process's subscriptions, by mobilisation, and what forgets trusted tokens;
    woken from any thread."""

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._forget: list[Callable[[], None]] = []

    def on_credentials_changed(self, forget: Callable[[], None]) -> None:
        """Call `forget` (from any thread) whenever credentials may have changed anywhere."""
        self._forget.append(forget)

    def credentials_changed(self) -> None:
        """Forget trusted tokens, then wake every subscription to check its own again."""
        for forget in self._forget:
            forget()
        self.wake_all()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def wake(self, mobilisation_ids: Iterable[int]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for mobilisation_id in mobilisation_ids:
            loop.call_soon_threadsafe(self._set, mobilisation_id)

    def wake_all(self) -> None:
        """Wake every subscription: after an outage, when news may have been missed."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._set_all)

    def _set_all(self) -> None:
        for mobilisation_id in list(self._waiters):
            self._set(mobilisation_id)

    def _set(self, mobilisation_id: int) -> None:
        for waiter in list(self._waiters.get(mobilisation_id, ())):
            waiter.set()

    @contextlib.contextmanager
    def waiter(self, mobilisation_id: int) -> Iterator[asyncio.Event]:
        """An event set when the mobilisation changes; register it before reading, so a
        change between the read and the wait is not missed."""
        waiter = asyncio.Event()
        self._waiters[mobilisation_id].add(waiter)
        try:
            yield waiter
        finally:
            self._waiters[mobilisation_id].discard(waiter)
            if not self._waiters[mobilisation_id]:
                del self._waiters[mobilisation_id]


class Broker(Protocol):
    hub: Hub

    def publish(self, mobilisation_ids: Iterable[int]) -> None: ...

    def publish_credentials_changed(self) -> None: ...

    async def listen(self) -> None: ...


class LocalBroker:
    """The embedded default: one process, so news goes straight to its hub."""

    def __init__(self, hub: Hub | None = None) -> None:
        self.hub = hub or Hub()

    def publish(self, mobilisation_ids: Iterable[int]) -> None:
        self.hub.wake(mobilisation_ids)

    def publish_credentials_changed(self) -> None:
        self.hub.credentials_changed()

    async def listen(self) -> None:
        await asyncio.Event().wait()  # nothing arrives from elsewhere


class RedisBroker:
    """Several processes: publish through Redis, and listen for everyone's news. Local
    subscribers are woken directly too, so they do not wait on Redis being up."""

    def __init__(self, url: str, hub: Hub | None = None) -> None:
        import redis

        self.hub = hub or Hub()
        self._url = url
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def publish(self, mobilisation_ids: Iterable[int]) -> None:
        ids = sorted(set(mobilisation_ids))
        self.hub.wake(ids)
        try:
            self._client.publish(CHANNEL, json.dumps(ids))
        except Exception as exc:  # subscribers elsewhere catch up at their next poll
            logger.warning("live update not published: %s", exc)

    def publish_credentials_changed(self) -> None:
        self.hub.credentials_changed()
        try:
            self._client.publish(CREDENTIALS_CHANNEL, b"1")
        except Exception as exc:  # the others trust what they checked until their cache lapses
            logger.warning("credential change not published: %s", exc)

    async def listen(self) -> None:
        import redis.asyncio

        pause = 0.5
        while True:
            try:
                client = redis.asyncio.Redis.from_url(self._url)
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL, CREDENTIALS_CHANNEL)
                    if pause > 0.5:  # back after an outage: whatever was published is lost
                        logger.warning("live updates: Redis reachable again")
                        self.hub.wake_all()
                        self.hub.credentials_changed()
                    pause = 0.5
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        if message["channel"] == CREDENTIALS_CHANNEL.encode():
                            self.hub.credentials_changed()
                        else:
                            self.hub.wake(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("live updates: Redis unreachable (%s); retrying", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)


def make_broker(broker_url: str | None) -> Broker:
    return RedisBroker(broker_url) if broker_url else LocalBroker()


def attach(factory: sessionmaker[Session], broker: Broker) -> None:
    """Publish, after each commit of sessions from `factory`, the mobilisations it changed
    and whether it changed credentials."""

    @event.listens_for(factory, "after_commit")
    def _published(session: Session) -> None:
        changed = session.info.pop(CHANGED, None)
        if changed:
            broker.publish(changed)
        if session.info.pop(CREDENTIALS, False):
            broker.publish_credentials_changed()

    @event.listens_for(factory, "after_rollback")
    def _dropped(session: Session) -> None:
        session.info.pop(CHANGED, None)
        session.info.pop(CREDENTIALS, None)


async def changes(
    hub: Hub, mobilisation_id: int, poll_s: float, batch_s: float = 0.0
) -> AsyncIterator[None]:
    """Yield now, then whenever the mobilisation changes (or `poll_s` passes), at most once
    per `batch_s`: during a drill dozens of commits a second would otherwise make every
    subscriber re-read dozens of times a second. The caller reads state after each yield;
    the waiter is registered before that read, so no change is missed, only batched."""
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        with hub.waiter(mobilisation_id) as waiter:
            yield None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), timeout=poll_s)
        rest = batch_s - (loop.time() - began)
        if rest > 0:
            await asyncio.sleep(rest)
