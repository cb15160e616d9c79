"""Activate a whole district beside the bare solve of the same graph; time the re-plans after
it; compare the engine with greedy nearest-first. Prints JSON.

    python bench/assign_bench.py --preset xindu --json            # issue 28's figures
    python bench/assign_bench.py --preset xindu --scale 2 --json  # twice xindu

Activation is end to end: the switch, then every assignment, task, grid state, event and
message committed. The bare tool is OR-Tools' min-cost flow loaded with the very arcs the
engine builds for this district (`engine.flow_network`) and solved, nothing else. Each repeat
runs the bare solve, a SQLite activation and a PostGIS activation one after another
(interleaved, each activation on a fresh copy of the imported district), so drift on this
machine falls on all three alike; min and median of each, and the ratios of the mins and of
the medians are the figures of record.

After each PostGIS activation, its assignments, tasks, grid states and events are written
again by the project's bulk writer into the live tables (indexes, checks, triggers) and by a
bare COPY of the same rows into a plain table, in one transaction rolled back
(`bulk_writes_postgis`: rows a second of each, and their ratio).

Targets (issue 28, 2-core reference machine, xindu): activation <= 3 s on SQLite and <= 4 s on
PostGIS, and <= 4x the bare solve; bulk writes >= 100k rows a second; re-plans after a decline
or a risk fix no slower than before; the same at twice xindu, growing linearly. PostGIS comes from
MOBILIZE_TEST_POSTGRES_URL (default trust auth on 127.0.0.1:5432): scratch databases are made
and dropped."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from ortools.graph.python import min_cost_flow
from scratch import scratch_postgis
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.bulk import insert_rows
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district
from mobilize.generate.presets import Preset
from mobilize.mobilisation import assignments, callup, engine, risk_fix, switch
from mobilize.mobilisation.area import AreaScope
from mobilize.mobilisation.rules import RULES
from mobilize.models import (
    Assignment,
    AssignmentStatus,
    District,
    Event,
    GridState,
    MobilisationKind,
    Role,
    Task,
    table_of,
)

CLOCK = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))
RULE = RULES[MobilisationKind.EPIDEMIC]
REACH = 180 - RULE.setup_minutes
REPLANS = 5  # declines, and risk fixes, timed after each activation


def scaled(preset: Preset, scale: int) -> Preset:
    """The preset `scale` times over: as many more streets, grids, people and square km."""
    if scale == 1:
        return preset
    counts = (
        "streets",
        "communities",
        "micro_grids",
        "units",
        "sunk_cadres",
        "micro_grid_members",
        "shock_teams",
        "volunteer_teams",
        "individual_volunteers",
    )
    return dataclasses.replace(
        preset,
        name=f"{preset.name}x{scale}",
        area_km2=preset.area_km2 * scale,
        **{c: getattr(preset, c) * scale for c in counts},
    )


def _greedy(problem: callup.Problem, reach: float) -> engine.Plan:
    """Nearest-first: each person, in turn, takes the nearest allowed grid with a slot left."""
    grids = problem.grids
    index = {g.grid_id: i for i, g in enumerate(grids)}
    gx = np.asarray([g.x for g in grids])
    gy = np.asarray([g.y for g in grids])
    left_min = np.asarray([g.open_minimum for g in grids])
    left_work = np.asarray([g.open_work for g in grids])
    P, G, D = engine._pairs(problem.people, index, gx, gy, RULE.candidates_per_person)
    plan = engine.Plan()
    started = time.perf_counter()
    placed: set[int] = set()
    for arc in np.lexsort((D, P)):  # each person's candidates, nearest first
        i, g = int(P[arc]), int(G[arc])
        person = problem.people[i]
        minutes, mode = RULE.travel(float(D[arc]))
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
        plan, problem.teams, grids, gx, gy, left_min, left_work, reached, RULE, reach
    )
    for short in np.flatnonzero(left_min > 0):
        plan.open_minimum[grids[short].grid_id] = engine.NOT_ENOUGH_PEOPLE
    for short in np.flatnonzero(left_work > 0):
        plan.open_work[grids[short].grid_id] = (int(left_work[short]), engine.NOT_ENOUGH_PEOPLE)
    plan.solve_s = time.perf_counter() - started
    return plan


def bare_solve(net: engine.FlowNetwork) -> float:
    """OR-Tools alone on the engine's arcs: loaded, supplied, solved. Seconds."""
    started = time.perf_counter()
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(net.tails, net.heads, net.capacities, net.unit_costs)
    flow.set_node_supply(0, net.n_people)
    flow.set_node_supply(net.sink, -net.n_people)
    if flow.solve_max_flow_with_min_cost() != flow.OPTIMAL:
        raise RuntimeError("the bare solve did not reach the optimum")
    return time.perf_counter() - started


