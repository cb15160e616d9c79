"""The drill: deterministic, read back from the log like a real day, never over a real one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from mobilize.bundle import Bundle
from mobilize.cli.main import app
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts import edit
from mobilize.districts.importer import import_district
from mobilize.drill.bound import LowerBound, lower_bound
from mobilize.drill.params import DrillParams
from mobilize.drill.run import DRILL_START, DrillRefused, drill
from mobilize.drill.sim import Simulation
from mobilize.errors import InvalidInput
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import Event, Grid, HouseholdRecord, Mobilisation, Responder, ResponderKind
from mobilize.review.replay import state_at
from tests.wartime import activated, district_commander, write

# Fewer rounds of the beat and the command centres: the same drill, quicker to run.
QUICK = ["tick_min=5", "commander_every_min=20", "stand_down_min=200"]


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_a_tiny_drill_gives_the_same_json_twice(tmp_path: Path, tiny_bundle: Bundle) -> None:
    """Twice from a fresh database, then once more reusing the district: the same figures,
    and a different seed gives different ones."""
    params = DrillParams.defaults().with_overrides(QUICK)

    def once(db: str, seed: int = 3) -> dict[str, Any]:
        url = f"sqlite:///{tmp_path / db}"
        result = drill(database_url=url, bundle=tiny_bundle, seed=seed, params=params, out=None)
        assert isinstance(result.pop("wall_s"), float)
        return result

    first = once("a.db")
    assert once("b.db") == first
    assert once("a.db") == first  # the district reused, its first drill stood down
    # Another district imported first shifts every id in the database: the same drill.
    other = replace(tiny_bundle, district_code="OTHER", district_name="另一区 Another district")
    shared = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(shared)
    with transaction(make_sessionmaker(shared)) as session:
        import_district(session, bundle=other, actor="test", clock=ManualClock(DRILL_START))
    shared.dispose()
    assert once("d.db") == first
    assert once("c.db", seed=4) != first
    for run in (first, first["baseline"]):
        assert isinstance(run, dict)
        assert run["grids"] == 20 and run["events"] > 0
        assert 0 < run["t_ack_p50_min"] <= run["t_ack_p95_min"]
        assert run["coverage_at_deadline"] == 100.0 and run["grids_missed"] == 0
        assert 0 < run["households_checked_at_deadline"] <= run["households"]
        # No plan beats physics: each run is at or above the lower bound.
        assert run["over_lower_bound_min"] >= 0
    assert first["planner"] == "optimal" and first["baseline"]["planner"] == "pairing"
    # Manual practice: the pairing plan without the system (roll calls, no risk list).
    manual = first["manual_practice"]
    assert (manual["planner"], manual["practice"]) == ("pairing", "manual")
    assert manual["grids"] == 20 and manual["events"] > 0
    assert manual["coverage_at_deadline"] <= first["baseline"]["coverage_at_deadline"]
    assert 0 < first["lower_bound_p95_min"] <= first["lower_bound_min"]


def test_the_lower_bound_moves_with_people_not_with_the_plan(
    engine: Engine, tiny_bundle: Bundle
) -> None:
    """Slower answers raise it by exactly that much; faster legs lower it; it names a grid."""
    with transaction(make_sessionmaker(engine)) as session:
        district_id = import_district(
            session, bundle=tiny_bundle, actor="t", clock=ManualClock(DRILL_START)
        ).district_id
    assert district_id is not None
    base = DrillParams.defaults()

    def bound(params: DrillParams) -> LowerBound:
        with Session(engine) as session:
            return lower_bound(session, district_id=district_id, params=params, now=DRILL_START)

    first = bound(base)
    later = bound(base.with_overrides(["ack_median_min=15"]))
    assert later.minutes == pytest.approx(first.minutes + 10.0)
    assert later.grid == first.grid
    faster = bound(base.with_overrides(["walk_kmh=9", "cycle_kmh=24", "drive_kmh=50"]))
    travel = first.minutes - base.ack_median_min - base.prepare_median_min
    assert faster.minutes == pytest.approx(first.minutes - travel / 2)
    assert first.grid in {g.code for g in tiny_bundle.grids if g.level == "micro"}


def test_a_drills_replay_agrees_with_its_live_figures(engine: Engine, tiny_bundle: Bundle) -> None:
    """What the command centre saw at the deadline is what `stateAt` folds from the log at
    that instant; the drill's writes all went through the services (the records match the
    events, one each)."""
    params = DrillParams.defaults().with_overrides([*QUICK, "ack_median_min=400"])
    result = drill(
        database_url=_url(engine), bundle=tiny_bundle, seed=5, params=params, out=None,
        baseline=False,
    )  # fmt: skip
    with Session(engine) as session:
        mobilisation = session.scalars(select(Mobilisation)).one()
        assert mobilisation.status == "stood_down"
        assert StaffingRule.from_dict(mobilisation.rule).planner == "optimal"
        state = state_at(session, mobilisation, mobilisation.deadline)
        then = state.coverage(mobilisation)
        events = session.execute(
            select(func.count()).where(Event.mobilisation_id == mobilisation.id)
        ).scalar_one()
        checked = session.execute(
            select(func.count()).where(Event.kind == "household.checked")
        ).scalar_one()
        records = session.execute(
            select(func.count()).select_from(HouseholdRecord).where(HouseholdRecord.kind == "check")
        ).scalar_one()
    assert then.mobilised_pct == result["coverage_at_deadline"]
    assert then.households_checked == result["households_checked_at_deadline"]
    assert (
        then.grids - then.by_status["mobilised"] - then.by_status["checked"]
        == result["grids_missed"]
    )
    assert result["grids_missed"] > 0  # slow answers: grids missed, something to replay
    assert events == result["events"]
    assert checked == records > result["households_checked_at_deadline"]


def test_the_drill_refuses_a_district_mobilised_for_real(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    activated(engine, tiny_bundle, clock)
    with Session(engine) as session:
        before = session.execute(select(func.count()).select_from(Event)).scalar_one()
    with pytest.raises(DrillRefused, match="stand it down before a drill"):
        drill(
            database_url=_url(engine), bundle=tiny_bundle, seed=1,
            params=DrillParams.defaults(), out=None,
        )  # fmt: skip
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Mobilisation)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(Event)).scalar_one() == before


def test_drill_command_writes_its_json_and_curve_and_names_a_bad_parameter(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    args = ["drill", "--preset", "tiny", "--out", str(out), "--json", "--no-baseline"]
    answer = runner.invoke(app, [*args, *(a for s in QUICK for a in ("--set", s))])
    assert answer.exit_code == 0, answer.output
    printed = json.loads(answer.stdout)
    assert json.loads((out / "drill.json").read_text(encoding="utf-8")) == printed
    # Where it is, on stderr (a district's drill runs for minutes): activated, then stood down.
    said = answer.stderr.splitlines()
    end = f"of {printed['params']['stand_down_min']:.0f}"
    assert said[0].startswith("演练（系统优化调度）模拟第 0 分钟") and f"minute 0 {end}" in said[0]
    assert f"{printed['service_calls']:,} service calls" in said[-1], said
    assert (out / "coverage.png").stat().st_size > 10_000
    assert "baseline" not in printed and printed["params"]["tick_min"] == 5
    bad = runner.invoke(app, [*args, "--set", "ack_median_min=soon"])
    assert bad.exit_code == 2 and "ack_median_min" in bad.output and "soon" in bad.output
    unknown = runner.invoke(app, [*args, "--set", "speed=3"])
    assert unknown.exit_code == 2 and "expected name=value" in unknown.output


def test_parameters_are_checked_and_documented() -> None:
    params = DrillParams.defaults()
    text = (Path(__file__).parents[2] / "mobilize/drill/defaults.toml").read_text("utf-8")
    for name in params.as_dict():
        assert f"\n{name} = " in text  # each default sits in the one documented file
    with pytest.raises(InvalidInput, match="decline_share"):
        params.with_overrides(["decline_share=1.5"])
    with pytest.raises(InvalidInput, match="exceed 1"):
        params.with_overrides(["decline_share=0.6", "never_answer_share=0.5"])


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent (now init) has to reap it


def test_killing_a_drill_ends_its_run_processes(tmp_path: Path) -> None:
    """`kill` signals only the drill's own process: its two run processes must not work on
    unseen (they would load the machine for as long as a district's drill lasts)."""
    drill_command = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mobilize.cli.main import run; run()",
            *("drill", "--preset", "tiny", "--out", str(tmp_path), "--json"),
            *("--set", "stand_down_min=100000"),  # hours of work for each run
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs: list[int] = []
    try:
        assert drill_command.stderr is not None
        started = 0
        while started < 2:  # both runs activated and simulating
            line = drill_command.stderr.readline()
            assert line, "the drill ended before its runs started"
            started += "模拟第 0 分钟" in line
        runs += _children(drill_command.pid)
        assert len([pid for pid in runs if _running(pid)]) >= 2, runs
        drill_command.send_signal(signal.SIGTERM)
        drill_command.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_running(pid) for pid in runs) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in runs if _running(pid)], "run processes outlived the drill"
    finally:
        drill_command.kill()
        for pid in runs:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_drill_counts_the_time_each_call_takes_to_reach_its_phone(
    tmp_path: Path, tiny_bundle: Bundle
) -> None:
    """Calls go out one after another at the measured rate: the last of a dispatch reaches
    its phone that many seconds late, and people answer counting from then. Slowed to one
    call every two minutes, the tiny district's calls take over an hour to go out, so the
    median answer (5 minutes after a call arrives, by the drill's people) comes far later."""
    params = DrillParams.defaults().with_overrides([*QUICK, "messages_per_second=0.0083"])
    slowed = drill(
        database_url=f"sqlite:///{tmp_path / 'slow.db'}", bundle=tiny_bundle, seed=3,
        params=params, out=None, baseline=False,
    )  # fmt: skip
    # The activation's calls, counted in the drill's own log (standbys and fixes come later,
    # each in a dispatch of its own): the last of them waited for all the others before it.
    with sqlite3.connect(tmp_path / "slow.db") as db:
        called = sum(
            json.loads(payload).get("cause") == "activation"
            for (payload,) in db.execute(
                "SELECT payload FROM event WHERE kind = 'assignment.created'"
            )
        )
    assert called > 10
    assert slowed["longest_call_delivery_s"] >= called / 0.0083 * 0.9
    # half the calls arrive after about called/2 × 2 minutes; answers come after that
    assert slowed["t_ack_p50_min"] > called / 2 * 2 * 0.5


