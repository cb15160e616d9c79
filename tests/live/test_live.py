"""Subscriptions over graphql-transport-ws with a real client library (gql), across two API
processes that share a database and a Redis broker, and refusals by the access rules."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.events import record_events
from mobilize.models import Assignment, Community, Event, Grid, Mobilisation, Responder, Role
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.topology import free_port
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.wartime import activated

BROKER = "redis://127.0.0.1:6379/14"
# This file alone uses Redis database 14, and its tests run one at a time on one
# pytest-xdist worker: two of them at once would share its queues.
pytestmark = pytest.mark.xdist_group("redis-14")


EVENTS_QUERY = """subscription($m: ID!, $after: Int!) {
  mobilisationEvents(mobilisation: $m, after: $after) { seq kind subjectId payload } }"""
EVENTS = gql(EVENTS_QUERY)
COVERAGE = gql(
    """subscription($m: ID!) { coverageChanged(mobilisation: $m) {
      grids mobilisedPct byStatus { status count } } }"""
)


def serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "MOBILIZE_DATABASE_URL": url,
        "MOBILIZE_BROKER_URL": BROKER,
        "MOBILIZE_LIVE_POLL_SECONDS": "60",  # updates must come through Redis, not polling
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mobilize.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server on {port} did not start: {log.read_text()[-2000:]}")


@pytest.fixture
def two_servers(migrated_url: str, engine: Engine, tmp_path: Path) -> Iterator[tuple[int, int]]:
    ports = free_port(), free_port()
    procs = [serve(migrated_url, p, tmp_path / f"server-{p}.log") for p in ports]
    try:
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


@pytest.fixture
def wartime(engine: Engine, tiny_bundle: Bundle) -> dict[str, Any]:
    """A tiny district in wartime since just now (real time: the servers use the real
    clock), a commander's token and a phone whose holder will check in."""
    clock = ManualClock(datetime.now(UTC))
    mobilisation = activated(engine, tiny_bundle, clock)
    with Session(engine) as session:
        a = session.scalars(
            select(Assignment).where(Assignment.role == "minimum").order_by(Assignment.id)
        ).first()
        assert a is not None
        grid = session.get(Grid, a.grid_id)
        code = session.get_one(Responder, a.responder_id).code
        last_seq = session.scalar(select(func.max(Event.mseq)))
    assert grid is not None
    return {
        "mobilisation": mobilisation,
        "id": to_global_id("Mobilisation", mobilisation.id),
        "assignment": to_global_id("Assignment", a.id),
        "grid": grid,
        "commander": make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code),
        "secretary": make_user(engine, clock, Role.COMMUNITY_SECRETARY, grid_community(engine)),
        "phone": make_user(engine, clock, Role.RESPONDER, code),
        "last_seq": last_seq,
        "secretary_grids": set(
            session_scalars(
                engine,
                select(Grid.id).join(Community).where(Community.code == grid_community(engine)),
            )
        ),
    }


def session_scalars(engine: Engine, stmt: Any) -> list[Any]:
    with Session(engine) as session:
        return list(session.scalars(stmt))


def grid_community(engine: Engine) -> str:
    with Session(engine) as session:
        return session.scalars(select(Community.code).order_by(Community.id.desc())).first() or ""


def client(port: int, token: str) -> Client:
    transport = WebsocketsTransport(
        url=f"ws://127.0.0.1:{port}/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],  # "graphql-transport-ws"
        init_payload={"Authorization": f"Bearer {token}"},
    )
    return Client(transport=transport)


def post(port: int, token: str, query: str, **variables: Any) -> Any:
    body = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert "errors" not in body, body
    return body["data"]


def test_a_check_in_on_one_process_reaches_subscribers_on_the_other(
    two_servers: tuple[int, int], wartime: dict[str, Any]
) -> None:
    watched, written = two_servers
    w = wartime

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        events: list[dict[str, Any]] = []
        coverage: list[dict[str, Any]] = []
        async with client(watched, w["commander"]) as ws:

            async def follow_events() -> None:
                async for item in ws.subscribe(
                    GraphQLRequest(EVENTS, variable_values={"m": w["id"], "after": w["last_seq"]})
                ):
                    events.append(item["mobilisationEvents"])
                    if item["mobilisationEvents"]["kind"] == "assignment.checked_in":
                        return

            async def follow_coverage() -> None:
                async with client(watched, w["commander"]) as ws2:
                    async for item in ws2.subscribe(
                        GraphQLRequest(COVERAGE, variable_values={"m": w["id"]})
                    ):
                        coverage.append(item["coverageChanged"])
                        if item["coverageChanged"]["mobilisedPct"] > 0:
                            return

            tasks = [asyncio.create_task(follow_events()), asyncio.create_task(follow_coverage())]
            await asyncio.sleep(1.0)  # both subscribed, first coverage sent
            grid = w["grid"]
            await asyncio.to_thread(
                post,
                written,
                w["phone"],
                """mutation($a: ID!, $lon: Float!, $lat: Float!) {
                  checkIn(assignment: $a, location: {lon: $lon, lat: $lat}) { __typename } }""",
                a=w["assignment"],
                lon=grid.centre.x,
                lat=grid.centre.y,
            )
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
        return events, coverage

    events, coverage = asyncio.run(scenario())
    assert events[-1]["kind"] == "assignment.checked_in"
    assert all(e["seq"] > w["last_seq"] for e in events)
    assert coverage[0]["mobilisedPct"] == 0 and coverage[-1]["mobilisedPct"] == 5.0  # 1 of 20
    mobilised = {s["status"]: s["count"] for s in coverage[-1]["byStatus"]}["mobilised"]
    assert mobilised == 1


