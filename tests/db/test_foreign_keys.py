"""Retire, don't delete, enforced by the database: nothing of a district or its history can be
deleted while anything points at it, and no foreign key deletes or blanks history on its own."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district

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