def _import(url: str, bundle: Any) -> None:
    eng = make_engine(url)
    upgrade(eng)
    with transaction(make_sessionmaker(eng)) as session:
        import_district(session, bundle=bundle, actor="bench", clock=CLOCK)
    eng.dispose()


def _commander(session: Session) -> Actor:
    district_id = session.scalars(select(District.id)).one()
    return Actor(
        user_id=None,
        name="bench",
        bindings=(Binding(Role.DISTRICT_COMMANDER, district_id, district_id),),
    )


def _activate(url: str) -> tuple[dict[str, Any], float, int]:
    """Seconds from the switch to everything committed; the plan's figures; its id."""
    eng = make_engine(url)
    factory = make_sessionmaker(eng)
    with factory() as session:
        actor = _commander(session)
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
    return outcome.mobilisation.figures, seconds, outcome.mobilisation.id


def _timed_each(factory: Any, calls: list[Callable[[Session], Any]]) -> list[float]:
    """Each call in its own transaction, as the API makes it: seconds each."""
    times = []
    for call in calls:
        started = time.perf_counter()
        with transaction(factory) as session:
            call(session)
        times.append(time.perf_counter() - started)
    return times


def _replans(url: str, mobilisation_id: int) -> dict[str, list[float]]:
    """The first people assigned decline (each re-plans their community), then the last ones
    are sent to other grids (a commander's risk fix: a move, which re-plans both ends)."""
    eng = make_engine(url)
    factory = make_sessionmaker(eng)
    clock = ManualClock(CLOCK.now() + timedelta(minutes=5))
    with factory() as session:
        commander = _commander(session)
        district_id = commander.bindings[0].scope_id
        declining = session.execute(
            select(Assignment.id, Assignment.responder_id)
            .where(
                Assignment.mobilisation_id == mobilisation_id,
                Assignment.status == AssignmentStatus.ASSIGNED.value,
            )
            .order_by(Assignment.id)
            .limit(REPLANS)
        ).all()

    def phone(responder_id: int) -> Actor:
        return Actor(
            user_id=None,
            name=f"r{responder_id}",
            bindings=(Binding(Role.RESPONDER, responder_id, district_id),),
        )

    declines = _timed_each(
        factory,
        [
            partial(
                assignments.decline,
                actor=phone(a.responder_id),
                clock=clock,
                assignment_id=a.id,
                reason="bench",
            )
            for a in declining
        ],
    )
    with factory() as session:
        moving = session.execute(
            select(Assignment.responder_id, Assignment.grid_id)
            .where(
                Assignment.mobilisation_id == mobilisation_id,
                Assignment.status == AssignmentStatus.ASSIGNED.value,
            )
            .order_by(Assignment.id.desc())
            .limit(REPLANS)
        ).all()
        grids = session.scalars(
            select(GridState.grid_id)
            .where(
                GridState.mobilisation_id == mobilisation_id,
                GridState.grid_id.not_in([m.grid_id for m in moving]),
            )
            .order_by(GridState.grid_id)
            .limit(REPLANS)
        ).all()

    def move(session: Session, responder_id: int, grid_id: int) -> None:
        # Where they are now: an earlier move's re-plan may have moved them.
        now_at = session.scalars(
            select(Assignment.grid_id).where(
                Assignment.mobilisation_id == mobilisation_id,
                Assignment.responder_id == responder_id,
                Assignment.status == AssignmentStatus.ASSIGNED.value,
            )
        ).one()
        risk_fix.send_to_grid(
            session,
            actor=commander,
            clock=clock,
            mobilisation_id=mobilisation_id,
            grid_id=grid_id,
            responder_id=responder_id,
            from_grid_id=now_at,
        )

    fixes = _timed_each(
        factory,
        [
            partial(move, responder_id=m.responder_id, grid_id=g)
            for m, g in zip(moving, grids, strict=True)
        ],
    )
    eng.dispose()
    return {"decline": declines, "risk_fix": fixes}