def test_subscriptions_follow_the_access_rules(
    two_servers: tuple[int, int], wartime: dict[str, Any]
) -> None:
    port = two_servers[0]
    w = wartime

    async def first(token: str, document: Any, variables: dict[str, Any]) -> Any:
        async with client(port, token) as ws:
            async for item in ws.subscribe(GraphQLRequest(document, variable_values=variables)):
                return item
        return None

    async def scenario() -> None:
        # a phone may not watch the command centre's picture
        with pytest.raises(TransportQueryError) as refused:
            await first(w["phone"], COVERAGE, {"m": w["id"]})
        errors = refused.value.errors
        assert errors is not None and errors[0]["extensions"]["code"] == "FORBIDDEN"
        # a community secretary sees only their own community's grids and events
        mine = await first(w["secretary"], COVERAGE, {"m": w["id"]})
        assert 0 < mine["coverageChanged"]["grids"] < 20
        event = await first(w["secretary"], EVENTS, {"m": w["id"], "after": 0})
        payload = event["mobilisationEvents"]["payload"]
        assert payload.get("grid") is None or payload["grid"] in w["secretary_grids"]
        # a bad token never gets a connection
        with pytest.raises(Exception):  # noqa: B017 - the socket is closed with 4403
            await first("not-a-token", COVERAGE, {"m": w["id"]})

    asyncio.run(scenario())


def test_mobilisation_events_resume_after_a_sequence(
    two_servers: tuple[int, int], wartime: dict[str, Any], engine: Engine
) -> None:
    port = two_servers[1]
    w = wartime
    with Session(engine) as session:
        seqs = [
            s
            for s in session.scalars(
                select(Event.mseq)
                .where(Event.mobilisation_id == w["mobilisation"].id)
                .order_by(Event.mseq)
            )
            if s is not None  # committed events are numbered
        ]
    middle = seqs[len(seqs) // 2]

    async def scenario() -> list[int]:
        got: list[int] = []
        async with client(port, w["commander"]) as ws:
            async for item in ws.subscribe(
                GraphQLRequest(EVENTS, variable_values={"m": w["id"], "after": middle})
            ):
                got.append(item["mobilisationEvents"]["seq"])
                if got[-1] == seqs[-1]:
                    break
        return got

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [s for s in seqs if s > middle]
    assert isinstance(w["mobilisation"], Mobilisation)


def test_an_event_feed_left_open_all_morning_does_not_grow_the_servers_memory(
    engine: Engine, tiny_bundle: Bundle
) -> None:
    """A command centre's screen stays subscribed for hours and hears every event: what the
    server keeps for it must not grow with each event (graphql-core 3.3 kept a copy of the
    selection's plan per event until the subscription ended: see pyproject.toml)."""
    clock = ManualClock(datetime.now(UTC))
    mobilisation = activated(engine, tiny_bundle, clock)
    mid = to_global_id("Mobilisation", mobilisation.id)
    token = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    settings = Settings(live_poll_seconds=0.05, live_batch_seconds=0.0)
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    app = create_app(settings, engine=engine, clock=clock, dispatcher=dispatcher)

    def add_notes(count: int) -> int:
        """`count` more events in the log; the last one's sequence number."""
        with transaction(make_sessionmaker(engine)) as session:
            notes = [("note", "mobilisation", str(mobilisation.id), {"i": i}) for i in range(count)]
            record_events(
                session, clock=clock, actor="test", events=notes, mobilisation_id=mobilisation.id
            )
        with Session(engine) as session:
            return session.execute(select(func.max(Event.mseq))).scalar_one() or 0

    def heard_until(ws: Any, last: int) -> None:
        while True:
            message = ws.receive_json()
            assert message["type"] == "next", message
            if message["payload"]["data"]["mobilisationEvents"]["seq"] == last:
                return

    def held() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        with (
            TestClient(app) as api,
            api.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
        ):
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            assert ws.receive_json()["type"] == "connection_ack"
            payload = {"query": EVENTS_QUERY, "variables": {"m": mid, "after": 0}}
            ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
            heard_until(ws, add_notes(300))  # the morning so far, and every cache warm
            before = held()
            heard_until(ws, add_notes(3000))
            after = held()
    finally:
        tracemalloc.stop()
    grown = after - before
    # graphql-core 3.3 unpatched kept about 1,400 bytes an event; now under 20 stay
    assert grown < 100 * 3000, f"{grown / 3000:.0f} bytes kept per event heard"
