"""Buildings, units and doors (bundle format 2): a building in one micro-grid, households in
it by unit (单元) and door, each with an address to search, and a building's leader (楼栋长).
And who keeps a person, team or pairing (`origin`): a bundle, or someone through the API, so
an import does not retire what was added by hand and the bundle does not know.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import Geometry, UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEADS_TODAY = "leads_building_id IS NOT NULL AND retired_at IS NULL"
KEPT = ("responder", "team", "pairing")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "building",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("district_id", sa.Integer(), sa.ForeignKey("district.id"), nullable=False),
        sa.Column("micro_grid_id", sa.Integer(), sa.ForeignKey("grid.id"), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("floors", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("POINT"), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("district_id", "code"),
        sa.CheckConstraint("floors >= 1", name="floors"),
    )
    op.create_index("ix_building_micro_grid_id", "building", ["micro_grid_id"])
    if postgres:
        op.create_index("ix_building_geom", "building", ["geom"], postgresql_using="gist")
    for column in ("building_unit", "door"):
        op.add_column(
            "household", sa.Column(column, sa.String(16), nullable=False, server_default="")
        )
    op.add_column(
        "household", sa.Column("address", sa.String(300), nullable=False, server_default="")
    )
    _add_reference("household", "building_id")
    op.create_index("ix_household_building_id", "household", ["building_id"])
    _add_reference("responder", "leads_building_id")
    for table in KEPT:
        op.add_column(
            table, sa.Column("origin", sa.String(8), nullable=False, server_default="bundle")
        )
    op.create_index(
        "uq_responder_leads_building",
        "responder",
        ["leads_building_id"],
        unique=True,
        sqlite_where=sa.text(LEADS_TODAY),
        postgresql_where=sa.text(LEADS_TODAY),
    )


def downgrade() -> None:
    # SQLite's table rebuild drops a column's inline constraint with the column.
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("uq_responder_leads_building", table_name="responder")
    for table in KEPT:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("origin")
    with op.batch_alter_table("responder") as batch:
        if postgres:
            batch.drop_constraint("fk_responder_leads_building_id_building", type_="foreignkey")
        batch.drop_column("leads_building_id")
    with op.batch_alter_table("household") as batch:
        batch.drop_index("ix_household_building_id")
        if postgres:
            batch.drop_constraint("fk_household_building_id_building", type_="foreignkey")
        for column in ("address", "door", "building_unit", "building_id"):
            batch.drop_column(column)
    op.drop_table("building")


def _add_reference(table: str, column: str) -> None:
    """A nullable column referring to a building. SQLite adds it with its constraint in place:
    rebuilding a table that history refers to would have to delete it first."""
    name = f"fk_{table}_{column}_building"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN {column} INTEGER "
            f"CONSTRAINT {name} REFERENCES building (id)"
        )
        return
    op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.create_foreign_key(name, table, "building", [column], ["id"])
