"""The benchmarks behind the README's figures still run and still measure the same plan.

A benchmark that breaks silently leaves the README quoting figures nobody can reproduce; the
smallest preset keeps this cheap. They need PostGIS, as CI provides.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--preset", "tiny", "--json", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_assignment_benchmark_measures_one_plan_that_beats_nearest_first() -> None:
    figures = _run("assign_bench.py", "--repeat", "1")
    assert figures["same_plan_every_run_and_backend"] is True
    # tiny: 20 micro-grids, every one staffed by the engine and by greedy nearest-first
    assert figures["grids"] == 20
    assert figures["micro_grids_with_minimum"] == 20
    assert figures["total_travel_minutes"] < figures["baseline_greedy"]["total_travel_minutes"]
    for key in ("ratio_sqlite_to_bare", "ratio_postgis_to_bare"):
        assert figures[key]["min"] > 1, key
    for kind in ("decline", "risk_fix"):
        for backend in ("sqlite", "postgis"):
            assert figures[f"replan_{kind}_{backend}_s"]["min"] > 0


def test_the_import_benchmark_imports_on_both_backends() -> None:
    figures = _run("import_bench.py")
    for backend in ("sqlite", "postgis"):
        assert figures[backend]["households_rows_per_s"] > 0
        assert figures[f"import_{backend}_s"] > 0
    assert figures["update_households_changed"] == 10