BULK = (Assignment, Task, GridState, Event)  # what an activation writes by the ten thousand


def _bulk_writes(url: str, mobilisation_id: int) -> dict[str, tuple[int, float, float]]:
    """Each table's rows of the activation written again, through the project's bulk writer
    into the live table (its indexes, checks and triggers; under a copy of the mobilisation,
    the first one's people released so the second may hold them) and by a bare COPY of the
    same rows into a plain table with no index, in one transaction rolled back: rows and
    seconds of each."""
    eng = make_engine(url)
    found = {}
    with Session(eng) as session:
        dbapi = session.connection().connection.driver_connection
        assert dbapi is not None
        tables = [table_of(model) for model in BULK]
        written: dict[str, tuple[list[dict[str, Any]], bytes, str]] = {}
        for table in tables:
            keep = [c for c in table.columns if c is not table.autoincrement_column]
            query = select(*keep).where(table.c.mobilisation_id == mobilisation_id)
            rows = [dict(row) for row in session.execute(query).mappings()]
            names = ", ".join(f'"{c.name}"' for c in keep)
            exported = bytearray()
            with dbapi.cursor() as cursor:
                export = (
                    f"COPY (SELECT {names} FROM {table.name} WHERE mobilisation_id = %s) TO STDOUT"
                )
                with cursor.copy(export, (mobilisation_id,)) as out:
                    for chunk in out:
                        exported += chunk
                cursor.execute(
                    f'CREATE TEMP TABLE "plain_{table.name}" AS SELECT {names} FROM '
                    f'"{table.name}" WITH NO DATA'
                )
            written[table.name] = (rows, bytes(exported), names)
        second = session.execute(
            text(
                "INSERT INTO mobilisation SELECT (jsonb_populate_record(NULL::mobilisation, "
                "to_jsonb(m) || jsonb_build_object('id', m.id + 1000))).* FROM mobilisation m "
                "WHERE m.id = :m RETURNING id"
            ),
            {"m": mobilisation_id},
        ).scalar_one()
        session.execute(
            update(Assignment)
            .where(Assignment.mobilisation_id == mobilisation_id)
            .values(status=AssignmentStatus.RELEASED.value)
        )
        for table in tables:
            read, as_text, names = written[table.name]
            rows = [{**row, "mobilisation_id": second} for row in read]
            started = time.perf_counter()
            insert_rows(session, table, rows)
            ours = time.perf_counter() - started
            with dbapi.cursor() as cursor:
                started = time.perf_counter()
                with cursor.copy(f'COPY "plain_{table.name}" ({names}) FROM STDIN') as into:
                    into.write(as_text)
                bare = time.perf_counter() - started
            found[table.name] = (len(rows), ours, bare)
        session.rollback()
    eng.dispose()
    return found


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
    return {k: figures[k] for k in keys}


def _spread(times: list[float]) -> dict[str, float]:
    return {"min": min(times), "median": statistics.median(times)}


def _rounded(spread: dict[str, float], digits: int) -> dict[str, float]:
    return {k: round(v, digits) for k, v in spread.items()}


