"""A subscription lives only as long as its token: revoked (through the API or the command
line, with no broker), expired, or its roles changed, the stream ends at once with one error
frame and the socket closes. Spoken in raw graphql-transport-ws against a served app, so each
frame and the close code are seen as a client sees them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from websockets.typing import Subprotocol

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.auth.actor import SYSTEM
from mobilize.auth.secrets import digest
from mobilize.auth.users import grant_role, resolve_place
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.models import ApiToken, Role, User
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.serving import serving
from tests.wartime import activated

COVERAGE = "subscription($m: ID!) { coverageChanged(mobilisation: $m) { grids } }"
EVENTS = "subscription($m: ID!) { mobilisationEvents(mobilisation: $m) { seq } }"


@dataclass
class Served:
    url: str
    engine: Engine
    clock: ManualClock
    mobilisation: str
    district: str


@pytest.fixture
def served(engine: Engine, tiny_bundle: Bundle) -> Iterator[Served]:
    """The embedded default (no broker) served on a port, a mobilisation under way."""
    clock = ManualClock(datetime.now(UTC))
    mobilisation = activated(engine, tiny_bundle, clock)
    settings = Settings(live_poll_seconds=0.5, live_batch_seconds=0.0)
    app = create_app(
        settings,
        engine=engine,
        clock=clock,
        dispatcher=InProcessDispatcher(engine, LogNotifier(), clock),
    )
    with serving(app) as port:
        yield Served(
            f"127.0.0.1:{port}",
            engine,
            clock,
            to_global_id("Mobilisation", mobilisation.id),
            tiny_bundle.district_code,
        )


async def subscribe(url: str, token: str, query: str, variables: dict[str, Any]) -> Any:
    ws = await websockets.connect(
        f"ws://{url}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")]
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    )
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "connection_ack"
    payload = {"query": query, "variables": variables}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    first = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert first["type"] == "next" and "errors" not in first["payload"], first
    return ws


async def ending(ws: Any, within_s: float) -> tuple[list[dict[str, Any]], int | None]:
    """The frames that arrive until the socket closes (or `within_s` passes), and the close
    code; `next` frames of data a stream may still send before it ends are kept too."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within_s):
            async for raw in ws:
                frames.append(json.loads(raw))
    except TimeoutError:
        await ws.close()
        return frames, None
    except websockets.ConnectionClosed:
        pass
    return frames, ws.close_code


