"""Faults against the local production topology (PostGIS, Redis, two API processes, a
worker, beat): each bounded in time, each asserting what users would notice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_engine
from mobilize.models import Assignment, Event, Grid, Responder, Role
from mobilize.topology import Topology
from tests.conftest import wipe
from tests.people import make_user
from tests.wartime import activated

BROKER = "redis://127.0.0.1:6379/12"
CHECK_IN = """mutation($a: ID!, $lon: Float!, $lat: Float!, $k: String) {
  checkIn(assignment: $a, location: {lon: $lon, lat: $lat}, clientMutationId: $k) {
    __typename ... on Assignment { status } } }"""


@pytest.fixture
def topology(postgis_url: str, engine: Engine, tmp_path: Path) -> Iterator[Topology]:
    env = {"MOBILIZE_RATE_LIMIT_PER_ADDRESS": "1000000/60"}
    with Topology(postgis_url, BROKER, tmp_path / "logs", apis=2, env=env) as running:
        yield running


@pytest.fixture
def engine(postgis_url: str) -> Iterator[Engine]:
    """The topology's database (PostGIS only), wiped after each test."""
    eng = make_engine(postgis_url)
    yield eng
    wipe(eng)
    eng.dispose()


def phones(engine: Engine, bundle: Bundle) -> list[dict[str, Any]]:
    """A tiny district in wartime since now (the servers use the real clock); every holder
    of a slot with a token, and where their grid is."""
    clock = ManualClock(datetime.now(UTC))
    activated(engine, bundle, clock)
    out = []
    with Session(engine) as session:
        for a in session.scalars(
            select(Assignment).where(Assignment.status == "assigned").order_by(Assignment.id)
        ):
            grid = session.get(Grid, a.grid_id)
            code = session.get(Responder, a.responder_id).code  # type: ignore[union-attr]
            assert grid is not None
            out.append(
                {
                    "assignment": to_global_id("Assignment", a.id),
                    "id": a.id,
                    "lon": grid.centre.x,
                    "lat": grid.centre.y,
                    "token": make_user(engine, clock, Role.RESPONDER, code),
                }
            )
    return out


def test_every_check_in_lands_once_across_an_api_restart(
    topology: Topology, engine: Engine, tiny_bundle: Bundle
) -> None:
    """Phones check in through API 0, retrying with the same client id on any failure; API 0
    is killed (kill -9) and restarted mid-stream. Every check-in lands, none twice."""
    people = phones(engine, tiny_bundle)
    failures: list[str] = []
    answered: dict[int, str] = {}
    retried: list[int] = []

    def phone(n: int, p: dict[str, Any]) -> None:
        time.sleep(0.1 * n)  # a stream: one phone after another
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                body = httpx.post(
                    f"{topology.url(0)}/graphql",
                    json={
                        "query": CHECK_IN,
                        "variables": {
                            "a": p["assignment"],
                            "lon": p["lon"],
                            "lat": p["lat"],
                            "k": f"in-{p['id']}",
                        },
                    },
                    headers={"Authorization": f"Bearer {p['token']}"},
                    timeout=5,
                ).json()
                if "errors" not in body:
                    answered[p["id"]] = body["data"]["checkIn"]["__typename"]
                    return
            except (httpx.HTTPError, ValueError):
                pass  # the server went away: try again, same id
            retried.append(p["id"])
            time.sleep(0.2)
        failures.append(p["assignment"])

    threads = [threading.Thread(target=phone, args=(n, p)) for n, p in enumerate(people)]
    for t in threads:
        t.start()
    time.sleep(0.1 * len(people) / 3)
    topology.kill("api-0")  # mid-stream: phones in flight and those to come must retry
    time.sleep(1.0)
    topology.restart("api-0")
    for t in threads:
        t.join()
    assert retried, "the restart should have made phones retry"
    assert not failures, topology.log("api-0")[-3000:]
    assert set(answered.values()) == {"Assignment"} and len(answered) == len(people)
    with Session(engine) as session:
        per = dict(
            session.execute(
                select(Event.subject_id, func.count())
                .where(Event.kind == "assignment.checked_in")
                .group_by(Event.subject_id)
            ).all()
        )
        on_site = session.scalar(
            select(func.count()).where(
                Assignment.id.in_([p["id"] for p in people]), Assignment.status == "on_site"
            )
        )
    assert on_site == len(people)
    assert len(per) == len(people) and set(per.values()) == {1}, "a check-in landed twice"


def test_the_api_recovers_when_its_database_connections_drop(
    topology: Topology, engine: Engine, tiny_bundle: Bundle
) -> None:
    """Every server-side connection is terminated: requests fail meanwhile or succeed on a
    fresh connection, never hang, and the API serves again without a restart."""
    people = phones(engine, tiny_bundle)
    me = {"query": "{ me { name } }"}
    headers = {"Authorization": f"Bearer {people[0]['token']}"}
    assert "errors" not in httpx.post(f"{topology.url(1)}/graphql", json=me, headers=headers).json()
    database = engine.url.database
    with engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :d AND pid <> pg_backend_pid()"
            ),
            {"d": database},
        )
        conn.commit()
    began = time.monotonic()
    ok = 0
    while time.monotonic() - began < 20 and ok < 5:
        answer = httpx.post(f"{topology.url(1)}/graphql", json=me, headers=headers, timeout=10)
        assert answer.status_code in (200, 500, 503)
        ok += answer.status_code == 200 and "errors" not in answer.json()
    assert ok == 5, topology.log("api-1")[-3000:]
    assert httpx.get(f"{topology.url(1)}/readyz", timeout=5).json()["database"] == "ok"
