"""Generate a district, then validate and import it on SQLite and on PostGIS; print JSON.

    python bench/import_bench.py --preset xindu --json

Goals on the 2-core reference machine (issue 2): import of the xindu bundle <= 60 s on each
backend; placing 508,000 households into 10,161 micro-grids <= 5 s. Issue 25: an update that
changes 1 % of the households (their tags) takes no longer than the first import, on either
backend (`update_ratio_*`: update time over first import time). PostGIS comes from
MOBILIZE_TEST_POSTGRES_URL (default trust auth on 127.0.0.1:5432); a scratch database is
created and dropped."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from scratch import scratch_postgis

from geo import place_points
from mobilize.bundle import read_bundle, write_bundle
from mobilize.clock import SystemClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.db.migrate import upgrade
from mobilize.districts.importer import import_district
from mobilize.generate import PRESETS, generate_district


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def _import(url: str, bundle_dir: Path) -> dict[str, float]:
    """Validation (read) and the database write, each timed, as `mobilize import` runs them."""
    engine = make_engine(url)
    upgrade(engine)
    bundle, read_s = _timed(read_bundle, bundle_dir)

    def write() -> None:
        with transaction(make_sessionmaker(engine)) as session:
            import_district(session, bundle=bundle, actor="bench", clock=SystemClock())

    _, write_s = _timed(write)
    engine.dispose()
    return {
        "validate_s": round(read_s, 2),
        "write_s": round(write_s, 2),
        "import_s": round(read_s + write_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="xindu", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()

    preset = PRESETS[args.preset]
    bundle, generate_s = _timed(generate_district, preset, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="mobilize-bench-") as tmp:
        bundle_dir = Path(tmp) / "bundle"
        _, write_bundle_s = _timed(write_bundle, bundle, bundle_dir)

        micro = [g.geom for g in bundle.grids if g.level == "micro"]
        h = bundle.households
        _, place_s = _timed(place_points, h.lon, h.lat, micro)

        # The week after: one household in a hundred has other tags.
        h.tags[::100] ^= 1
        update_dir = Path(tmp) / "update"
        write_bundle(bundle, update_dir)

        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        sqlite = _import(sqlite_url, bundle_dir)
        sqlite_update = _import(sqlite_url, update_dir)

        with scratch_postgis() as pg_url:
            postgis = _import(pg_url, bundle_dir)
            postgis_update = _import(pg_url, update_dir)

    result = {
        "preset": args.preset,
        "seed": args.seed,
        "counts": bundle.counts(),
        "generate_s": round(generate_s + write_bundle_s, 2),
        "place_households_s": round(place_s, 3),
        "households_placed_per_s": round(len(h) / place_s),
        "sqlite": sqlite,
        "postgis": postgis,
        "import_sqlite_s": sqlite["import_s"],
        "import_postgis_s": postgis["import_s"],
        "update_households_changed": len(h.tags[::100]),
        "update_sqlite": sqlite_update,
        "update_postgis": postgis_update,
        "update_ratio_sqlite": round(sqlite_update["import_s"] / sqlite["import_s"], 2),
        "update_ratio_postgis": round(postgis_update["import_s"] / postgis["import_s"], 2),
    }
    print(
        json.dumps(result, ensure_ascii=False)
        if args.json
        else json.dumps(result, indent=2, ensure_ascii=False)
    )


if __name__ == "__main__":
    main()
