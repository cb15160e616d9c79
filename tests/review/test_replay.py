"""Replay: the log a tailing reader can follow, and stateAt giving back what the live API
showed at any instant."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.coverage.service import GRID_STATUS
from mobilize.db import make_sessionmaker, transaction
from mobilize.events import record_event
from mobilize.mobilisation import switch
from mobilize.models import Event, EventSnapshot, GridState, Role, Street
from mobilize.notify import LogNotifier
from mobilize.scheduler import Scheduler
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.simulate import simulate
from tests.wartime import activated, district_commander, write

GRID = "grid { id } status assigned answered onSite households checked mobilisedAt escalated missed"
COVERAGE = (
    "grids byStatus { status count } mobilisedPct households householdsChecked "
    "householdsCheckedPct minutesLeft curve { minute mobilised }"
)
LIVE = f"""query($m: ID!) {{
  gridStates(mobilisation: $m) {{ {GRID} }}
  coverage(mobilisation: $m) {{ {COVERAGE} }}
  node(id: $m) {{ ... on Mobilisation {{
    assignments(first: 500) {{ edges {{ node {{ responder {{ id }} grid {{ id }} status }} }} }}
  }} }}
}}"""
STATE_AT = f"""query($m: ID!, $at: DateTime!) {{
  stateAt(mobilisation: $m, at: $at) {{
    seq grids {{ {GRID} }} coverage {{ {COVERAGE} }}
    people {{ responder {{ id }} grid {{ id }} status }}
  }}
}}"""


@pytest.fixture
def api(engine: Engine, clock: ManualClock) -> Iterator[TestClient]:
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    app = create_app(Settings(), engine=engine, clock=clock, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield client


def ask(client: TestClient, token: str, query: str, **variables: Any) -> Any:
    body = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert "errors" not in body, body
    return body["data"]


def live(client: TestClient, token: str, mobilisation: str) -> dict[str, Any]:
    data = ask(client, token, LIVE, m=mobilisation)
    people = [e["node"] for e in data["node"]["assignments"]["edges"]]
    return {
        "grids": sorted(data["gridStates"], key=lambda g: g["grid"]["id"]),
        "coverage": data["coverage"],
        "people": sorted(people, key=lambda p: p["responder"]["id"]),
    }


def replayed(client: TestClient, token: str, mobilisation: str, at: datetime) -> dict[str, Any]:
    state = ask(client, token, STATE_AT, m=mobilisation, at=at.isoformat())["stateAt"]
    return {
        "grids": sorted(state["grids"], key=lambda g: g["grid"]["id"]),
        "coverage": state["coverage"],
        "people": sorted(state["people"], key=lambda p: p["responder"]["id"]),
    }


@pytest.mark.parametrize("snapshot_every", [0, 100])
def test_state_at_equals_what_the_live_api_returned(
    engine: Engine,
    tiny_bundle: Bundle,
    clock: ManualClock,
    api: TestClient,
    snapshot_every: int,
) -> None:
    mobilisation = activated(engine, tiny_bundle, clock)
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    mid = to_global_id("Mobilisation", mobilisation.id)
    token = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    rng = random.Random(2026)
    steps = 160
    targets = sorted(rng.sample(range(steps - 40), 20))
    seen: dict[datetime, dict[str, Any]] = {}

    def capture(step: int) -> None:
        if targets and step >= targets[0]:
            targets.pop(0)
            seen[clock.now()] = live(api, token, mid)
            if snapshot_every:  # the scheduler's tick takes snapshots as the log grows
                Scheduler(engine, clock, dispatcher, snapshot_every=snapshot_every).tick()

    simulate(engine, clock, rng, steps=steps, before_time_moves=capture)
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=mobilisation.id,
    )
    seen[clock.now()] = live(api, token, mid)
    assert len(seen) == 21
    statuses = {g["status"] for v in seen.values() for g in v["grids"]}
    assert {"ARRIVING", "MOBILISED"} <= statuses, "the morning should see grids move"
    assert any(g["escalated"] for g in seen[max(seen)]["grids"])
    with Session(engine) as session:
        snapshots = session.execute(select(func.count()).select_from(EventSnapshot)).scalar_one()
    assert (snapshots > 0) == bool(snapshot_every)
    for at, shown in seen.items():
        again = replayed(api, token, mid, at)
        assert again == shown, f"stateAt({at.isoformat()}) differs from what was shown then"


def test_a_tailing_reader_misses_no_event_that_commits_out_of_order(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """Writers record an event, then dawdle before committing, so they commit in a different
    order than they recorded; a reader tailing `mseq > last` must still see every event, each
    batch continuing exactly where the last one ended."""
    mobilisation = activated(engine, tiny_bundle, clock)
    factory = make_sessionmaker(engine)
    with Session(engine) as session:
        start = session.scalar(
            select(func.max(Event.mseq)).where(Event.mobilisation_id == mobilisation.id)
        )
    assert start is not None
    writers, done = 12, threading.Event()
    seen: list[int] = []

    def writer(n: int) -> None:
        with transaction(factory) as session:
            record_event(
                session,
                clock=clock,
                actor="test",
                kind="test.slow",
                subject_type="test",
                subject_id=str(n),
                mobilisation_id=mobilisation.id,
            )
            time.sleep(random.Random(n).uniform(0, 0.3))  # recorded early, committed late

    def tail() -> None:
        last = start
        while True:
            finished = done.is_set()
            with Session(engine) as session:
                batch = [
                    s
                    for s in session.scalars(
                        select(Event.mseq)
                        .where(Event.mobilisation_id == mobilisation.id, Event.mseq > last)
                        .order_by(Event.mseq)
                    )
                    if s is not None  # mseq > last: never null
                ]
            assert batch == list(range(last + 1, last + 1 + len(batch))), "a gap in the tail"
            seen.extend(batch)
            last = batch[-1] if batch else last
            if finished:
                return
            time.sleep(0.005)

    reader = threading.Thread(target=tail)
    reader.start()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join()
    with Session(engine) as session:
        slow = session.execute(
            select(Event.mseq, Event.subject_id, Event.actor, Event.occurred_at)
            .where(Event.kind == "test.slow")
            .order_by(Event.mseq)
        ).all()
    assert sorted(seen) == seen and set(seen) == {row.mseq for row in slow}
    assert len(slow) == writers and {row.subject_id for row in slow} == {
        str(n) for n in range(writers)
    }
    assert all(row.actor == "test" and row.occurred_at == clock.now() for row in slow)


def test_racing_phones_and_commanders_number_every_event_once(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """Declines re-plan a community (touching others' assignments) while acknowledgements,
    check-ins and household records (which share the community's lock among themselves) land
    on the same people and grids: no deadlock, and the sequence is 1..n without gaps, its
    times never going back."""
    mobilisation = activated(engine, tiny_bundle, clock)
    errors: list[BaseException] = []

    def phone_work(seed: int) -> None:
        try:
            simulate(
                engine,
                clock,
                random.Random(seed),
                steps=16,
                max_gap_minutes=0,
                actions=("ack", "decline", "check_in", "record", "record"),
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=phone_work, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with Session(engine) as session:
        rows = session.execute(
            select(Event.mseq, Event.occurred_at)
            .where(Event.mobilisation_id == mobilisation.id)
            .order_by(Event.mseq)
        ).all()
        kinds = set(session.scalars(select(Event.kind)))
    assert [r.mseq for r in rows] == list(range(1, len(rows) + 1))
    assert all(a.occurred_at <= b.occurred_at for a, b in itertools.pairwise(rows))
    assert "assignment.declined" in kinds and "assignment.checked_in" in kinds
    assert "household.checked" in kinds


PLAYBACK = """subscription($m: ID!, $start: DateTime!, $speed: Float!, $end: DateTime) {
  playback(mobilisation: $m, start: $start, speed: $speed, end: $end) {
    at state { seq coverage { mobilisedPct } } event { seq kind occurredAt }
  }
}"""


def subscribe(client: TestClient, token: str, query: str, **variables: Any) -> list[Any]:
    """Every `next` payload of one subscription over graphql-transport-ws, until complete."""
    frames: list[Any] = []
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
        while True:
            message = ws.receive_json()
            if message["type"] == "complete":
                return frames
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message["payload"]
            frames.append((time.monotonic(), message["payload"]["data"]))


def test_playback_replays_the_events_from_a_chosen_time_at_a_chosen_speed(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, api: TestClient
) -> None:
    mobilisation = activated(engine, tiny_bundle, clock)
    mid = to_global_id("Mobilisation", mobilisation.id)
    token = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    simulate(engine, clock, random.Random(5), steps=40, max_gap_minutes=3)
    start = mobilisation.t0 + timedelta(minutes=20)
    with Session(engine) as session:
        expected = session.execute(
            select(Event.mseq, Event.occurred_at)
            .where(Event.mobilisation_id == mobilisation.id, Event.occurred_at > start)
            .order_by(Event.mseq)
        ).all()
    span = (expected[-1].occurred_at - start).total_seconds()
    speed = span / 1.5  # the whole rest of the morning in 1.5 s
    began = time.monotonic()
    frames = subscribe(api, token, PLAYBACK, m=mid, start=start.isoformat(), speed=speed)
    first = frames[0][1]["playback"]
    assert first["event"] is None and first["at"] == start.isoformat()
    assert first["state"]["seq"] == expected[0].mseq - 1
    events = [f[1]["playback"]["event"] for f in frames[1:]]
    assert [e["seq"] for e in events] == [r.mseq for r in expected]
    # Paced: each event no earlier than its time since `start`, divided by the speed.
    for (arrived, data), row in zip(frames[1:], expected, strict=True):
        due = (row.occurred_at - start).total_seconds() / speed
        assert arrived - began >= due - 0.05, data
    assert frames[-1][0] - began >= 1.4
    # An end time stops the playback there.
    end = start + timedelta(minutes=15)
    stopped = subscribe(
        api, token, PLAYBACK, m=mid, start=start.isoformat(), speed=3600.0, end=end.isoformat()
    )
    assert [f[1]["playback"]["event"]["seq"] for f in stopped[1:]] == [
        r.mseq for r in expected if r.occurred_at <= end
    ]


EVENTS = """query($m: ID!, $after: Int!, $kinds: [String!], $first: Int!) {
  events(mobilisation: $m, after: $after, kinds: $kinds, first: $first) {
    lastSeq hasMore events { seq kind actor occurredAt subjectType subjectId payload }
  }
}"""


def test_events_page_through_the_log_by_kind_and_within_a_street_commanders_sight(
    engine: Engine, small_bundle: Bundle, clock: ManualClock, api: TestClient
) -> None:
    mobilisation = activated(engine, small_bundle, clock)
    mid = to_global_id("Mobilisation", mobilisation.id)
    district = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    simulate(engine, clock, random.Random(11), steps=30, actions=("ack", "check_in", "decline"))
    with Session(engine) as session:
        total = session.execute(
            select(func.count()).where(Event.mobilisation_id == mobilisation.id)
        ).scalar_one()
        s01 = session.scalars(select(Street.id).where(Street.code == "S01")).one()
        s01_grids = set(
            session.scalars(select(GridState.grid_id).where(GridState.street_id == s01))
        )

    def read(token: str, kinds: list[str] | None, first: int) -> list[dict[str, Any]]:
        pages, after, more = [], 0, True
        while more:
            page = ask(api, token, EVENTS, m=mid, after=after, kinds=kinds, first=first)["events"]
            pages.append(page["events"])
            after, more = page["lastSeq"], page["hasMore"]
        return [e for p in pages for e in p]

    every = read(district, None, 250)
    assert [e["seq"] for e in every] == list(range(1, total + 1)) and total > 250
    assert all(e["actor"] and e["occurredAt"] for e in every)
    declines = read(district, ["assignment.declined"], 500)
    assert declines and {e["kind"] for e in declines} == {"assignment.declined"}
    assert len(declines) == sum(e["kind"] == "assignment.declined" for e in every)
    street = make_user(engine, clock, Role.STREET_COMMANDER, "S01")
    theirs = read(street, [GRID_STATUS], 500)
    assert theirs and all(e["payload"]["grid"] in s01_grids for e in theirs)
    assert len(theirs) == sum(
        e["kind"] == GRID_STATUS and e["payload"]["grid"] in s01_grids for e in every
    )
    body = api.post(
        "/graphql",
        json={"query": EVENTS, "variables": {"m": mid, "after": 0, "kinds": None, "first": 0}},
        headers={"Authorization": f"Bearer {district}"},
    ).json()
    assert "first" in body["errors"][0]["message"]


def test_a_street_commander_replays_only_their_street(
    engine: Engine, small_bundle: Bundle, clock: ManualClock, api: TestClient
) -> None:
    mobilisation = activated(engine, small_bundle, clock)
    mid = to_global_id("Mobilisation", mobilisation.id)
    simulate(engine, clock, random.Random(3), steps=20, actions=("ack", "check_in"))
    street = make_user(engine, clock, Role.STREET_COMMANDER, "S01")
    district = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    with Session(engine) as session:
        s01 = session.scalars(select(Street.id).where(Street.code == "S01")).one()
        theirs = {
            to_global_id("Grid", g)
            for g in session.scalars(select(GridState.grid_id).where(GridState.street_id == s01))
        }
    at = clock.now().isoformat()
    mine = ask(api, street, STATE_AT, m=mid, at=at)["stateAt"]
    whole = ask(api, district, STATE_AT, m=mid, at=at)["stateAt"]
    assert {g["grid"]["id"] for g in mine["grids"]} == theirs
    assert len(whole["grids"]) == 240 > len(mine["grids"])
    assert mine["people"] and all(p["grid"]["id"] in theirs for p in mine["people"])
    assert mine["coverage"]["grids"] == len(theirs)
    other = ask(
        api,
        street,
        "query($m: ID!, $at: DateTime!, $s: ID!) { stateAt(mobilisation: $m, at: $at,"
        " street: $s) { seq } }",
        m=mid,
        at=at,
        s=to_global_id("Street", s01 + 1),
    )
    assert other["stateAt"] is None  # the other street is out of their sight
