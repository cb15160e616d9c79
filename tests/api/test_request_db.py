"""A request's database session is never used by two threads at once, even when the request
is cancelled mid-read: a page reloaded, a phone's socket dropped, a subscription stopped."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mobilize.api.context import RequestDb
from mobilize.db import make_engine, make_sessionmaker


@pytest.fixture
def one_connection(migrated_url: str) -> Iterator[Engine]:
    """An engine whose pool holds a single connection: whoever gets it next is the one a
    half-finished request would have left it to."""
    eng = make_engine(migrated_url, pool_size=1, max_overflow=0)
    yield eng
    eng.dispose()


def test_a_read_cancelled_mid_query_keeps_its_session_until_the_query_is_done(
    one_connection: Engine,
) -> None:
    reader = make_sessionmaker(one_connection, write=False)
    writer = make_sessionmaker(one_connection)
    done: list[str] = []
    started = threading.Event()

    def slow_read(session: Session) -> None:
        connection = session.connection()  # the read holds its connection, as queries do
        started.set()
        time.sleep(0.4)
        connection.execute(text("SELECT 1")).scalar_one()
        done.append("read finished")

    async def scenario() -> int:
        db = RequestDb(reader, writer)
        reading = asyncio.create_task(db.run(slow_read))
        await asyncio.to_thread(started.wait, 10)  # a read that never starts fails below
        reading.cancel()  # the socket closed while its read was still on the server
        with pytest.raises(asyncio.CancelledError):
            await reading
        await db.close()  # the subscription's own clean-up, straight after
        assert done == ["read finished"], "the session was closed under a running read"
        # The next request gets the pool's one connection, out of any transaction.
        after = RequestDb(reader, writer)
        try:
            return await after.run(lambda s: s.execute(text("SELECT 2")).scalar_one())
        finally:
            await after.close()

    assert asyncio.run(scenario()) == 2
