"""`mobilize drill`: import (or reuse) a district, switch it to wartime on simulated time,
play the morning (`sim`), stand down, and report what happened, read back from the log.

Twice: once as the system plans (the optimiser), once as the manual practice plans (pairings
and home grids decide who goes where: `engine.solve_by_pairing`), so what the optimiser buys
is measured on the same people, the same seed and the same behaviour."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, normalize_url, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.drill.bound import lower_bound
from mobilize.drill.params import DrillParams
from mobilize.drill.sim import Simulation, district_commander
from mobilize.errors import DomainError
from mobilize.generate.history import write_history
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import LIVE, District, Event, Mobilisation
from mobilize.review import report
from mobilize.review.export import coverage_curves_png
from mobilize.settings import DISPLAY_TIMEZONE

# Simulated time starts here (a drill's figures are minutes since the switch; the date only
# names the day in the log).
DRILL_START = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
PLANNERS = {
    "optimal": ("系统优化调度", "optimiser"),
    "pairing": ("仅按结对与属地", "pairings and home grids only"),
    "manual": ("无系统的人工做法", "manual practice, no system"),
}
# Each run: the plan it starts from and how the streets follow it up. The baseline keeps the
# system (risk list and fixes) with the pairing plan, so it measures the plan; manual practice
# has neither, so it measures what the whole system buys.
RUNS = {
    "optimal": ("optimal", "system"),
    "pairing": ("pairing", "system"),
    "manual": ("pairing", "manual"),
}


class DrillRefused(DomainError):
    code = "DRILL_REFUSED"


@dataclass
class RunFigures:
    run: str  # a key of RUNS
    mobilisation_id: int
    figures: dict[str, Any]
    curve: list[tuple[float, float]]  # (minute since the switch, % of grids mobilised)


def ensure_district(factory: sessionmaker[Session], bundle: Bundle) -> int:
    """The district's id: already in this database (reused, refused if mobilised for real),
    or imported now with a year of peacetime behind it."""
    with factory() as session:
        found = session.scalar(select(District.id).where(District.code == bundle.district_code))
        if found is not None:
            refuse_if_live(session, found)
            return found
    with transaction(factory) as session:
        clock = ManualClock(DRILL_START)
        district_id = import_district(
            session, bundle=bundle, actor="drill", clock=clock
        ).district_id
        assert district_id is not None  # not a dry run
        # The year before the drill: who reported in, who is away today, what was done.
        write_history(session, district_id=district_id, clock=clock)
    return district_id


def refuse_if_live(session: Session, district_id: int) -> None:
    """A drill switches the whole district: never while it is mobilised for real."""
    live = session.scalars(
        select(Mobilisation)
        .where(
            Mobilisation.district_id == district_id,
            Mobilisation.status.in_([s.value for s in LIVE]),
        )
        .order_by(Mobilisation.id)
    ).first()
    if live is not None:
        raise DrillRefused(
            f"该区正在动员（{live.title}，编号 {live.id}），不能演练 The district is mobilised "
            f"now ({live.title!r}, id {live.id}, {live.status}); stand it down before a drill"
        )


def run_once(
    factory: sessionmaker[Session],
    *,
    district_id: int,
    run: str,
    params: DrillParams,
    seed: int,
    display_tz: str,
    progress: bool = False,
) -> RunFigures:
    started = time.perf_counter()
    chinese, english = PLANNERS[run]
    planner, practice = RUNS[run]

    def say(minute: float, calls: int) -> None:
        if progress:
            wall = time.perf_counter() - started
            print(
                f"演练（{chinese}）模拟第 {minute:.0f} 分钟，"
                f"服务调用 {calls:,} 次，用时 {wall:.0f} 秒 · "
                f"Drill ({english}): minute {minute:.0f} of {params.stand_down_min:.0f},"
                f" {calls:,} service calls, {wall:.0f} s",
                file=sys.stderr,
                flush=True,
            )

    clock = ManualClock(DRILL_START)
    outcome = switch.activate_in_process(
        factory,
        clock=clock,
        display_tz=display_tz,
        worker="drill",
        actor=district_commander(district_id),
        scope=AreaScope(district=True),
        kind="epidemic",
        title=f"演练 Drill: {' '.join(PLANNERS[run])}",
        planner=planner,
        auto_dispatch=practice == "system",
    )
    sim = Simulation(
        factory,
        clock=clock,
        mobilisation_id=outcome.mobilisation.id,
        params=params,
        seed=seed,
        display_tz=display_tz,
        progress=say,
        practice=practice,
    )
    say(0, 0)  # activated: the plan is made and the calls are out
    sim.run(outcome.batches)
    say(params.stand_down_min, sim.calls)
    with factory() as session:
        mobilisation = session.get(Mobilisation, outcome.mobilisation.id)
        assert mobilisation is not None
        return _figures(session, mobilisation, sim, run)


def _figures(session: Session, mobilisation: Mobilisation, sim: Simulation, run: str) -> RunFigures:
    """The headline figures: acknowledgement times and reassignments from the log, what the
    command centre saw at the deadline from the simulation (the replay must agree)."""
    built = report.build(session, mobilisation=mobilisation, now=sim.clock.now())
    called: dict[str, datetime] = {}
    answered: dict[str, datetime] = {}
    reassignments = 0
    for kind, subject, at, payload in session.execute(
        select(Event.kind, Event.subject_id, Event.occurred_at, Event.payload)
        .where(
            Event.mobilisation_id == mobilisation.id,
            Event.kind.in_(
                [
                    "assignment.created",
                    "assignment.acknowledged",
                    "assignment.moved",
                    "assignment.reassigned",
                ]
            ),
        )
        .order_by(Event.mseq)
    ):
        if kind == "assignment.created":
            called.setdefault(subject, at)
            reassignments += payload.get("cause") != "activation"
        elif kind == "assignment.acknowledged":
            answered.setdefault(subject, at)
        else:
            reassignments += 1
    ack = sorted((answered[r] - called[r]).total_seconds() / 60 for r in answered if r in called)
    events = session.scalar(select(func.count()).where(Event.mobilisation_id == mobilisation.id))
    live = sim.live
    everyone = built.mobilised == built.grids and built.grids > 0
    planner, practice = RUNS[run]
    figures = {
        "planner": planner,
        "practice": practice,
        "grids": live.grids,
        "people_called": built.people_called,
        "t_ack_p50_min": round(report.percentile(ack, 50), 1) if ack else None,
        "t_ack_p95_min": round(report.percentile(ack, 95), 1) if ack else None,
        "t_mobilised_95pct_min": next((m for m, _, pct in built.curve if pct >= 95.0), None),
        "t_mobilised_100pct_min": built.curve[-1][0] if everyone and built.curve else None,
        "coverage_at_deadline": live.mobilised_pct,
        "households_checked_at_deadline": live.households_checked,
        "households": live.households,
        "grids_missed": live.grids - live.mobilised,
        "reassignments": reassignments,
        "events": events,
        "service_calls": sim.calls,
        "refused_calls": dict(sorted(sim.refusals.items())),
        "messages": sim.channel.sent,
        "longest_call_delivery_s": round(sim.channel.latest_s, 1),
    }
    curve = [(0.0, 0.0)] + [(minute, pct) for minute, _, pct in built.curve]
    return RunFigures(run, mobilisation.id, figures, curve)


def _databases(url: str, n: int) -> list[str]:
    """The database for each run: with SQLite, the district's file and a copy of it per
    further run (SQLite has one writer); otherwise the one database, runs one after another."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or n == 1:
        return [url] * n
    main = Path(parsed.database)
    urls = [url]
    for i in range(1, n):
        copy = main.with_name(f"{main.stem}-run{i}{main.suffix}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(main, copy)
        urls.append(parsed.set(database=str(copy)).render_as_string(hide_password=False))
    return urls


def _run_on(
    url: str,
    district_id: int,
    run: str,
    params: DrillParams,
    seed: int,
    display_tz: str,
    progress: bool,
) -> RunFigures:
    engine = make_engine(url)
    try:
        return run_once(
            make_sessionmaker(engine),
            district_id=district_id,
            run=run,
            params=params,
            seed=seed,
            display_tz=display_tz,
            progress=progress,
        )
    finally:
        engine.dispose()


def _end_with(parent: int) -> None:
    """A run process's initializer: it ends when the drill that started it does, even when
    that one is killed (`kill` signals only it), instead of working on unseen."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="drill-parent-watch", daemon=True).start()


def drill(
    *,
    database_url: str,
    bundle: Bundle,
    seed: int,
    params: DrillParams,
    out: Path | None,
    display_tz: str = DISPLAY_TIMEZONE,
    baseline: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """Both runs (side by side on copies of a SQLite database, one after the other on
    PostgreSQL); the JSON (also `out/drill.json`) and the coverage curves (`out/coverage.png`).
    `progress`: each run says on stderr where it is, every half minute."""
    started = time.perf_counter()
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        district_id = ensure_district(make_sessionmaker(engine), bundle)
        with make_sessionmaker(engine)() as session:
            bound = lower_bound(session, district_id=district_id, params=params, now=DRILL_START)
    finally:
        engine.dispose()
    names = tuple(RUNS) if baseline else ("optimal",)
    urls = _databases(database_url, len(names))
    jobs = [
        (url, district_id, run, params, seed, display_tz, progress)
        for url, run in zip(urls, names, strict=True)
    ]
    if len(set(urls)) > 1:  # a copy each: the two runs go side by side, one per core
        with ProcessPoolExecutor(
            len(urls),
            mp_context=get_context("spawn"),
            initializer=_end_with,
            initargs=(os.getpid(),),
        ) as pool:
            runs = list(pool.map(_run_on, *zip(*jobs, strict=True)))
    else:
        runs = [_run_on(*job) for job in jobs]
    for run in runs:  # how far each run is from what no plan can beat
        done = run.figures["t_mobilised_100pct_min"]
        run.figures["over_lower_bound_min"] = (
            None if done is None else round(done - bound.minutes, 1)
        )
    result: dict[str, Any] = {
        "district": bundle.district_code,
        "seed": seed,
        **runs[0].figures,
        **bound.as_dict(),
    }
    if baseline:
        result["baseline"] = runs[1].figures
        result["manual_practice"] = runs[2].figures
    result["params"] = params.as_dict()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        coverage_curves_png(
            [(PLANNERS[r.run], r.curve) for r in runs],
            target_minutes=180.0,
            title=(f"演练 {bundle.district_code}", f"Drill {bundle.district_code}, seed {seed}"),
            path=out / "coverage.png",
        )
        (out / "drill.json").write_text(
            json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    return result
