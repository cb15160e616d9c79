"""Retire, don't delete, enforced by the database: nothing of a district or its history can be
deleted while anything points at it, and no foreign key deletes or blanks history on its own."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.db.bulk import insert_rows
from mobilize.districts.importer import import_district
from mobilize.models import (
    Assignment,
    Base,
    District,
    Grid,
    GridLevel,
    GridState,
    Responder,
    ResponderKind,
    Task,
    table_of,
)
from tests.wartime import activated

# A user's sign-in tokens and role bindings are not history: they go with the user.
GOES_WITH_ITS_OWNER = {("api_token", "user_id"), ("role_binding", "user_id")}


def test_no_foreign_key_of_the_district_or_its_history_has_a_delete_action(
    engine: Engine,
) -> None:
    found = []
    inspector = inspect(engine)
    for table in inspector.get_table_names():
        for key in inspector.get_foreign_keys(table):
            action = (key.get("options") or {}).get("ondelete")
            column = key["constrained_columns"][0]
            if action and (table, column) not in GOES_WITH_ITS_OWNER:
                found.append(f"{table}.{column} ON DELETE {action}")
    assert found == []
    # The inspector sees them at all: the two that keep their action are read back.
    tokens = [k for k in inspector.get_foreign_keys("api_token") if k["options"].get("ondelete")]
    assert [k["options"]["ondelete"].upper() for k in tokens] == ["CASCADE"]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM grid WHERE level = 'micro'",
        "DELETE FROM community",
        "DELETE FROM district",
    ],
)
def test_deleting_a_place_that_rows_point_at_is_refused(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, statement: str
) -> None:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with engine.connect() as conn:
        before = conn.scalar(text("SELECT count(*) FROM household"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM household")) == before > 0


MISSING = 987_654  # an id no row of the tiny district has
ACTIVATION_REFERENCES: dict[type[Base], tuple[str, ...]] = {
    Assignment: ("mobilisation_id", "responder_id", "grid_id", "community_id"),
    Task: ("mobilisation_id", "grid_id", "community_id"),
    GridState: ("mobilisation_id", "grid_id", "community_id", "street_id"),
}


# The bulk writer speaks to the driver itself: its refusals are the driver's.
REFUSED = (IntegrityError, sqlite3.IntegrityError, psycopg.errors.IntegrityError)


def _points_at_nothing(error: BaseException) -> bool:
    """The database's own word that a reference points at nothing (not another constraint)."""
    orig = getattr(error, "orig", error)
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return bool(sqlstate == "23503")
    return "FOREIGN KEY constraint failed" in str(orig)


def _fresh_rows(session: Session, model: type[Base], mobilisation_id: int) -> list[dict[str, Any]]:
    """Two copies of one of the activation's rows that the table takes as they are: their
    unique keys moved to people, or grids, the activation did not write (new people; general
    grids, whose states an activation does not keep)."""
    table = table_of(model)
    row = dict(
        session.execute(select(table).where(table.c.mobilisation_id == mobilisation_id).limit(1))
        .mappings()
        .one()
    )
    row.pop("id", None)
    if model is Assignment:
        district_id = session.scalars(select(District.id)).one()
        people = [
            Responder(
                district_id=district_id,
                code=f"NEW{n}",
                name=f"新人{n}",
                phone=f"1390000000{n}",
                kind=ResponderKind.VOLUNTEER,
            )
            for n in (1, 2)
        ]
        session.add_all(people)
        session.flush()
        return [{**row, "responder_id": person.id} for person in people]
    if model is GridState:
        general = session.scalars(
            select(Grid.id).where(Grid.level == GridLevel.GENERAL.value).order_by(Grid.id).limit(2)
        ).all()
        return [{**row, "grid_id": grid_id} for grid_id in general]
    return [row, dict(row)]


@pytest.mark.parametrize("model", list(ACTIVATION_REFERENCES), ids=lambda m: m.__tablename__)
def test_an_activation_row_pointing_at_nothing_is_refused_whole(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, model: type[Base]
) -> None:
    """The tables an activation fills by the ten thousand keep their references on both
    backends (on PostgreSQL checked per statement, migration 0022): a bulk write with one
    row pointing at nothing lands no row, a change of reference to nothing is refused, and
    changes that leave the references alone go through."""
    mobilisation = activated(engine, tiny_bundle, clock)
    factory = make_sessionmaker(engine)
    table = table_of(model)
    with transaction(factory) as session:
        good, other = _fresh_rows(session, model, mobilisation.id)
    with Session(engine) as session:
        before = session.scalar(select(func.count()).select_from(table))
        first = dict(session.execute(select(table).limit(1)).mappings().one())
    key = [table.c[c.name] == first[c.name] for c in table.primary_key.columns]

    with factory() as session:  # the good rows go in: the bad ones fail for their reference
        insert_rows(session, table, [good, other])
        session.rollback()
    for column in ACTIVATION_REFERENCES[model]:
        with pytest.raises(REFUSED) as refused, transaction(factory) as session:
            insert_rows(session, table, [good, {**other, column: MISSING}])
        assert _points_at_nothing(refused.value), (column, refused.value)
        with pytest.raises(IntegrityError) as refused, transaction(factory) as session:
            session.execute(update(table).where(*key).values({column: MISSING}))
        assert _points_at_nothing(refused.value), (column, refused.value)
    with transaction(factory) as session:
        session.execute(update(table).where(*key).values(updated_at=clock.now()))
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(table)) == before
        kept = dict(session.execute(select(table).where(*key)).mappings().one())
    assert {c: kept[c] for c in ACTIVATION_REFERENCES[model]} == {
        c: first[c] for c in ACTIVATION_REFERENCES[model]
    }
    if engine.dialect.name == "postgresql":  # the message names the table, column and value
        assert f"{table.name}.{ACTIVATION_REFERENCES[model][-1]} = {MISSING}" in str(refused.value)


@pytest.mark.parametrize(
    "statement",
    ["DELETE FROM responder WHERE id = :id", "UPDATE responder SET id = id + 1000 WHERE id = :id"],
)
def test_a_person_only_an_assignment_points_at_can_be_neither_deleted_nor_renumbered(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, statement: str
) -> None:
    """Nothing but the new assignment points at the new person: the reference alone keeps
    them (on PostgreSQL, where it is checked per statement, no such row can go at all)."""
    mobilisation = activated(engine, tiny_bundle, clock)
    with transaction(make_sessionmaker(engine)) as session:
        row, _ = _fresh_rows(session, Assignment, mobilisation.id)
        insert_rows(session, table_of(Assignment), [row])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text(statement), {"id": row["responder_id"]})
    with engine.connect() as conn:
        kept = conn.execute(
            text("SELECT code FROM responder WHERE id = :id"), {"id": row["responder_id"]}
        ).scalar_one()
    assert kept == "NEW1"
