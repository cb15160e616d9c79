"""stateAt on a long mobilisation: a district activated for real, its log then grown to
1,000,000 events (phones acknowledging, checking in, being moved; grids changing state), the
scheduler's snapshots taken, and stateAt asked at random instants. Prints JSON.

    python bench/replay_bench.py --preset xindu --events 1000000 --json

Goal (issue 7): stateAt <= 1 s for a mobilisation of 1,000,000 events."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scratch import scratch_postgis
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.auth.scope import in_scope
from mobilize.clock import ManualClock
from mobilize.coverage.service import ACTOR, GRID_STATUS, status_of
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.bulk import insert_rows
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import District, Event, EventCounter, GridState, Mobilisation, Role, table_of
from mobilize.review.replay import snapshot_due, state_at, state_in

T0 = datetime(2026, 7, 1, 8, tzinfo=UTC)
CHUNK = 50_000


def _activate(url: str, bundle: Any) -> tuple[Any, int]:
    engine = make_engine(url)
    upgrade(engine)
    clock = ManualClock(T0)
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=bundle, actor="bench", clock=clock)
    with Session(engine) as session:
        did = session.scalars(select(District.id)).one()
    commander = Actor(
        user_id=None, name="bench", bindings=(Binding(Role.DISTRICT_COMMANDER, did, did),)
    )
    mid = switch.activate_in_process(
        make_sessionmaker(engine),
        clock=clock,
        display_tz="Asia/Shanghai",
        worker="bench",
        actor=commander,
        scope=AreaScope.parse("district"),
        kind="epidemic",
        title="bench",
    ).mobilisation.id
    return engine, mid


def _grow(engine: Any, mid: int, target: int, hours: float, seed: int) -> tuple[int, float]:
    """Append synthetic but consistent events until the log holds `target`: each person
    event is followed by its grid's new state, as the services record them."""
    rng = random.Random(seed)
    with Session(engine) as session:
        start = session.scalar(select(func.max(Event.mseq)).where(Event.mobilisation_id == mid))
        grids = {
            g.grid_id: g
            for g in session.scalars(select(GridState).where(GridState.mobilisation_id == mid))
        }
        people: dict[int, int] = dict(
            session.execute(
                text("SELECT responder_id, grid_id FROM assignment WHERE mobilisation_id = :m"),
                {"m": mid},
            ).all()
        )
    assert start is not None
    state = {rid: "assigned" for rid in people}
    counts = {g: [s.assigned, s.answered, s.on_site, s.checked] for g, s in grids.items()}
    ids = sorted(people)
    grid_ids = sorted(grids)
    step = timedelta(hours=hours) / max(1, (target - start) // 2)
    rows: list[dict[str, Any]] = []
    at, mseq = T0, start
    began = time.perf_counter()

    def flush(session: Session) -> None:
        insert_rows(session, table_of(Event), rows)
        rows.clear()

    with transaction(make_sessionmaker(engine)) as session:
        while mseq + 2 <= target:
            at += step
            rid = rng.choice(ids)
            was, grid = state[rid], people[rid]
            kind, now = {
                "assigned": ("assignment.acknowledged", "acknowledged"),
                "acknowledged": ("assignment.checked_in", "on_site"),
                "on_site": ("assignment.reassigned", "en_route"),
                "en_route": ("assignment.checked_in", "on_site"),
            }[was]
            c = counts[grid]
            if kind == "assignment.reassigned":  # moved to another grid: both grids change
                c[2] -= 1
                c[0] -= 1
                grid = people[rid] = rng.choice(grid_ids)
                counts[grid][0] += 1
                counts[grid][1] += 1
            elif now == "acknowledged":
                c[1] += 1
            else:
                c[1] -= 1
                c[2] += 1
            state[rid] = now
            for kind_, subject_type, subject, payload in (
                (kind, "responder", str(rid), {"grid": grid, "status": now}),
                (GRID_STATUS, "grid", str(grid), _grid_payload(grids[grid], counts[grid])),
            ):
                mseq += 1
                rows.append(
                    {
                        "occurred_at": at,
                        "actor": ACTOR if kind_ == GRID_STATUS else f"responder:{rid}",
                        "kind": kind_,
                        "subject_type": subject_type,
                        "subject_id": subject,
                        "payload": payload,
                        "mobilisation_id": mid,
                        "mseq": mseq,
                    }
                )
            if len(rows) >= CHUNK:
                flush(session)
        flush(session)
        session.execute(
            update(EventCounter)
            .where(EventCounter.mobilisation_id == mid)
            .values(last_mseq=mseq, last_at=at)
        )
    return mseq, time.perf_counter() - began


def _grid_payload(g: GridState, c: list[int]) -> dict[str, Any]:
    assigned, answered, on_site, checked = c
    return {
        "grid": g.grid_id,
        "community": g.community_id,
        "street": g.street_id,
        "status": status_of(1, assigned, answered, on_site, g.households, checked).value,
        "assigned": assigned,
        "answered": answered,
        "on_site": on_site,
        "households": g.households,
        "checked": checked,
    }


def _measure(url: str, bundle: Any, args: argparse.Namespace) -> dict[str, Any]:
    engine, mid = _activate(url, bundle)
    events, grow_s = _grow(engine, mid, args.events, args.hours, args.seed)
    with Session(engine) as session:  # before any snapshot: what snapshots save
        mobilisation = session.get(Mobilisation, mid)
        assert mobilisation is not None
        t = time.perf_counter()
        state_at(session, mobilisation, mobilisation.t0 + timedelta(hours=args.hours))
        unsnapshotted = time.perf_counter() - t
    began = time.perf_counter()
    with transaction(make_sessionmaker(engine)) as session:
        snapshots = snapshot_due(session, args.every)
    snapshot_s = time.perf_counter() - began
    with Session(engine) as session:
        mobilisation = session.get(Mobilisation, mid)
        assert mobilisation is not None
        last = session.scalar(
            select(func.max(Event.occurred_at)).where(Event.mobilisation_id == mid)
        )
        assert last is not None
        rng = random.Random(args.seed)
        span = (last - T0).total_seconds()
        instants = [T0 + timedelta(seconds=rng.uniform(0, span)) for _ in range(args.instants)]
        instants.append(last)
        commander = Actor(
            user_id=None,
            name="bench",
            bindings=(Binding(Role.DISTRICT_COMMANDER, mobilisation.district_id, None),),
        )
        timings, folded = [], []
        for at in instants:
            t = time.perf_counter()
            state, coverage, grids, people = in_scope(
                session, state_in, actor=commander, mobilisation_id=mid, at=at
            )
            timings.append(time.perf_counter() - t)
            folded.append(state.mseq)
    engine.dispose()
    timings.sort()
    return {
        "events": events,
        "grids": len(grids),
        "people": len(people),
        "grow_s": round(grow_s, 1),
        "snapshots": snapshots,
        "snapshot_every": args.every,
        "snapshots_s": round(snapshot_s, 1),
        "state_at_p50_ms": round(1000 * statistics.median(timings), 1),
        "state_at_p95_ms": round(1000 * timings[int(0.95 * (len(timings) - 1))], 1),
        "state_at_max_ms": round(1000 * timings[-1], 1),
        "state_at_last_instant_without_snapshots_ms": round(1000 * unsnapshotted, 1),
        "instants": len(instants),
        "coverage_at_last": coverage.mobilised_pct,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="xindu", choices=sorted(PRESETS))
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=72.0, help="Span of the mobilisation.")
    parser.add_argument("--every", type=int, default=5000, help="Snapshot interval (events).")
    parser.add_argument("--instants", type=int, default=20)
    parser.add_argument("--backend", choices=["sqlite", "postgis", "both"], default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bundle = generate_district(PRESETS[args.preset], seed=args.seed)
    result: dict[str, Any] = {"preset": args.preset}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="mobilize-bench-") as tmp:
            result["sqlite"] = _measure(f"sqlite:///{Path(tmp) / 'b.db'}", bundle, args)
    if args.backend in ("postgis", "both"):
        with scratch_postgis() as url:
            result["postgis"] = _measure(url, bundle, args)
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
