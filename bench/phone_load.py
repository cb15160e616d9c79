"""Simulated phones over real HTTP against a running server on PostGIS; print JSON.

    python bench/phone_load.py --preset xindu --clients 64 --seconds 60 --json

Each phone loops: myAssignment, then household checks on its grid (each with its own client
mutation id), and every fifth step a retry of an earlier check (same id: the replay path).
The same household-check work then runs against a bare FastAPI route (bench/bare_app.py) for
comparison. Goals (issue 5): >= 300 phone mutations a second, p99 <= 100 ms at 64 clients,
GraphQL throughput at least half of the bare route's."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from scratch import scratch_postgis
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.api.relay import to_global_id
from mobilize.auth.actor import SYSTEM, Actor, Binding
from mobilize.auth.users import create_user, issue_token, resolve_place
from mobilize.clock import ManualClock, SystemClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import Assignment, District, Household, Responder, Role, Task
from mobilize.topology import free_port

LOG = Path(os.environ.get("MOBILIZE_BENCH_LOG", os.devnull))  # the servers' stderr
MY_ASSIGNMENT = "{ myAssignment { minutesLeft assignment { id status } grid { code } } }"
RECORD = """mutation($t: ID!, $h: ID!, $k: String!) { recordHouseholdCheck(task: $t,
  household: $h, result: OK, clientMutationId: $k) { __typename } }"""


def _prepare(url: str, preset: str, clients: int) -> list[dict[str, Any]]:
    """Import, activate, and one phone per grid: a token, a task and its households."""
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    clock = SystemClock()
    with transaction(factory) as session:
        import_district(
            session,
            bundle=generate_district(PRESETS[preset], seed=1),
            actor="bench",
            clock=ManualClock(datetime.now(UTC)),
        )
        district_id = session.scalars(select(District.id)).one()
    commander = Actor(
        user_id=None,
        name="bench",
        bindings=(Binding(Role.DISTRICT_COMMANDER, district_id, district_id),),
    )
    switch.activate_in_process(
        factory,
        clock=clock,
        display_tz="Asia/Shanghai",
        worker="bench",
        actor=commander,
        scope=AreaScope(district=True),
        kind="epidemic",
        title="load",
    )
    phones = []
    with Session(engine) as session:
        rows = session.execute(
            select(Assignment.responder_id, Assignment.grid_id, Responder.code)
            .join(Responder, Responder.id == Assignment.responder_id)
            .where(Assignment.role == "minimum")
            .order_by(Assignment.grid_id)
            .limit(clients)
        ).all()
    for responder_id, grid_id, code in rows:
        with transaction(factory) as session:
            place = resolve_place(session, role=Role.RESPONDER, scope=code)
            user = create_user(session, actor=SYSTEM, clock=clock, name=code, places=[place])
            token = issue_token(
                session, actor=SYSTEM, clock=clock, user_id=user.id, label="bench"
            ).secret
            task_id = session.scalars(
                select(Task.id).where(Task.grid_id == grid_id, Task.kind == "household_check")
            ).one()
            households = session.scalars(
                select(Household.id)
                .where(Household.micro_grid_id == grid_id)
                .order_by(Household.id)
            ).all()
        phones.append(
            {
                "token": token,
                "task": task_id,
                "households": list(households),
                "responder": responder_id,
            }
        )
    engine.dispose()
    return phones


def _serve(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    with LOG.open("ab") as log:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            try:
                httpx.post(f"http://127.0.0.1:{port}/record", json={}, timeout=1)
                return proc
            except httpx.HTTPError:
                time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start")


async def _post(
    client: httpx.AsyncClient, url: str, stats: dict[str, list[float]], kind: str, **kwargs: Any
) -> None:
    """One request, timed; a dropped connection counts as an error, not a crash."""
    started = time.perf_counter()
    try:
        r = await client.post(url, **kwargs)
        r.raise_for_status()
    except httpx.TransportError:
        stats["errors"].append(time.perf_counter() - started)
        return
    stats[kind].append(time.perf_counter() - started)


async def _phone(
    client: httpx.AsyncClient,
    phone: dict[str, Any],
    url: str,
    until: float,
    bare: bool,
    stats: dict[str, list[float]],
) -> None:
    headers = {"Authorization": f"Bearer {phone['token']}"}
    done: list[tuple[int, str]] = []
    step = 0
    while time.monotonic() < until:
        step += 1
        if not bare and step % 4 == 1:
            await _post(client, url, stats, "query", json={"query": MY_ASSIGNMENT}, headers=headers)
            continue
        if done and step % 5 == 0:
            household, key = done[step % len(done)]  # a retry: same id, the replay path
        else:
            household = phone["households"][step % len(phone["households"])]
            key = f"{uuid.uuid4().hex}"
            done.append((household, key))
        if bare:
            payload = {"json": {"task": phone["task"], "household": household, "key": key}}
        else:
            payload = {
                "json": {
                    "query": RECORD,
                    "variables": {
                        "t": to_global_id("Task", phone["task"]),
                        "h": to_global_id("Household", household),
                        "k": key,
                    },
                }
            }
        await _post(client, url, stats, "mutation", headers=headers, **payload)


async def _load(
    url: str, phones: list[dict[str, Any]], seconds: float, bare: bool
) -> dict[str, Any]:
    stats: dict[str, list[float]] = {"query": [], "mutation": [], "errors": []}
    limits = httpx.Limits(max_connections=len(phones), max_keepalive_connections=len(phones))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        until = time.monotonic() + seconds
        await asyncio.gather(*(_phone(client, p, url, until, bare, stats) for p in phones))
    lat = np.asarray(stats["mutation"] + stats["query"]) * 1000
    return {
        "mutations_per_s": round(len(stats["mutation"]) / seconds, 1),
        "requests_per_s": round(len(lat) / seconds, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
        "dropped_connections": len(stats["errors"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="xindu")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    procs: list[subprocess.Popen[bytes]] = []
    with scratch_postgis("mobilize_load") as url:
        try:
            phones = _prepare(url, args.preset, args.clients)
            env = {
                **os.environ,
                "MOBILIZE_DATABASE_URL": url,
                "MOBILIZE_RATE_LIMIT_PER_TOKEN": "1000000/60",
                "MOBILIZE_RATE_LIMIT_PER_ADDRESS": "1000000/60",
            }
            port = free_port()
            procs.append(
                _serve(
                    [
                        sys.executable,
                        "-m",
                        "mobilize.cli",
                        "serve",
                        "--port",
                        str(port),
                        "--workers",
                        str(args.workers),
                    ],
                    env,
                    port,
                )
            )
            graphql = asyncio.run(
                _load(f"http://127.0.0.1:{port}/graphql", phones, args.seconds, bare=False)
            )
            server = procs.pop()
            server.terminate()
            server.wait(timeout=30)
            bare_port = free_port()
            bench_dir = str(Path(__file__).parent)
            procs.append(
                _serve(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "bare_app:app",
                        "--app-dir",
                        bench_dir,
                        "--port",
                        str(bare_port),
                        "--workers",
                        str(args.workers),
                        "--log-level",
                        "warning",
                    ],
                    env,
                    bare_port,
                )
            )
            bare = asyncio.run(
                _load(f"http://127.0.0.1:{bare_port}/record", phones, args.seconds, bare=True)
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=30)
    result = {
        "preset": args.preset,
        "clients": args.clients,
        "seconds": args.seconds,
        "workers": args.workers,
        "graphql": graphql,
        "bare_route": bare,
        "graphql_vs_bare": round(
            graphql["mutations_per_s"] / max(bare["mutations_per_s"], 1e-9), 2
        ),
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