def _bulk_figures(runs: list[tuple[int, float, float]]) -> dict[str, Any]:
    """Rows a second, ours and the bare COPY's (best of the repeats), and their ratio."""
    rows = runs[0][0]
    ours = rows / min(r[1] for r in runs)
    bare = rows / min(r[2] for r in runs)
    return {
        "rows": rows,
        "rows_per_s": round(ours),
        "bare_copy_rows_per_s": round(bare),
        "ratio_to_bare": round(ours / bare, 3),
    }


def _ratio(spread: dict[str, float], bare: dict[str, float]) -> dict[str, float]:
    return {k: round(spread[k] / bare[k], 2) for k in ("min", "median")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="xindu", choices=sorted(PRESETS))
    parser.add_argument("--scale", type=int, default=1, help="the preset this many times over")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bundle = generate_district(scaled(PRESETS[args.preset], args.scale), seed=args.seed)

    times: dict[str, list[float]] = {"bare": [], "sqlite": [], "postgis": []}
    replans: dict[str, list[float]] = defaultdict(list)
    bulk: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="mobilize-bench-") as tmp, scratch_postgis() as pg:
        template = Path(tmp) / "district.db"
        _import(f"sqlite:///{template}", bundle)
        _import(pg, bundle)
        # The call-up the activation will make: the graph for the bare solve, and greedy's.
        eng = make_engine(f"sqlite:///{template}")
        with Session(eng) as session:
            district_id = session.scalars(select(District.id)).one()
            problem = callup.district_problem(
                session, district_id=district_id, rule=RULE, now=CLOCK.now()
            )
        eng.dispose()
        net = engine.flow_network(problem.grids, problem.people, RULE, REACH)
        plans = []
        for i in range(args.repeat):
            times["bare"].append(bare_solve(net))
            copy = Path(tmp) / f"run{i}.db"
            shutil.copyfile(template, copy)
            figures, seconds, mobilisation_id = _activate(f"sqlite:///{copy}")
            times["sqlite"].append(seconds)
            plans.append(_summary(figures))
            for kind, taken in _replans(f"sqlite:///{copy}", mobilisation_id).items():
                replans[f"{kind}_sqlite"] += taken
            copy.unlink()
            with scratch_postgis(template=pg) as run_pg:
                figures, seconds, mobilisation_id = _activate(run_pg)
                for table, (n, ours, bare_s) in _bulk_writes(run_pg, mobilisation_id).items():
                    bulk[table].append((n, ours, bare_s))
                for kind, taken in _replans(run_pg, mobilisation_id).items():
                    replans[f"{kind}_postgis"] += taken
            times["postgis"].append(seconds)
            plans.append(_summary(figures))

    greedy = switch.plan_figures(problem, _greedy(problem, REACH), RULE)
    bare, sqlite, postgis = (_spread(times[k]) for k in ("bare", "sqlite", "postgis"))
    result = {
        "preset": args.preset,
        "scale": args.scale,
        "repeats": args.repeat,
        **plans[0],
        "same_plan_every_run_and_backend": all(p == plans[0] for p in plans),
        "flow_arcs": len(net.tails),
        "bare_solve_s": _rounded(bare, 4),
        "activation_sqlite_s": _rounded(sqlite, 3),
        "activation_postgis_s": _rounded(postgis, 3),
        "ratio_sqlite_to_bare": _ratio(sqlite, bare),
        "ratio_postgis_to_bare": _ratio(postgis, bare),
        **{
            f"replan_{kind}_s": _rounded(_spread(taken), 3)
            for kind, taken in sorted(replans.items())
        },
        "bulk_writes_postgis": {table: _bulk_figures(runs) for table, runs in sorted(bulk.items())},
        "baseline_greedy": _summary(greedy),
    }
    print(
        json.dumps(result, ensure_ascii=False)
        if args.json
        else json.dumps(result, ensure_ascii=False, indent=2)
    )


if __name__ == "__main__":
    main()
