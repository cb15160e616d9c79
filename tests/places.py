"""A district in wartime seen by one user of each role over HTTP: the world the tests of
places (tests/auth/test_place*.py) ask questions in."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.models import Community, Street
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import Cast, cast
from tests.wartime import activated


@dataclass
class World:
    client: TestClient
    people: Cast
    mobilisation: str
    street: Mapping[str, str]  # street code -> global id
    community: Mapping[str, str]  # community code -> global id
    street_of: dict[str, str]  # community code -> street code


def world_in(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> Iterator[World]:
    """The small district activated whole, a user of each role, and a client of the API."""
    mobilisation = activated(engine, small_bundle, clock)
    people = cast(engine, clock)
    with Session(engine) as session:
        streets = {s.code: to_global_id("Street", s.id) for s in session.scalars(select(Street))}
        rows = session.execute(select(Community.code, Community.id, Street.code).join(Street))
        communities, street_of = {}, {}
        for code, pk, street in rows:
            communities[code] = to_global_id("Community", pk)
            street_of[code] = street
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    app = create_app(Settings(), engine=engine, clock=clock, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield World(
            client,
            people,
            to_global_id("Mobilisation", mobilisation.id),
            streets,
            communities,
            street_of,
        )


def ask(w: World, role: str, query: str, **variables: Any) -> dict[str, Any]:
    response = w.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {w.people.token(role)}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def refused(body: dict[str, Any], code: str | None = None) -> bool:
    """No data at all: a FORBIDDEN error, or the null that `node(id:)` gives for what the
    caller cannot see; with `code`, exactly that error."""
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    values = list((body.get("data") or {}).values())
    if code is not None and codes != {code}:
        return False
    return codes <= {"FORBIDDEN"} and values in ([], [None])


PER_PLACE = {
    "coverage": "query($m: ID!, $s: ID, $c: ID) { coverage(mobilisation: $m, street: $s, "
    "community: $c) { grids } }",
    "gridStates": "query($m: ID!, $s: ID, $c: ID) { gridStates(mobilisation: $m, street: $s, "
    "community: $c) { status } }",
    "risk": "query($m: ID!, $s: ID, $c: ID) { risk(mobilisation: $m, street: $s, "
    "community: $c, all: true) { atRisk } }",
    "stateAt": "query($m: ID!, $s: ID, $c: ID) { stateAt(mobilisation: $m, "
    'at: "2026-07-01T08:30:00+00:00", street: $s, community: $c) { seq grids { status } } }',
    "afterActionReport": "query($m: ID!, $s: ID, $c: ID) { afterActionReport(mobilisation: $m, "
    "street: $s, community: $c) { grids } }",
}


# -- every scope argument of every per-place query, for every role ----------------------------

ROLES = [
    "admin",
    "district_commander",
    "reviewer",
    "street_commander",
    "other_street_commander",
    "community_secretary",
    "responder",
]


def places_of(w: World) -> dict[str, set[str]]:
    """Each role's place as the communities it covers, written from who the cast are (never
    from the scope code under test)."""
    every = set(w.street_of)
    return {
        "admin": every,
        "district_commander": every,
        "reviewer": every,
        "street_commander": {c for c, s in w.street_of.items() if s == w.people.street},
        "other_street_commander": {c for c, s in w.street_of.items() if s == w.people.other_street},
        "community_secretary": {w.people.community},
        "responder": set(),
    }


def first_frame(w: World, role: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    with w.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        token = w.people.token(role)
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert ws.receive_json()["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        frame: dict[str, Any] = ws.receive_json()
        return frame
