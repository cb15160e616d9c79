"""The district: grid levels, households, forces and the event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import Geometry, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SPATIAL = ("district", "street", "community", "grid", "household", "unit", "responder")
_VALIDATED = ("district", "street", "community", "grid")


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _district_fk() -> sa.Column:
    return sa.Column(
        "district_id",
        sa.Integer(),
        sa.ForeignKey("district.id", ondelete="CASCADE", name="fk_{table}_district_id_district"),
        nullable=False,
    )


def _fk(column: str, table: str, target: str, ondelete: str, nullable: bool) -> sa.Column:
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}"),
        nullable=nullable,
    )


def _table(name: str, *columns: sa.Column | sa.Constraint) -> None:
    for item in columns:
        if isinstance(item, sa.Column):
            for fk in item.foreign_keys:
                fk.name = fk.name.replace("{table}", name) if fk.name else fk.name
    op.create_table(name, *columns)


def upgrade() -> None:
    if _postgres():
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")

    _table(
        "district",
        _id(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source_crs", sa.String(16), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON"), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("code", name="uq_district_code"),
    )
    _table(
        "street",
        _id(),
        _district_fk(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON"), nullable=False),
        sa.UniqueConstraint("district_id", "code", name="uq_street_district_id_code"),
    )
    _table(
        "community",
        _id(),
        _district_fk(),
        _fk("street_id", "community", "street", "CASCADE", nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON"), nullable=False),
        sa.UniqueConstraint("district_id", "code", name="uq_community_district_id_code"),
    )
    op.create_index("ix_community_street_id", "community", ["street_id"])
    _table(
        "grid",
        _id(),
        _district_fk(),
        _fk("community_id", "grid", "community", "CASCADE", nullable=False),
        _fk("parent_id", "grid", "grid", "CASCADE", nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("household_count", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("MULTIPOLYGON"), nullable=False),
        sa.Column("centre", Geometry("POINT"), nullable=False),
        sa.UniqueConstraint("district_id", "code", name="uq_grid_district_id_code"),
        sa.CheckConstraint("level IN ('general', 'micro')", name="ck_grid_level"),
        sa.CheckConstraint(
            "(level = 'general' AND parent_id IS NULL)"
            " OR (level = 'micro' AND parent_id IS NOT NULL)",
            name="ck_grid_parent_by_level",
        ),
        sa.CheckConstraint("household_count >= 0", name="ck_grid_household_count"),
    )
    op.create_index("ix_grid_parent_id", "grid", ["parent_id"])
    op.create_index("ix_grid_community_level", "grid", ["community_id", "level"])
    _table(
        "household",
        _id(),
        _district_fk(),
        _fk("micro_grid_id", "household", "grid", "CASCADE", nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Integer(), nullable=False),
        sa.Column("geom", Geometry("POINT"), nullable=False),
        sa.UniqueConstraint("district_id", "code", name="uq_household_district_id_code"),
        sa.CheckConstraint("size >= 0", name="ck_household_size"),
    )
    op.create_index("ix_household_micro_grid_id", "household", ["micro_grid_id"])
    _table(
        "unit",
        _id(),
        _district_fk(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("geom", Geometry("POINT"), nullable=False),
        sa.UniqueConstraint("district_id", "code", name="uq_unit_district_id_code"),
    )
    _table(
        "pairing",
        _id(),
        _district_fk(),
        _fk("unit_id", "pairing", "unit", "CASCADE", nullable=False),
        _fk("community_id", "pairing", "community", "CASCADE", nullable=False),
        sa.Column("wartime_quota", sa.Integer(), nullable=False),
        sa.UniqueConstraint("unit_id", "community_id", name="uq_pairing_unit_id_community_id"),
        sa.CheckConstraint("wartime_quota >= 0", name="ck_pairing_wartime_quota"),
    )
    op.create_index("ix_pairing_community_id", "pairing", ["community_id"])
    _table(
        "team",
        _id(),
        _district_fk(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _fk("unit_id", "team", "unit", "SET NULL", nullable=True),
        sa.UniqueConstraint("district_id", "code", name="uq_team_district_id_code"),
        sa.CheckConstraint("kind IN ('shock_team', 'volunteer_service_team')", name="ck_team_kind"),
    )
    _table(
        "responder",
        _id(),
        _district_fk(),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _fk("unit_id", "responder", "unit", "SET NULL", nullable=True),
        _fk("team_id", "responder", "team", "SET NULL", nullable=True),
        _fk("home_grid_id", "responder", "grid", "SET NULL", nullable=True),
        sa.Column("geom", Geometry("POINT"), nullable=True),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.UniqueConstraint("district_id", "code", name="uq_responder_district_id_code"),
        sa.CheckConstraint(
            "kind IN ('grid_worker', 'micro_grid_member', 'sunk_cadre', 'shock_team_member',"
            " 'volunteer')",
            name="ck_responder_kind",
        ),
    )
    for column in ("phone", "unit_id", "team_id", "home_grid_id"):
        op.create_index(f"ix_responder_{column}", "responder", [column])
    _table(
        "event",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject_type", sa.String(32), nullable=False),
        sa.Column("subject_id", sa.String(64), nullable=False),
        sa.Column("mobilisation_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_event_kind", "event", ["kind"])
    op.create_index("ix_event_mobilisation_seq", "event", ["mobilisation_id", "seq"])
    op.create_index("ix_event_subject", "event", ["subject_type", "subject_id"])

    if _postgres():
        for table in _SPATIAL:
            op.create_index(f"ix_{table}_geom", table, ["geom"], postgresql_using="gist")
        for table in _VALIDATED:
            op.create_check_constraint(f"ck_{table}_geom_valid", table, "ST_IsValid(geom)")


def downgrade() -> None:
    for table in (
        "event",
        "responder",
        "team",
        "pairing",
        "unit",
        "household",
        "grid",
        "community",
        "street",
        "district",
    ):
        op.drop_table(table)
