"""Bulk inserts (COPY text on PostgreSQL, executemany on SQLite) store what the ORM would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
import shapely
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.orm import Session

from mobilize.db.bulk import insert_rows
from mobilize.db.types import SRID, Geometry, UTCDateTime, points_ewkb_hex, points_wkb

META = MetaData()
ROWS = Table(
    "bulk_rows",
    META,
    Column("id", Integer, primary_key=True),
    Column("text", String(200)),
    Column("flag", Boolean),
    Column("at", UTCDateTime()),
    Column("payload", JSON),
    Column("geom", Geometry("POINT")),
)
DEFAULTS = Table(
    "bulk_defaults",
    META,
    Column("id", Integer, primary_key=True),
    Column("floors", Integer, nullable=False, default=1),
    Column("skills", JSON, nullable=False, default=list),
    Column("name", String(20), nullable=False),
)
AWKWARD = ["tab\there", "line\nbreak\r", "back\\slash \\N", "中文 名称", "", "plain"]


@pytest.fixture
def rows_table(engine: Engine) -> Iterator[Table]:
    META.create_all(engine)
    try:
        yield ROWS
    finally:
        META.drop_all(engine)


def test_awkward_text_json_times_and_points_come_back_as_written(
    engine: Engine, rows_table: Table
) -> None:
    beijing = timezone(timedelta(hours=8))
    written = [
        {
            "id": i + 1,
            "text": text,
            "flag": i % 2 == 0,
            "at": datetime(2026, 7, 1, 16, 30, i, 123456, tzinfo=beijing),
            "payload": {"名": text, "n": i, "list": [1, None, "a\\b"]},
            "geom": shapely.Point(104.16 + i / 100, 30.82),
        }
        for i, text in enumerate(AWKWARD)
    ]
    written.append(
        {"id": 99, "text": None, "flag": None, "at": None, "payload": None, "geom": None}
    )
    with Session(engine) as session, session.begin():
        insert_rows(session, rows_table, written)
    with Session(engine) as session:
        back = session.execute(select(rows_table).order_by(rows_table.c.id)).all()
    assert [r.text for r in back] == [*AWKWARD, None]
    assert [r.flag for r in back] == [True, False, True, False, True, False, None]
    assert back[0].at == datetime(2026, 7, 1, 8, 30, 0, 123456, tzinfo=UTC)
    assert back[5].at == datetime(2026, 7, 1, 8, 30, 5, 123456, tzinfo=UTC)
    assert back[2].payload == {"名": "back\\slash \\N", "n": 2, "list": [1, None, "a\\b"]}
    assert (back[3].geom.x, back[3].geom.y) == pytest.approx((104.19, 30.82))
    assert (back[6].at, back[6].payload, back[6].geom) == (None, None, None)


def test_a_naive_time_is_refused_and_nothing_is_written(engine: Engine, rows_table: Table) -> None:
    good = {"id": 1, "text": "a", "flag": True, "at": datetime.now(UTC), "payload": {}}
    naive = {**good, "id": 2, "at": datetime(2026, 7, 1, 8)}
    with (
        pytest.raises(ValueError, match="naive datetime"),
        Session(engine) as session,
        session.begin(),
    ):
        insert_rows(session, rows_table, [good, naive])
    with Session(engine) as session:
        assert session.execute(select(rows_table)).all() == []


def test_thousands_of_rows_land_whole_and_in_order_or_not_at_all(
    engine: Engine, rows_table: Table
) -> None:
    """PostgreSQL gets a big write in parts: every part lands, and a bad row in a late part,
    after earlier parts went to the server, leaves no row of any part behind."""
    start = datetime(2026, 7, 1, 8, tzinfo=UTC)
    many: list[dict[str, Any]] = [
        {
            "id": i,
            "text": f"第{i}行\tline {i}",
            "flag": i % 3 == 0,
            "at": start + timedelta(seconds=i),
        }
        for i in range(1, 2502)
    ]
    with Session(engine) as session, session.begin():
        insert_rows(session, rows_table, many)
    with Session(engine) as session:
        back = session.execute(select(rows_table).order_by(rows_table.c.id)).all()
    assert len(back) == 2501
    assert (back[0].id, back[0].text, back[0].flag) == (1, "第1行\tline 1", False)
    assert (back[1499].id, back[1499].text, back[1499].flag) == (1500, "第1500行\tline 1500", True)
    assert back[2500].at == datetime(2026, 7, 1, 8, 41, 41, tzinfo=UTC)
    assert [r.id for r in back] == list(range(1, 2502))

    later = [{**row, "id": i + 10_000} for i, row in enumerate(many, start=1)]
    later[-1] = {**later[-1], "at": datetime(2026, 7, 1, 8)}  # naive, in the last part
    with (
        pytest.raises(ValueError, match="naive datetime"),
        Session(engine) as session,
        session.begin(),
    ):
        insert_rows(session, rows_table, later)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(rows_table)) == 2501


def test_points_packed_by_hand_are_the_bytes_geos_writes() -> None:
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(103.5, 104.5, 500), rng.uniform(30.5, 31.0, 500)
    geos = shapely.points(lon, lat)
    assert points_wkb(lon, lat) == list(shapely.to_wkb(geos))
    assert points_ewkb_hex(lon, lat) == list(
        shapely.to_wkb(shapely.set_srid(geos, SRID), hex=True, include_srid=True)
    )
    assert points_wkb(lon[:0], lat[:0]) == []


def test_rows_leaving_columns_out_get_the_defaults_the_orm_would_give(
    engine: Engine, rows_table: Table
) -> None:
    rows = [
        {"id": 1, "name": "given", "floors": 7, "skills": ["医疗"]},
        {"id": 2, "name": "no floors"},
        {"id": 3, "name": "no skills", "floors": 3},
    ]
    with Session(engine) as session, session.begin():
        insert_rows(session, DEFAULTS, rows)
    with Session(engine) as session:
        back = session.execute(select(DEFAULTS).order_by(DEFAULTS.c.id)).all()
    assert [(r.id, r.floors, r.skills, r.name) for r in back] == [
        (1, 7, ["医疗"], "given"),
        (2, 1, [], "no floors"),
        (3, 3, [], "no skills"),
    ]