def refusal(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The error frames among `frames`, and no `next` frame carries an error."""
    assert not [f for f in frames if f["type"] == "next" and "errors" in f["payload"]], frames
    return [f for f in frames if f["type"] == "error"]


def token_id(engine: Engine, secret: str) -> int:
    with Session(engine) as session:
        found = session.scalar(select(ApiToken.id).where(ApiToken.digest == digest(secret)))
    assert found is not None
    return found


def test_signing_out_ends_the_subscriptions_opened_with_the_token(served: Served) -> None:
    token = make_user_now(served, Role.DISTRICT_COMMANDER)

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await subscribe(served.url, token, COVERAGE, {"m": served.mobilisation})
        began = time.monotonic()
        async with httpx.AsyncClient() as http:
            signed_out = await http.post(
                f"http://{served.url}/graphql",
                json={"query": "mutation { signOut { __typename } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert signed_out.json()["data"]["signOut"]["__typename"] == "TokenRevoked"
        frames, code = await ending(ws, 10)
        assert time.monotonic() - began < 5
        return frames, code

    frames, code = asyncio.run(scenario())
    [error] = refusal(frames)
    assert error["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "token revoked" in error["payload"][0]["message"]
    assert code == 4401


def test_a_command_line_revocation_without_a_broker_reaches_the_running_api_at_once(
    served: Served, engine: Engine, migrated_url: str
) -> None:
    token = make_user_now(served, Role.DISTRICT_COMMANDER)
    me = {"query": "{ me { name } }"}
    headers = {"Authorization": f"Bearer {token}"}

    async def scenario() -> tuple[list[dict[str, Any]], int | None, float]:
        ws = await subscribe(served.url, token, EVENTS, {"m": served.mobilisation})
        async with httpx.AsyncClient() as http:
            before = await http.post(f"http://{served.url}/graphql", json=me, headers=headers)
            assert before.status_code == 200
            env = {k: v for k, v in os.environ.items() if k != "MOBILIZE_BROKER_URL"}
            revoked = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "mobilize.cli", "user", "revoke-token",
                 str(token_id(engine, token)), "--database-url", migrated_url],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert revoked.returncode == 0, revoked.stderr
            began = time.monotonic()
            frames, code = await ending(ws, 10)
            while True:  # the trusted token is forgotten within the watch's second
                answer = await http.post(f"http://{served.url}/graphql", json=me, headers=headers)
                if answer.status_code == 401 or time.monotonic() - began > 10:
                    break
                await asyncio.sleep(0.1)
            assert answer.status_code == 401, answer.text
        return frames, code, time.monotonic() - began

    frames, code, took = asyncio.run(scenario())
    [error] = refusal(frames)
    assert error["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert code == 4401
    assert took < 3  # not the minute a trusted token used to be kept


def test_an_expiring_token_ends_its_subscription(served: Served) -> None:
    token = make_user_now(served, Role.REVIEWER)

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await subscribe(served.url, token, COVERAGE, {"m": served.mobilisation})
        served.clock.advance(timedelta(days=31))  # past the token's 30 days
        return await ending(ws, 10)

    frames, code = asyncio.run(scenario())
    [error] = refusal(frames)
    assert "token expired" in error["payload"][0]["message"]
    assert code == 4401


def test_a_role_change_ends_the_subscription_and_a_new_one_sees_the_new_roles(
    served: Served, engine: Engine
) -> None:
    token = make_user_now(served, Role.REVIEWER, name="复盘员")

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        ws = await subscribe(served.url, token, COVERAGE, {"m": served.mobilisation})
        await asyncio.to_thread(grant, engine, served)
        return await ending(ws, 10)

    frames, code = asyncio.run(scenario())
    [error] = refusal(frames)
    assert "roles changed" in error["payload"][0]["message"]
    assert code == 4401

    async def again() -> None:  # the same token, subscribing anew, is served
        ws = await subscribe(served.url, token, COVERAGE, {"m": served.mobilisation})
        await ws.close()

    asyncio.run(again())


def grant(engine: Engine, served: Served) -> None:
    """Another role for the reviewer, written by a session the server does not share."""
    with transaction(make_sessionmaker(engine)) as session:
        user = session.scalars(select(User).where(User.name == "复盘员")).one()
        place = resolve_place(session, role=Role.DISTRICT_COMMANDER, scope=served.district)
        grant_role(session, actor=SYSTEM, clock=served.clock, user_id=user.id, place=place)


def make_user_now(served: Served, role: Role, name: str | None = None) -> str:
    """A user over the district, with a token issued on the server's clock."""
    return make_user(served.engine, served.clock, role, served.district, name=name)


def test_the_credential_watch_tells_of_each_change_and_of_a_database_back_from_an_outage() -> None:
    """The watch forgets trusted tokens when the newest change moves, and when the database
    answers again after an outage (a change may have been missed); an outage itself neither
    stops the watch nor floods the log."""
    from mobilize.live import Hub, watch_credentials

    answers: list[int | Exception] = [3, 3, 4, ConnectionError("down"), ConnectionError("down"), 4]
    told: list[int] = []

    class Database:
        """An engine's bare connection, as the watch uses it, answering from the script."""

        def raw_connection(self) -> Database:
            return self

        def cursor(self) -> Database:
            return self

        def execute(self, _statement: str) -> None:
            answer = answers.pop(0) if answers else 4
            if isinstance(answer, Exception):
                raise answer
            self.row = (answer,)

        def fetchone(self) -> tuple[int]:
            return self.row

        def close(self) -> None:
            return None

    hub = Hub()
    hub.on_credentials_changed(lambda: told.append(len(answers)))

    async def scenario() -> None:
        scripted = Database()  # stands in for the engine: the watch uses its raw connection
        watch = asyncio.create_task(watch_credentials(scripted, hub, 0.001))  # type: ignore[arg-type]  # duck-typed engine
        while answers:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch

    asyncio.run(scenario())
    # told once when 3 became 4 (3 answers left then), once when the database came back
    assert told == [3, 0]
