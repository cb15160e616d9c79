"""Prepared statements run on the driver's cursor answer as SQLAlchemy would: the same rows and
types, the same listeners, the same errors, in the session's transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    exc,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from mobilize.db import make_sessionmaker, prepared, transaction
from mobilize.db.one_of import one_of
from mobilize.db.prepared import Prepared
from mobilize.db.types import UTCDateTime
from tests.statements import statements

META = MetaData()
NOTES = Table(
    "prepared_notes",
    META,
    Column("id", Integer, primary_key=True),
    Column("code", String(16), nullable=False),
    Column("done", Boolean, nullable=False),
    Column("data", JSON, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    UniqueConstraint("code"),
)
T0 = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
N = NOTES.c

BY_IDS = Prepared(
    select(N.id, N.code, N.done, N.data, N.at)
    .where(one_of(N.id, "ids"), N.done == False)  # noqa: E712 (a literal of the statement's own)
    .order_by(N.id)
)
MARK_DONE = Prepared(update(NOTES).where(N.code == bindparam("code")).values(done=True))
MOVE = Prepared(
    update(NOTES).where(N.id == bindparam("id")).values(at=bindparam("at", type_=N.at.type))
)


def _insert(postgres: bool) -> Prepared:
    table_insert = postgresql.insert(NOTES) if postgres else sqlite.insert(NOTES)
    return Prepared(
        table_insert.values(
            {c: bindparam(c, type_=NOTES.c[c].type) for c in ("code", "done", "data", "at")}
        )
        .on_conflict_do_nothing()
        .returning(N.id, N.code)
    )


@pytest.fixture
def notes(engine: Engine) -> Iterator[Engine]:
    META.create_all(engine)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            session.execute(
                NOTES.insert(),
                # Ids left to the table (1 to 5 in a new table), so its sequence moves on.
                [
                    {"code": f"N{i}", "done": i == 3, "data": {"n": i}, "at": T0}
                    for i in range(1, 6)
                ],
            )
        yield engine
    finally:
        META.drop_all(engine)


def test_rows_come_back_as_sqlalchemy_gives_them(notes: Engine) -> None:
    with Session(notes) as session:
        found = prepared.rows(session, BY_IDS, {"ids": [1, 2, 3, 5, 99]})
        expected = session.execute(BY_IDS.statement, {"ids": [1, 2, 3, 5, 99]}).all()
    # Written out: 3 is done (the statement's own literal), 99 does not exist.
    assert [tuple(r) for r in found] == [
        (1, "N1", False, {"n": 1}, T0),
        (2, "N2", False, {"n": 2}, T0),
        (5, "N5", False, {"n": 5}, T0),
    ]
    assert [tuple(r) for r in found] == [tuple(r) for r in expected]
    first = found[0]
    assert (first.code, first[1], first._mapping["data"]) == ("N1", "N1", {"n": 1})
    assert first.at.tzinfo is not None  # times stay aware, as the column type makes them


def test_writes_land_in_the_sessions_transaction_and_roll_back_with_it(notes: Engine) -> None:
    factory = make_sessionmaker(notes)
    with factory() as session:
        assert prepared.run(session, MARK_DONE, {"code": "N1"}) == 1
        assert prepared.run(session, MARK_DONE, {"code": "nobody"}) == 0
        session.rollback()
    later = T0 + timedelta(minutes=5)
    with transaction(factory) as session:
        prepared.run_many(session, MOVE, [{"id": 1, "at": later}, {"id": 2, "at": later}])
    with Session(notes) as session:
        rows = session.execute(select(N.id, N.done, N.at).order_by(N.id)).all()
    assert [tuple(r) for r in rows] == [
        (1, False, later),
        (2, False, later),
        (3, True, T0),
        (4, False, T0),
        (5, False, T0),
    ]


def test_each_row_inserted_is_returned_in_order_and_those_present_are_skipped(
    notes: Engine,
) -> None:
    insert = _insert(notes.dialect.name == "postgresql")
    codes = ("A", "N2", "B", "A")
    new: list[dict[str, object]] = [{"code": c, "done": False, "data": {}, "at": T0} for c in codes]
    with transaction(make_sessionmaker(notes)) as session:
        returned = prepared.rows_each(session, insert, new)
    assert [r.code for r in returned] == ["A", "B"]  # N2 was there; the second A too
    with Session(notes) as session:
        ids = dict(session.execute(select(N.code, N.id).where(N.code.in_(["A", "B"]))).all())
    assert [(r.id, r.code) for r in returned] == [(ids["A"], "A"), (ids["B"], "B")]


def test_listeners_hear_it_and_driver_errors_arrive_as_sqlalchemys(notes: Engine) -> None:
    clash = Prepared(update(NOTES).where(N.id == bindparam("id")).values(code="N2"))
    with statements(notes) as said, Session(notes) as session:
        prepared.rows(session, BY_IDS, {"ids": [1]})
        with pytest.raises(exc.IntegrityError):
            prepared.run(session, clash, {"id": 1})
    assert [s.split()[0] for s in said if not s.startswith(("BEGIN", "SAVEPOINT"))] == [
        "SELECT",
        "UPDATE",
    ]


def test_a_statement_that_expands_a_list_is_refused(engine: Engine) -> None:
    expanding = Prepared(select(N.id).where(N.id.in_([1, 2])))
    with pytest.raises(ValueError, match="one_of"):
        expanding.compiled_for(engine.dialect)