def test_a_roll_call_sends_each_empty_grid_the_nearest_free_person_of_the_street(
    engine: Engine, tiny_bundle: Bundle
) -> None:
    """Manual practice: no risk list; at a roll call a street finds the grids nobody stands
    in and sends to each the nearest of its own people not called yet."""
    clock = ManualClock(DRILL_START)
    m = activated(engine, tiny_bundle, clock)
    sim = Simulation(
        make_sessionmaker(engine), clock=clock, mobilisation_id=m.id,
        params=DrillParams.defaults(), seed=1, display_tz="Asia/Shanghai", practice="manual",
    )  # fmt: skip
    with Session(engine) as session:
        micro = session.execute(
            select(Grid.id, Grid.centre).where(Grid.level == "micro").order_by(Grid.id)
        ).all()
    (near_grid, near_centre), (far_grid, far_centre) = micro[0], micro[-1]
    # Two people enrol after the call-up: one lives at the first grid, one at the last.
    for code, phone, centre in (
        ("R-NEAR", "13900000001", near_centre),
        ("R-FAR", "13900000002", far_centre),
    ):
        person = edit.PersonValues(
            name=code, phone=phone, kind=ResponderKind.VOLUNTEER, home_grid_id=far_grid,
            lon=centre.x, lat=centre.y,
        )  # fmt: skip
        write(engine, edit.add_responder, actor=district_commander(engine), clock=clock,
              district_id=m.district_id, code=code, values=person)  # fmt: skip
    with Session(engine) as session:
        ids = dict(session.execute(select(Responder.code, Responder.id)).all())
        empty, sends = sim._roll_call(session, sim.streets[0])
    # Nobody is on site yet: every grid is empty; the first grid gets who lives there.
    assert near_grid in empty
    sent = dict(sends)
    assert sent[near_grid] == ids["R-NEAR"]
    assert sorted(sent.values()) == sorted([ids["R-NEAR"], ids["R-FAR"]])  # each once
