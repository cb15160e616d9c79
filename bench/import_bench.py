"""Generate a district, then validate and import it on SQLite and on PostGIS, beside the bare
tools on the same data; print JSON.

    python bench/import_bench.py --preset xindu --json

In the same run: households placed into micro-grids against a bare shapely STRtree query of
the same points and polygons; households written on PostGIS (rows a second, from the import's
own progress) against a bare `COPY` of the same rows, as text with hex EWKB, into a plain table
without indexes. Ratios are the figures of record: this machine's speed drifts.

Targets: issue 28, import of xindu <= 10 s on each backend, households written on PostGIS
>= 100k rows/s. Issue 25: an update that changes 1 % of the households (their tags) takes no
longer than the first import, on either backend (`update_ratio_*`: update time over first
import time). PostGIS comes from MOBILIZE_TEST_POSTGRES_URL (default trust auth on
127.0.0.1:5432); a scratch database is created and dropped."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import shapely
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


class StepClock:
    """A progress display that only notes when each step began and last advanced."""

    def __init__(self) -> None:
        self.began: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.current = ""

    def step(self, name: str, total: int | None = None) -> None:
        self.current = name
        self.began[name] = self.last[name] = time.perf_counter()

    def advance(self, amount: int = 1) -> None:
        self.last[self.current] = time.perf_counter()

    def seconds(self, name: str) -> float | None:
        return self.last[name] - self.began[name] if name in self.began else None


def _import(url: str, bundle_dir: Path) -> dict[str, Any]:
    """Validation (read) and the database write, each timed, as `mobilize import` runs them;
    and the households' own write, from the first to the last batch."""
    engine = make_engine(url)
    upgrade(engine)
    bundle, read_s = _timed(read_bundle, bundle_dir)
    steps = StepClock()

    def write() -> None:
        with transaction(make_sessionmaker(engine)) as session:
            import_district(
                session, bundle=bundle, actor="bench", clock=SystemClock(), progress=steps
            )

    _, write_s = _timed(write)
    engine.dispose()
    households_s = steps.seconds("writing households")
    return {
        "validate_s": round(read_s, 2),
        "write_s": round(write_s, 2),
        "import_s": round(read_s + write_s, 2),
        "households_rows_per_s": round(len(bundle.households) / households_s)
        if households_s
        else None,
    }


def _bare_copy(url: str, bundle: Any) -> float:
    """Rows a second of a bare COPY of the households (the import's columns, text, hex EWKB)
    into a plain, logged table without indexes: the formatting done before the clock
    starts."""
    h = bundle.households
    ewkb = shapely.to_wkb(
        shapely.set_srid(shapely.points(h.lon, h.lat), 4326), hex=True, include_srid=True
    )
    lines = "".join(
        f"1\t{i % 10_000 + 1}\t{h.code[i]}\t{int(h.size[i])}\t{int(h.tags[i])}\t\\N"
        f"\t{h.building_unit[i]}\t{h.door[i]}\t{h.address[i]}\t{ewkb[i]}\n"
        for i in range(len(h))
    ).encode()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE bare_household (district_id int, micro_grid_id int, code text, "
            "size int, tags int, building_id int, building_unit text, door text, address text, "
            "geom geometry(Point, 4326))"
        )
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        started = time.perf_counter()
        with dbapi.cursor() as cursor, cursor.copy("COPY bare_household FROM STDIN") as copy:
            copy.write(lines)
        seconds = time.perf_counter() - started
        conn.exec_driver_sql("DROP TABLE bare_household")
    engine.dispose()
    return len(h) / seconds


def _bare_strtree(xs: Any, ys: Any, polygons: list[Any]) -> float:
    """Seconds of a bare STRtree query of the same points in the same polygons."""
    started = time.perf_counter()
    shapely.STRtree(polygons).query(shapely.points(xs, ys), predicate="intersects")
    return time.perf_counter() - started


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
        bare_place_s = _bare_strtree(h.lon, h.lat, micro)

        # The week after: one household in a hundred has other tags.
        h.tags[::100] ^= 1
        update_dir = Path(tmp) / "update"
        write_bundle(bundle, update_dir)

        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        sqlite = _import(sqlite_url, bundle_dir)
        sqlite_update = _import(sqlite_url, update_dir)

        with scratch_postgis() as pg_url:
            postgis = _import(pg_url, bundle_dir)
            bare_copy = _bare_copy(pg_url, bundle)  # after the import: PostGIS is there
            postgis_update = _import(pg_url, update_dir)

    result = {
        "preset": args.preset,
        "seed": args.seed,
        "counts": bundle.counts(),
        "generate_s": round(generate_s + write_bundle_s, 2),
        "place_households_s": round(place_s, 3),
        "households_placed_per_s": round(len(h) / place_s),
        "bare_strtree_s": round(bare_place_s, 3),
        "place_ratio_to_bare": round(place_s / bare_place_s, 2),
        "bare_copy_households_rows_per_s": round(bare_copy),
        "postgis_households_ratio_to_bare_copy": round(
            postgis["households_rows_per_s"] / bare_copy, 3
        ),
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
