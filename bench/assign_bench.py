"""Activate a whole district and compare the engine with greedy nearest-first; print JSON.

    python bench/assign_bench.py --preset xindu --json

Goals on the 2-core reference machine (issue 4): activation <= 5 s end to end (switch to all
assignments committed) on SQLite and on PostGIS at xindu size; every micro-grid covered when
the people in scope make it possible; travel no worse than greedy."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scratch import scratch_postgis
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.mobilisation import callup, engine, switch
from mobilize.mobilisation.area import AreaScope
from mobilize.mobilisation.rules import RULES
from mobilize.models import District, MobilisationKind, Role

CLOCK = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))


def _greedy(problem: callup.Problem, reach: float) -> engine.Plan:
    """Nearest-first: each person, in turn, takes the nearest allowed grid with a slot left."""
    rule = RULES[MobilisationKind.EPIDEMIC]
    grids = problem.grids
    index = {g.grid_id: i for i, g in enumerate(grids)}
    gx = np.asarray([g.x for g in grids])
    gy = np.asarray([g.y for g in grids])
    left_min = np.asarray([g.open_minimum for g in grids])
    left_work = np.asarray([g.open_work for g in grids])
    P, G, D = engine._pairs(problem.people, index, gx, gy, rule.candidates_per_person)
    plan = engine.Plan()
    started = time.perf_counter()
    placed: set[int] = set()
    for arc in np.lexsort((D, P)):  # each person's candidates, nearest first
        i, g = int(P[arc]), int(G[arc])
        person = problem.people[i]
        minutes, mode = rule.travel(float(D[arc]))
        single = person.grids is not None and len(person.grids) == 1
        if i in placed or (minutes > reach and not single):
            continue
        if left_min[g] > 0:
            left_min[g] -= 1
            role = "minimum"
        elif left_work[g] > 0:
            left_work[g] -= 1
            role = "work"
        else:
            continue
        placed.add(i)
        plan.placements.append(
            engine.Placement(person.person_id, grids[g].grid_id, role, minutes, float(D[arc]), mode)
        )
    reached = np.ones(len(grids), dtype=bool)
    engine._place_teams(
        plan, problem.teams, grids, gx, gy, left_min, left_work, reached, rule, reach
    )
    for short in np.flatnonzero(left_min > 0):
        plan.open_minimum[grids[short].grid_id] = engine.NOT_ENOUGH_PEOPLE
    for short in np.flatnonzero(left_work > 0):
        plan.open_work[grids[short].grid_id] = (int(left_work[short]), engine.NOT_ENOUGH_PEOPLE)
    plan.solve_s = time.perf_counter() - started
    return plan


def _activate(url: str, bundle: Any) -> tuple[dict[str, Any], float, callup.Problem]:
    eng = make_engine(url)
    upgrade(eng)
    factory = make_sessionmaker(eng)
    with transaction(factory) as session:
        import_district(session, bundle=bundle, actor="bench", clock=CLOCK)
        district_id = session.scalars(select(District.id)).one()
    actor = Actor(
        user_id=None,
        name="bench",
        bindings=(Binding(Role.DISTRICT_COMMANDER, district_id, district_id),),
    )
    # The same call-up the activation will make, for the greedy baseline, before it happens.
    with Session(eng) as session:
        problem = callup.district_problem(
            session, district_id=district_id, rule=RULES[MobilisationKind.EPIDEMIC], now=CLOCK.now()
        )
    started = time.perf_counter()
    outcome = switch.activate_in_process(
        factory,
        clock=CLOCK,
        display_tz="Asia/Shanghai",
        worker="bench",
        actor=actor,
        scope=AreaScope(district=True),
        kind="epidemic",
        title="bench",
    )
    seconds = time.perf_counter() - started
    eng.dispose()
    return outcome.mobilisation.figures, seconds, problem


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "grids",
        "people_called",
        "slots",
        "micro_grids_with_minimum",
        "slots_filled",
        "total_travel_minutes",
        "latest_arrival_minutes",
    )
    return {k: figures[k] for k in keys} | {"solve_s": figures["solve_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="xindu", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bundle = generate_district(PRESETS[args.preset], seed=args.seed)

    with tempfile.TemporaryDirectory(prefix="mobilize-bench-") as tmp:
        figures, sqlite_s, problem = _activate(f"sqlite:///{Path(tmp) / 'b.db'}", bundle)
    with scratch_postgis() as pg_url:
        pg_figures, postgis_s, _ = _activate(pg_url, bundle)

    reach = 180 - RULES[MobilisationKind.EPIDEMIC].setup_minutes
    greedy = _greedy(problem, reach)
    rule = RULES[MobilisationKind.EPIDEMIC]
    greedy_figures = switch.plan_figures(problem, greedy, rule)
    result = {
        "preset": args.preset,
        **_summary(figures),
        "activation_sqlite_s": round(sqlite_s, 2),
        "activation_postgis_s": round(postgis_s, 2),
        "same_plan_on_both_backends": _summary(pg_figures) | {"solve_s": 0}
        == _summary(figures) | {"solve_s": 0},
        "baseline_greedy": _summary(greedy_figures),
    }
    print(
        json.dumps(result, ensure_ascii=False)
        if args.json
        else json.dumps(result, ensure_ascii=False, indent=2)
    )


if __name__ == "__main__":
    main()
