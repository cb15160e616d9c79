"""Soak: the local production topology (PostGIS, Redis, two API processes, a Celery worker,
beat, Flower) under a xindu drill's load for a while; print JSON.

    python bench/soak.py --minutes 10 --json

A district is imported into a scratch database and activated through the API (the worker
solves it). Then, open loop at a fixed rate of mutations, phones acknowledge, check in at
their grid and record household checks (their own client mutation ids). Beside the rate, each
phone reads what the phone app (mobilize/web/static/phone.js) reads: its whole screen (MINE)
when opened and after an acknowledgement or check-in lands (a record only marks its line),
and the light look (LOOK) every minute while nothing waits to be sent. Phones are called in a
wave over the first five minutes (OPENING_S). Each street's commander
reads coverage every few seconds and follows the mobilisation's events over a subscription,
half on each API process.

The default rate is the drill's own: every person assigned acknowledges and checks in, and
every household is checked, within the target three hours:
(2 x people assigned + households) / 10,800 s. For xindu that is 50.9 mutations a second.

Reported: errors (any HTTP error, GraphQL error or refusal; the goal is zero; a 503 "busy"
or 429 answer is retried after Retry-After with the same client id, as phones do, and
counted as `retried_after_busy`; a dropped connection likewise, `retried_after_network_error`;
either is an error only after two minutes), latencies by
kind, achieved rates, subscription events heard, and the resident memory of every process of
the topology sampled each 30 s: after a one-minute warm-up ("start") and at the end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport
from scratch import scratch_postgis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mobilize.api.relay import to_global_id
from mobilize.auth.actor import SYSTEM
from mobilize.auth.users import create_user, issue_token, resolve_place
from mobilize.clock import SystemClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.models import (
    Assignment,
    Event,
    Grid,
    Household,
    JobRun,
    Mobilisation,
    Responder,
    Role,
    Street,
    Task,
)
from mobilize.topology import Topology

BROKER = os.environ.get("MOBILIZE_SOAK_BROKER", "redis://127.0.0.1:6379/11")
ACTIVATE = """mutation { activateMobilisation(scope: {district: true}, kind: EPIDEMIC,
  title: "新都区演练 soak") { __typename ... on Mobilisation { id status } } }"""
ACK = """mutation($a: ID!, $k: String!) { acknowledgeAssignment(id: $a, etaMinutes: 20,
  clientMutationId: $k) { __typename } }"""
CHECK_IN = """mutation($a: ID!, $lon: Float!, $lat: Float!, $k: String!) { checkIn(
  assignment: $a, location: {lon: $lon, lat: $lat}, clientMutationId: $k) { __typename } }"""
RECORD = """mutation($t: ID!, $h: ID!, $k: String!) { recordHouseholdCheck(task: $t,
  household: $h, result: OK, clientMutationId: $k) { __typename } }"""
PHONE_APP = Path(__file__).resolve().parents[1] / "mobilize" / "web" / "static" / "phone.js"


def _app_query(name: str) -> str:
    """A query exactly as the phone app sends it."""
    return PHONE_APP.read_text(encoding="utf-8").split(f"const {name} = `", 1)[1].split("`;")[0]


MINE, LOOK = _app_query("MINE"), _app_query("LOOK")
LOOK_EVERY_S = 60.0
# People are called in a wave: each phone opens the app and acknowledges at its turn within
# the first five minutes (a real morning spreads acknowledgements over about twenty). All at
# once, 917 phones' acknowledgements, check-ins and the screens reloaded after them arrive in
# half a minute, which no district's morning does.
OPENING_S = 300.0
COVERAGE = "query($m: ID!) { coverage(mobilisation: $m) { grids mobilisedPct } }"
EVENTS = """subscription($m: ID!, $after: Int!) { mobilisationEvents(mobilisation: $m,
  after: $after) { seq kind } }"""
WARM_UP_S = 60.0
GIVE_UP_S = 120.0  # a phone keeps retrying a refused action this long
SAMPLE_EVERY_S = 30.0
PHONES_A_POOL = 16


def _client() -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=PHONES_A_POOL, max_keepalive_connections=PHONES_A_POOL)
    return httpx.AsyncClient(timeout=30, limits=limits)


def _token(session: Session, role: Role, scope: str) -> str:
    clock = SystemClock()
    place = resolve_place(session, role=role, scope=scope)
    user = create_user(session, actor=SYSTEM, clock=clock, name=scope, places=[place])
    return issue_token(session, actor=SYSTEM, clock=clock, user_id=user.id, label="soak").secret


def _import(url: str, preset: str, seed: int) -> tuple[str, float]:
    started = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    bundle = generate_district(PRESETS[preset], seed=seed)
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=bundle, actor="soak", clock=SystemClock())
        commander = _token(session, Role.DISTRICT_COMMANDER, bundle.district_code)
    engine.dispose()
    return commander, time.perf_counter() - started


def _activate(topology: Topology, url: str, commander: str) -> tuple[int, float]:
    """Through the API, as a command centre would; the worker solves."""
    started = time.perf_counter()
    answer = httpx.post(
        f"{topology.url(0)}/graphql",
        json={"query": ACTIVATE},
        headers={"Authorization": f"Bearer {commander}"},
        timeout=900,
    ).json()["data"]["activateMobilisation"]
    engine = make_engine(url)
    mid = None
    while time.perf_counter() - started < 1800:
        with Session(engine) as session:
            m = session.scalars(select(Mobilisation)).one()
            job = session.scalars(select(JobRun)).one()
            mid = m.id
            if job.status in ("done", "failed"):
                break
        time.sleep(1)
    engine.dispose()
    if job.status != "done":
        raise RuntimeError(f"activation did not complete: {answer} {job.status} {job.error}")
    assert mid is not None
    return mid, time.perf_counter() - started


def _drill_rate(url: str, mid: int) -> float:
    """Mutations a second when everyone assigned acknowledges and checks in, and every
    household is checked, within three hours."""
    engine = make_engine(url)
    with Session(engine) as session:
        people = session.scalar(select(func.count()).where(Assignment.mobilisation_id == mid))
        households = session.scalar(select(func.count()).select_from(Household))
    engine.dispose()
    assert people and households
    return (2 * people + households) / (3 * 3600)


def _phones(url: str, mid: int, wanted: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Up to `wanted` phones, one per grid (a minimum-role holder with its household task),
    and a commander token per street."""
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with Session(engine) as session:
        rows = session.execute(
            select(Assignment.id, Assignment.grid_id, Responder.code, Grid.centre)
            .join(Responder, Responder.id == Assignment.responder_id)
            .join(Grid, Grid.id == Assignment.grid_id)
            .where(Assignment.mobilisation_id == mid, Assignment.role == "minimum")
            .order_by(Assignment.grid_id, Assignment.id)
        ).all()
        streets = session.scalars(select(Street.code).order_by(Street.code)).all()
    chosen, seen = [], set()
    for row in rows:
        if row.grid_id not in seen:
            seen.add(row.grid_id)
            chosen.append(row)
    step = max(1, len(chosen) // wanted)
    chosen = chosen[::step][:wanted]
    phones = []
    with transaction(factory) as session:
        tasks = dict(
            session.execute(
                select(Task.grid_id, Task.id).where(
                    Task.mobilisation_id == mid,
                    Task.kind == "household_check",
                    Task.grid_id.in_([r.grid_id for r in chosen]),
                )
            ).all()
        )
        homes: dict[int, list[int]] = defaultdict(list)
        for hid, gid in session.execute(
            select(Household.id, Household.micro_grid_id)
            .where(Household.micro_grid_id.in_([r.grid_id for r in chosen]))
            .order_by(Household.id)
        ):
            homes[gid].append(hid)
        for r in chosen:
            centre = session.scalar(select(func.ST_AsText(Grid.centre)).where(Grid.id == r.grid_id))
            assert centre is not None
            lon, lat = (float(v) for v in centre.removeprefix("POINT(").rstrip(")").split())
            phones.append(
                {
                    "token": _token(session, Role.RESPONDER, r.code),
                    "assignment": to_global_id("Assignment", r.id),
                    "lon": lon,
                    "lat": lat,
                    "task": to_global_id("Task", tasks[r.grid_id]),
                    "households": [to_global_id("Household", h) for h in homes[r.grid_id]],
                }
            )
        commanders = [_token(session, Role.STREET_COMMANDER, code) for code in streets]
    engine.dispose()
    return phones, commanders


def _last_seq(url: str, mid: int) -> int:
    """Where a command centre's event feed starts: now (its screen loaded the state)."""
    engine = make_engine(url)
    with Session(engine) as session:
        last = session.scalar(select(func.max(Event.mseq)).where(Event.mobilisation_id == mid))
    engine.dispose()
    return last or 0


Step = tuple[str, str, dict[str, Any], bool]  # kind, query, variables, screen reloaded after


def _plan(phone: dict[str, Any]) -> list[Step]:
    """A phone's morning: acknowledge, check in, then its households."""
    steps: list[Step] = [
        ("acknowledge", ACK, {"a": phone["assignment"]}, True),
        (
            "check_in",
            CHECK_IN,
            {"a": phone["assignment"], "lon": phone["lon"], "lat": phone["lat"]},
            True,
        ),
    ]
    for household in phone["households"]:
        steps.append(("record", RECORD, {"t": phone["task"], "h": household}, False))
    return steps


class Tally:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.heard = 0
        self.retried = 0
        self.retried_network = 0

    def error(self, what: str) -> None:
        self.errors.append(what[:300])


async def _call(
    client: httpx.AsyncClient,
    url: str,
    token: str,
    kind: str,
    query: str,
    variables: dict[str, Any],
    tally: Tally,
) -> None:
    """One phone or screen action; told to come back (503/429), it waits Retry-After and
    sends the same request again (same client mutation id), as the phone app does."""
    if "k" not in variables and "clientMutationId" in query:
        variables = {**variables, "k": uuid.uuid4().hex}
    started = time.perf_counter()
    while True:
        try:
            r = await client.post(
                url,
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            body = r.json()
        except (httpx.TransportError, ValueError) as exc:
            if time.perf_counter() - started < GIVE_UP_S:  # a dropped connection: again
                tally.retried_network += 1
                await asyncio.sleep(1.0)
                continue
            tally.error(f"{kind}: {type(exc).__name__} {exc}")
            return
        if r.status_code in (429, 503) and time.perf_counter() - started < GIVE_UP_S:
            tally.retried += 1
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            continue
        break
    took = time.perf_counter() - started
    if r.status_code != 200 or "errors" in body:
        tally.error(f"{kind}: HTTP {r.status_code} {body}")
        return
    answer = next(iter(body["data"].values()))
    if isinstance(answer, dict) and answer.get("__typename", "").endswith("Error"):
        tally.error(f"{kind}: {answer}")
        return
    tally.latency[kind].append(took)


async def _commander(
    client: httpx.AsyncClient, url: str, token: str, mid: str, until: float, tally: Tally
) -> None:
    while time.monotonic() < until:
        await _call(client, url, token, "coverage", COVERAGE, {"m": mid}, tally)
        await asyncio.sleep(5)


async def _subscriber(
    ws_url: str, token: str, mid: str, after: int, until: float, tally: Tally
) -> None:
    transport = WebsocketsTransport(
        url=ws_url,
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        init_payload={"Authorization": f"Bearer {token}"},
    )
    request = GraphQLRequest(gql(EVENTS), variable_values={"m": mid, "after": after})

    async def follow() -> None:
        async with Client(transport=transport) as session:
            async for _ in session.subscribe(request):
                tally.heard += 1

    try:
        await asyncio.wait_for(follow(), timeout=max(1.0, until - time.monotonic()))
    except TimeoutError:
        pass  # the soak is over
    except Exception as exc:
        tally.error(f"subscription: {type(exc).__name__} {exc}")


def _rss_mb(topology: Topology) -> dict[str, float]:
    """Resident memory of each process group (a worker with its pool processes)."""
    groups: dict[int, str] = {p.pid: name for name, p in topology.procs.items()}
    out: dict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            pgid = os.getpgid(int(entry.name))
            status = (entry / "status").read_text()
        except (OSError, ProcessLookupError):
            continue
        if pgid in groups:
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    out[groups[pgid]] += int(line.split()[1]) / 1024
    return {k: round(v, 1) for k, v in sorted(out.items())}


async def _sample(topology: Topology, until: float, samples: list[dict[str, Any]]) -> None:
    began = time.monotonic()
    while time.monotonic() < until:
        samples.append({"t_s": round(time.monotonic() - began), "rss_mb": _rss_mb(topology)})
        await asyncio.sleep(min(SAMPLE_EVERY_S, max(0.0, until - time.monotonic())))
    samples.append({"t_s": round(time.monotonic() - began), "rss_mb": _rss_mb(topology)})


async def _soak(
    topology: Topology,
    mid: int,
    phones: list[dict[str, Any]],
    commanders: list[str],
    rate: float,
    seconds: float,
    after: int,
) -> tuple[Tally, list[dict[str, Any]], float, int]:
    tally = Tally()
    samples: list[dict[str, Any]] = []
    gid = to_global_id("Mobilisation", mid)
    until = time.monotonic() + seconds
    plans = [(p["token"], i % topology.apis, _plan(p)) for i, p in enumerate(phones)]
    cursor = [0] * len(plans)
    busy = [False] * len(plans)
    async with contextlib.AsyncExitStack() as stack:
        # A small connection pool per group of phones, as handsets each hold their own: one
        # large httpx pool spends the generator's CPU assigning requests to connections (its
        # pass is quadratic in the pool's size: encode/httpx#3215), and the soak then measures
        # its own client instead of the service.
        clients = [
            await stack.enter_async_context(_client())
            for _ in range(math.ceil(len(plans) / PHONES_A_POOL) + 1)
        ]
        screens = clients[-1]  # the command centres'
        background = [
            asyncio.create_task(_sample(topology, until, samples)),
            *(
                asyncio.create_task(
                    _commander(
                        screens, f"{topology.url(i % topology.apis)}/graphql", t, gid, until, tally
                    )
                )
                for i, t in enumerate(commanders)
            ),
            *(
                asyncio.create_task(
                    _subscriber(
                        f"ws://127.0.0.1:{topology.ports[(i + 1) % topology.apis]}/graphql",
                        t,
                        gid,
                        after,
                        until,
                        tally,
                    )
                )
                for i, t in enumerate(commanders)
            ),
        ]

        def handset(n: int) -> tuple[httpx.AsyncClient, str, str]:
            """Phone n's connection pool, API address and token."""
            token, api, _ = plans[n]
            return clients[n // PHONES_A_POOL], f"{topology.url(api)}/graphql", token

        async def step(n: int) -> None:
            client, url, token = handset(n)
            kind, query, variables, reload = plans[n][2][cursor[n]]
            try:
                if cursor[n] == 0:  # the app opened
                    await _call(client, url, token, "screen", MINE, {}, tally)
                await _call(client, url, token, kind, query, variables, tally)
                if reload:
                    await _call(client, url, token, "screen", MINE, {}, tally)
            finally:
                cursor[n] += 1
                busy[n] = False

        sent = lagged = 0
        started = time.monotonic()
        inflight: set[asyncio.Task[None]] = set()

        async def look(n: int) -> None:
            client, url, token = handset(n)
            await _call(client, url, token, "look", LOOK, {}, tally)

        async def looks() -> None:
            """Every opened phone's look each minute, while it has nothing waiting; the
            phones' looks spread evenly over the minute."""
            gap = LOOK_EVERY_S / len(plans)
            k = 0
            looking: set[asyncio.Task[None]] = set()
            while (due := started + gap * (k + 1)) < until:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                n = k % len(plans)
                k += 1
                if cursor[n] > 0 and not busy[n]:
                    task = asyncio.create_task(look(n))
                    looking.add(task)
                    task.add_done_callback(looking.discard)
            await asyncio.gather(*looking)

        background.append(asyncio.create_task(looks()))
        nxt = 0
        while time.monotonic() < until:
            due = started + sent / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            for _ in range(len(plans)):  # the next phone that is idle and has work left
                nxt = (nxt + 1) % len(plans)
                called = cursor[nxt] > 0 or now >= started + OPENING_S * nxt / len(plans)
                if called and not busy[nxt] and cursor[nxt] < len(plans[nxt][2]):
                    break
            else:
                lagged += 1  # every phone busy or done: the system is behind the rate
                sent += 1
                continue
            busy[nxt] = True
            task = asyncio.create_task(step(nxt))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            sent += 1
        await asyncio.gather(*inflight)
        await asyncio.gather(*background)
    return tally, samples, time.monotonic() - started, lagged


def _memory(samples: list[dict[str, Any]]) -> dict[str, Any]:
    warm = [s for s in samples if s["t_s"] >= WARM_UP_S] or samples
    start, end = warm[0]["rss_mb"], samples[-1]["rss_mb"]
    report = {}
    for name in sorted(end):
        first, last = start.get(name, 0.0), end[name]
        peak = max(s["rss_mb"].get(name, 0.0) for s in warm)
        growth = (last - first) / first * 100 if first else 0.0
        report[name] = {
            "start_mb": first,
            "end_mb": last,
            "max_mb": peak,
            "growth_pct": round(growth, 1),
            # Flat: within 10 % (or 25 MB: allocator noise on a small process) of the start.
            "flat": last - first <= max(25.0, 0.10 * first),
        }
    return report


def _stats(values: list[float]) -> dict[str, Any]:
    ms = np.asarray(values) * 1000
    return {
        "count": len(values),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", default="xindu", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate", type=float, default=None, help="mutations a second (default: the drill's)"
    )
    parser.add_argument("--phones", type=int, default=0, help="default: enough for the soak")
    parser.add_argument(
        "--commanders", type=int, default=None, help="street command centres (default: each)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    seconds = args.minutes * 60
    result: dict[str, Any] = {"preset": args.preset, "minutes": args.minutes, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="mobilize-soak-") as tmp, scratch_postgis() as url:
        commander, result["import_s"] = _import(url, args.preset, args.seed)
        env = {
            "MOBILIZE_RATE_LIMIT_PER_ADDRESS": "100000000/60",  # one load generator
            "MOBILIZE_RATE_LIMIT_PER_TOKEN": "100000/60",
            "MOBILIZE_ACTIVATION_WAIT_SECONDS": "5",
        }
        with Topology(url, BROKER, Path(tmp) / "logs", apis=2, env=env) as topology:
            mid, result["activation_s"] = _activate(topology, url, commander)
            drill_rate = _drill_rate(url, mid)
            rate = args.rate or drill_rate
            wanted = args.phones or math.ceil(rate * seconds / 50 * 1.5)
            phones, commanders = _phones(url, mid, wanted)
            commanders = commanders[: args.commanders]
            result.update(
                drill_rate_per_s=round(drill_rate, 1), target_rate_per_s=round(rate, 1),
                phones=len(phones), commanders=len(commanders),
            )  # fmt: skip
            tally, samples, took, lagged = asyncio.run(
                _soak(topology, mid, phones, commanders, rate, seconds, _last_seq(url, mid))
            )
            # A supervised worker that ended is started again: count it as an exit too.
            crashed = [n for n, p in topology.procs.items() if p.poll() is not None]
            crashed += [n for n in topology.restarts if n not in crashed]
        mutations = sum(len(tally.latency[k]) for k in ("acknowledge", "check_in", "record"))
        result.update(
            wall_s=round(took, 1),
            mutations_per_s=round(mutations / took, 1),
            requests_per_s=round(sum(len(v) for v in tally.latency.values()) / took, 1),
            behind_rate=lagged,
            errors=len(tally.errors),
            error_samples=tally.errors[:5],
            retried_after_busy=tally.retried,
            retried_after_network_error=tally.retried_network,
            subscription_events_heard=tally.heard,
            processes_exited=crashed,
            processes_restarted=topology.restarts,
            latency={k: _stats(v) for k, v in sorted(tally.latency.items()) if v},
            memory=_memory(samples),
            memory_samples=samples,  # every 30 s: does a growth level off?
        )
        result["memory_flat"] = all(m["flat"] for m in result["memory"].values())
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))
    sys.exit(0 if not tally.errors and not crashed else 1)


if __name__ == "__main__":
    main()
