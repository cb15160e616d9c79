"""Coverage query times and check-in-to-subscriber latency at district scale; print JSON.

    python bench/live_bench.py --preset xindu --json

Goals on the 2-core reference machine (issue 6): the coverage query for the district and
for every street <= 50 ms; one check-in reaches a subscriber in <= 1 s with two API
processes (PostGIS + Redis: the check-in goes to one process, the subscription listens on
the other)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport
from phone_load import _prepare, _serve
from scratch import scratch_postgis
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from strawberry import ID

from mobilize.api.relay import to_global_id
from mobilize.auth.actor import SYSTEM
from mobilize.auth.users import create_user, issue_token, resolve_place
from mobilize.clock import SystemClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.models import Assignment, District, Event, Grid, Mobilisation, Role, Street
from mobilize.topology import free_port

BROKER = os.environ.get("MOBILIZE_BENCH_BROKER", "redis://127.0.0.1:6379/12")
COVERAGE = """query($m: ID!, $s: ID) { coverage(mobilisation: $m, street: $s) {
  grids mobilisedPct byStatus { status count } curve { minute mobilised } } }"""
CHECK_IN = """mutation($a: ID!, $lon: Float!, $lat: Float!) {
  checkIn(assignment: $a, location: {lon: $lon, lat: $lat}) { __typename } }"""
EVENTS = """subscription($m: ID!, $after: Int!) {
  mobilisationEvents(mobilisation: $m, after: $after) { seq kind subjectId } }"""


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def _commander(url: str) -> str:
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        code = session.scalars(select(District.code)).one()
        place = resolve_place(session, role=Role.DISTRICT_COMMANDER, scope=code)
        clock = SystemClock()
        user = create_user(session, actor=SYSTEM, clock=clock, name="bench", places=[place])
        secret = issue_token(session, actor=SYSTEM, clock=clock, user_id=user.id, label="b").secret
    engine.dispose()
    return secret


def _coverage_times(
    port: int, token: str, mobilisation: str, streets: list[tuple[str, ID]], n: int
) -> Any:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        headers = {"Authorization": f"Bearer {token}"}
        result: dict[str, Any] = {}
        for name, street in [("district", None), *streets]:
            times = []
            for _ in range(n):
                started = time.perf_counter()
                body = http.post(
                    "/graphql",
                    json={"query": COVERAGE, "variables": {"m": mobilisation, "s": street}},
                    headers=headers,
                ).json()
                times.append(time.perf_counter() - started)
                assert "errors" not in body, body
            result[name] = _ms(times)
        return result


async def _latencies(
    ports: tuple[int, int], token: str, mobilisation: str, after: int, phones: list[dict[str, Any]]
) -> list[float]:
    transport = WebsocketsTransport(
        url=f"ws://127.0.0.1:{ports[0]}/graphql",
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token}"},
    )
    arrived: dict[str, float] = {}
    wanted = {str(p["responder"]) for p in phones}
    async with Client(transport=transport) as ws:
        request = GraphQLRequest(EVENTS, variable_values={"m": mobilisation, "after": after})

        async def listen() -> None:
            async for item in ws.subscribe(request):
                event = item["mobilisationEvents"]
                if event["kind"] == "assignment.checked_in" and event["subjectId"] in wanted:
                    arrived[event["subjectId"]] = time.perf_counter()
                    if len(arrived) == len(wanted):
                        return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(1.0)
        sent: dict[str, float] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[1]}", timeout=30) as http:
            for p in phones:
                sent[str(p["responder"])] = time.perf_counter()
                body = (
                    await http.post(
                        "/graphql",
                        json={
                            "query": CHECK_IN,
                            "variables": {"a": p["assignment"], "lon": p["lon"], "lat": p["lat"]},
                        },
                        headers={"Authorization": f"Bearer {p['token']}"},
                    )
                ).json()
                assert "errors" not in body, body
                await asyncio.sleep(0.2)  # one at a time: latency, not throughput
        await asyncio.wait_for(listener, timeout=60)
    return [arrived[k] - sent[k] for k in sent]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="xindu")
    parser.add_argument("--checkins", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    procs = []
    with scratch_postgis("mobilize_live") as url:
        try:
            started = time.perf_counter()
            phones = _prepare(url, args.preset, args.checkins)
            prepare_s = time.perf_counter() - started
            token = _commander(url)
            engine = make_engine(url)
            with Session(engine) as session:
                mobilisation = session.scalars(select(Mobilisation.id)).one()
                streets = [
                    (code, to_global_id("Street", pk))
                    for pk, code in session.execute(
                        select(Street.id, Street.code).order_by(Street.code)
                    )
                ]
                after = int(session.scalar(select(func.max(Event.mseq))) or 0)
                for p in phones:
                    a = session.scalars(
                        select(Assignment).where(
                            Assignment.responder_id == p["responder"],
                            Assignment.mobilisation_id == mobilisation,
                        )
                    ).one()
                    grid = session.get(Grid, a.grid_id)
                    assert grid is not None
                    p.update(
                        assignment=to_global_id("Assignment", a.id),
                        lon=grid.centre.x,
                        lat=grid.centre.y,
                    )
            engine.dispose()
            env = {
                **os.environ,
                "MOBILIZE_DATABASE_URL": url,
                "MOBILIZE_BROKER_URL": BROKER,
                "MOBILIZE_LIVE_POLL_SECONDS": "60",
                "MOBILIZE_RATE_LIMIT_PER_TOKEN": "1000000/60",
                "MOBILIZE_RATE_LIMIT_PER_ADDRESS": "1000000/60",
            }
            ports = (free_port(), free_port())
            cli = [sys.executable, "-m", "mobilize.cli", "serve", "--port"]
            procs = [_serve([*cli, str(port)], env, port) for port in ports]
            gid = to_global_id("Mobilisation", mobilisation)
            coverage = _coverage_times(ports[0], token, gid, streets, args.repeat)
            latencies = asyncio.run(_latencies(ports, token, gid, after, phones))
            # Late in the day every grid has a first-mobilised minute: the curve is longest then.
            # (Scenario setup written straight to the states; the figures do not depend on how.)
            engine = make_engine(url)
            with transaction(make_sessionmaker(engine)) as session:
                session.execute(
                    text(
                        "UPDATE grid_state SET status = 'mobilised', mobilised_at = "
                        "(SELECT t0 FROM mobilisation WHERE id = :m) "
                        "+ (grid_id % 170) * interval '1 minute', mobilised_minute = grid_id % 170 "
                        "WHERE mobilisation_id = :m"
                    ),
                    {"m": mobilisation},
                )
            engine.dispose()
            late = _coverage_times(ports[0], token, gid, streets, args.repeat)
            report = {
                "preset": args.preset,
                "prepare_s": round(prepare_s, 1),
                "coverage_query": coverage,
                "coverage_worst_p50_ms": max(v["p50_ms"] for v in coverage.values()),
                "coverage_query_all_mobilised": late,
                "coverage_all_mobilised_worst_p50_ms": max(v["p50_ms"] for v in late.values()),
                "check_in_to_subscriber": {**_ms(latencies), "n": len(latencies)},
            }
            print(json.dumps(report, indent=None if args.json else 2))
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
