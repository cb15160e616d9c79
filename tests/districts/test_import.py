"""Importing lands the whole district in one transaction, or nothing at all."""

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle, read_bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts import update
from mobilize.districts.importer import import_district
from mobilize.models import (
    Base,
    Event,
    Grid,
    GridLevel,
    Household,
    HouseholdTag,
    Pairing,
    Responder,
)


def _count(session: Session, model: type[Base]) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_import_writes_every_row_and_one_event(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        result = import_district(session, bundle=small_bundle, actor="tester", clock=clock)
    assert result.counts == small_bundle.counts()
    with Session(engine) as session:
        assert _count(session, Household) == len(small_bundle.households)
        assert _count(session, Grid) == len(small_bundle.grids)
        assert _count(session, Responder) == len(small_bundle.responders)
        assert _count(session, Pairing) == len(small_bundle.pairings)
        # Household counts are kept on both grid levels and agree with the households.
        micro_total = session.scalar(
            select(func.sum(Grid.household_count)).where(Grid.level == GridLevel.MICRO)
        )
        general_total = session.scalar(
            select(func.sum(Grid.household_count)).where(Grid.level == GridLevel.GENERAL)
        )
        assert micro_total == general_total == len(small_bundle.households)
        # Every household sits in the micro-grid the bundle placed it in, tags intact.
        first = session.scalars(select(Household).order_by(Household.code).limit(1)).one()
        grid = session.get(Grid, first.micro_grid_id)
        assert grid is not None and grid.code == small_bundle.households.micro_grid[0]
        assert first.tags == int(small_bundle.households.tags[0])
        assert grid.geom.covers(first.geom)
        events = session.scalars(select(Event)).all()
        assert [(e.kind, e.subject_id, e.actor) for e in events] == [
            ("district.imported", small_bundle.district_code, "tester")
        ]
        assert events[0].payload["counts"]["households"] == len(small_bundle.households)
        assert events[0].occurred_at == clock.now()


def test_the_planner_knows_the_district_as_soon_as_it_is_imported(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    """Without statistics PostgreSQL took the new responder table for one row and read
    every re-plan's candidates in a nested loop (0.9 s each on the street preset)."""
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="tester", clock=clock)
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            known = dict(
                session.execute(
                    text(
                        "SELECT relname, reltuples FROM pg_class "
                        "WHERE relname IN ('responder', 'household', 'grid')"
                    )
                ).all()
            )
        else:  # each row of a table's statistics begins with its number of rows
            known = {
                table: int(stat.split()[0])
                for table, stat in session.execute(text("SELECT tbl, stat FROM sqlite_stat1"))
                if table in ("responder", "household", "grid")
            }
    assert known == {
        "responder": len(small_bundle.responders),
        "household": len(small_bundle.households),
        "grid": len(small_bundle.grids),
    }


def test_a_failure_mid_import_leaves_nothing_behind(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    real = update.write_households

    def households_then_break(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        broken()

    monkeypatch.setattr(update, "write_households", households_then_break)
    schema = _household_schema(engine)
    with pytest.raises(RuntimeError), transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="a", clock=clock)
    with Session(engine) as session:
        assert _count(session, Household) == 0
        assert _count(session, Grid) == 0
        assert _count(session, Event) == 0
    # The keys and indexes a first import sets aside on PostgreSQL are back.
    assert _household_schema(engine) == schema


def _household_schema(engine: Engine) -> list[tuple[str, str]]:
    """The household table's foreign keys and indexes, as the database describes them."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            rows = session.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = 'household'::regclass UNION ALL "
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'household'"
                )
            ).all()
        else:
            rows = session.execute(
                text("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'household'")
            ).all()
    return sorted((str(name), str(definition)) for name, definition in rows)


def test_the_first_import_keeps_every_key_and_index_of_the_households(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    """On PostgreSQL the first district's households load with their foreign keys and plain
    indexes set aside, made again after: the table ends as the migrations made it, and the
    keys hold (a household pointing at no grid is refused)."""
    schema = _household_schema(engine)
    assert any("FOREIGN KEY (micro_grid_id)" in d for _, d in schema) or (
        engine.dialect.name != "postgresql"
    )
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="tester", clock=clock)
    assert _household_schema(engine) == schema
    with Session(engine) as session:
        assert _count(session, Household) == len(small_bundle.households)
        household = session.scalars(select(Household).limit(1)).one()
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            session.execute(
                text("UPDATE household SET micro_grid_id = -1 WHERE id = :id"),
                {"id": household.id},
            )
            session.flush()


def test_addresses_with_backslashes_tabs_and_line_breaks_are_stored_as_written(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    """PostgreSQL's households go in as COPY text, where these characters mean something."""
    awkward = ["新都大道\\8号\t2单元", "桂湖路\n3栋\r502室", "\\N", "  "]
    h = small_bundle.households
    original = h.address[: len(awkward)]
    h.address[: len(awkward)] = awkward
    try:
        with transaction(make_sessionmaker(engine)) as session:
            import_district(session, bundle=small_bundle, actor="tester", clock=clock)
    finally:
        h.address[: len(awkward)] = original
    with Session(engine) as session:
        stored = dict(
            session.execute(
                select(Household.code, Household.address).where(
                    Household.code.in_(h.code[: len(awkward)])
                )
            ).all()
        )
    assert [stored[code] for code in h.code[: len(awkward)]] == awkward


def test_tags_are_queryable_as_a_bitmask(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, tmp_path: Path
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="a", clock=clock)
    elderly = HouseholdTag.ELDERLY.bit
    expected = int((tiny_bundle.households.tags & elderly != 0).sum())
    with Session(engine) as session:
        found = session.execute(
            select(func.count()).select_from(Household).where(Household.tags.op("&")(elderly) != 0)
        ).scalar_one()
    assert found == expected > 0


def test_gcj02_bundle_is_stored_in_wgs84(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, tmp_path: Path
) -> None:
    from tests.bundles import write

    bundle = read_bundle(write(tiny_bundle, tmp_path, crs="gcj02"))
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=bundle, actor="a", clock=clock)
    with Session(engine) as session:
        stored = session.scalars(select(Household).where(Household.code == "H0000001")).one()
    assert abs(stored.geom.x - tiny_bundle.households.lon[0]) < 3e-7
    assert abs(stored.geom.y - tiny_bundle.households.lat[0]) < 3e-7


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_a_generated_real_boundary_imports_whole_in_chinese_map_coordinates(
    engine: Engine, clock: ManualClock, tmp_path: Path, crs: str
) -> None:
    """A real outline with a lake and an island, tessellated and written as a Chinese web map
    would give it: the conversion back leaves slivers on shared edges, which must not stop the
    import (households there go to the nearest micro-grid, with a warning)."""
    from mobilize.bundle import write_bundle
    from mobilize.generate import PRESETS, generate_district
    from tests.generate.test_generate import awkward_boundary

    preset = PRESETS["street"].with_counts(communities=12, micro_grids=600)
    generated = generate_district(preset, seed=3, boundary=awkward_boundary())
    bundle = read_bundle(write_bundle(generated, tmp_path / "b", crs=crs))
    assert len(bundle.households) == len(generated.households)
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=bundle, actor="a", clock=clock)
    with Session(engine) as session:
        assert _count(session, Household) == len(generated.households)
        micro = session.execute(
            select(func.count()).select_from(Grid).where(Grid.level == GridLevel.MICRO.value)
        ).scalar_one()
    assert micro == sum(1 for g in generated.grids if g.level == "micro")
