"""`one_of`: a list of any length as one parameter, the same rows on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, insert, select

from mobilize.db.one_of import one_of

META = MetaData()
THINGS = Table(
    "one_of_things",
    META,
    Column("id", Integer, primary_key=True),
    Column("code", String(16), nullable=False),
)
ROWS = 40_000  # more than SQLite takes as parameters of one statement (32,766)


@pytest.fixture
def things(engine: Engine) -> Iterator[Table]:
    META.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(THINGS), [{"id": i, "code": f"C{i:05d}"} for i in range(1, ROWS + 1)]
            )
        yield THINGS
    finally:
        META.drop_all(engine)


def test_a_list_longer_than_any_in_list_finds_exactly_its_rows(
    engine: Engine, things: Table
) -> None:
    wanted = [*range(2, ROWS + 1, 2), ROWS + 7]  # 20,000 even ids and one not there
    with engine.connect() as conn:
        found = conn.execute(select(things.c.id).where(one_of(things.c.id, wanted))).scalars()
        assert sorted(found) == list(range(2, ROWS + 1, 2))
        count = conn.execute(select(things.c.id).where(one_of(things.c.id, range(1, 30_001)))).all()
        assert len(count) == 30_000


def test_codes_an_empty_list_and_the_opposite(engine: Engine, things: Table) -> None:
    with engine.connect() as conn:
        codes = ["C00003", "C00001", "nobody", "C00002"]
        found = conn.execute(select(things.c.id).where(one_of(things.c.code, codes))).scalars()
        assert sorted(found) == [1, 2, 3]
        assert conn.execute(select(things.c.id).where(one_of(things.c.id, []))).all() == []
        others = conn.execute(
            select(things.c.id).where(~one_of(things.c.id, range(4, ROWS + 1)))
        ).scalars()
        assert sorted(others) == [1, 2, 3]


def test_a_statement_built_once_takes_each_list_when_it_runs(engine: Engine, things: Table) -> None:
    # Built once with a named parameter, as the hot paths build theirs; run with lists of
    # different lengths, and the same parameter twice in one statement.
    stmt = select(things.c.id).where(one_of(things.c.id, "ids"), one_of(things.c.id, "ids"))
    with engine.connect() as conn:
        assert conn.execute(stmt, {"ids": [5]}).scalars().all() == [5]
        assert sorted(conn.execute(stmt, {"ids": [9, 7, 8]}).scalars()) == [7, 8, 9]
        assert conn.execute(stmt, {"ids": []}).all() == []
