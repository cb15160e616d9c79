"""No history is reachable only through a row that can disappear: every foreign key of the
district and its history loses its ON DELETE action (CASCADE, SET NULL), so the database itself
refuses to delete a grid, a responder or a mobilisation that anything points at. Places and
people leave by being retired (0015). Only a user's tokens and role bindings still go with
the user.

SQLite keeps a foreign key's action only in the table's CREATE text, which does not change how
rows are stored, so that text is edited in place (the documented procedure for changing a
constraint: https://sqlite.org/lang_altertable.html#otheralter) instead of rebuilding every
table with its indexes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, referred table) -> the ON DELETE action it had before this revision.
_SET_NULL = "SET NULL"
_CASCADE = "CASCADE"
FOREIGN_KEYS: dict[tuple[str, str, str], str] = {
    ("street", "district_id", "district"): _CASCADE,
    ("community", "district_id", "district"): _CASCADE,
    ("community", "street_id", "street"): _CASCADE,
    ("grid", "district_id", "district"): _CASCADE,
    ("grid", "community_id", "community"): _CASCADE,
    ("grid", "parent_id", "grid"): _CASCADE,
    ("household", "district_id", "district"): _CASCADE,
    ("household", "micro_grid_id", "grid"): _CASCADE,
    ("unit", "district_id", "district"): _CASCADE,
    ("pairing", "district_id", "district"): _CASCADE,
    ("pairing", "unit_id", "unit"): _CASCADE,
    ("pairing", "community_id", "community"): _CASCADE,
    ("team", "district_id", "district"): _CASCADE,
    ("team", "unit_id", "unit"): _SET_NULL,
    ("responder", "district_id", "district"): _CASCADE,
    ("responder", "unit_id", "unit"): _SET_NULL,
    ("responder", "team_id", "team"): _SET_NULL,
    ("responder", "home_grid_id", "grid"): _SET_NULL,
    ("mobilisation", "district_id", "district"): _CASCADE,
    ("mobilisation_area", "mobilisation_id", "mobilisation"): _CASCADE,
    ("mobilisation_area", "community_id", "community"): _CASCADE,
    ("assignment", "mobilisation_id", "mobilisation"): _CASCADE,
    ("assignment", "responder_id", "responder"): _CASCADE,
    ("assignment", "grid_id", "grid"): _CASCADE,
    ("assignment", "community_id", "community"): _CASCADE,
    ("party_organisation", "mobilisation_id", "mobilisation"): _CASCADE,
    ("party_organisation", "community_id", "community"): _CASCADE,
    ("party_organisation", "leader_id", "responder"): _SET_NULL,
    ("notification", "mobilisation_id", "mobilisation"): _CASCADE,
    ("task", "mobilisation_id", "mobilisation"): _CASCADE,
    ("task", "grid_id", "grid"): _CASCADE,
    ("task", "community_id", "community"): _CASCADE,
    ("task_assignee", "task_id", "task"): _CASCADE,
    ("task_assignee", "responder_id", "responder"): _CASCADE,
    ("household_record", "mobilisation_id", "mobilisation"): _CASCADE,
    ("household_record", "task_id", "task"): _CASCADE,
    ("household_record", "household_id", "household"): _CASCADE,
    ("household_record", "responder_id", "responder"): _CASCADE,
    ("problem_report", "mobilisation_id", "mobilisation"): _CASCADE,
    ("problem_report", "responder_id", "responder"): _CASCADE,
    ("problem_report", "grid_id", "grid"): _CASCADE,
    ("problem_report", "community_id", "community"): _CASCADE,
    ("service_record", "mobilisation_id", "mobilisation"): _CASCADE,
    ("service_record", "responder_id", "responder"): _CASCADE,
    ("grid_state", "mobilisation_id", "mobilisation"): _CASCADE,
    ("grid_state", "grid_id", "grid"): _CASCADE,
    ("grid_state", "community_id", "community"): _CASCADE,
    ("grid_state", "street_id", "street"): _CASCADE,
    ("milestone", "mobilisation_id", "mobilisation"): _CASCADE,
    ("event_counter", "mobilisation_id", "mobilisation"): _CASCADE,
    ("event_snapshot", "mobilisation_id", "mobilisation"): _CASCADE,
}


ActionOf = Callable[[tuple[str, str, str]], str | None]


def upgrade() -> None:
    _set_actions(lambda key: None)


def downgrade() -> None:
    _set_actions(FOREIGN_KEYS.__getitem__)


def _set_actions(action_of: ActionOf) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rewrite_sqlite(action_of)
        return
    for (table, column, referred), _ in FOREIGN_KEYS.items():
        name = f"fk_{table}_{column}_{referred}"
        action = action_of((table, column, referred))
        op.drop_constraint(name, table, type_="foreignkey")
        op.create_foreign_key(name, table, referred, [column], ["id"], ondelete=action)


def _rewrite_sqlite(action_of: ActionOf) -> None:
    bind = op.get_bind()
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    tables = sorted({table for table, _, _ in FOREIGN_KEYS})
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    for table in tables:
        sql = bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
            {"name": table},
        ).scalar_one()
        for (owner, column, referred), before in FOREIGN_KEYS.items():
            if owner != table:
                continue
            key = f"FOREIGN KEY({column}) REFERENCES {referred} (id)"
            action = action_of((owner, column, referred))
            for old in (f"{key} ON DELETE {before}", key):
                if old in sql:
                    sql = sql.replace(old, key + (f" ON DELETE {action}" if action else ""), 1)
                    break
            else:
                raise RuntimeError(f"{table}: no foreign key {key} to rewrite")
        bind.execute(
            sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
            {"sql": sql, "name": table},
        )
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
