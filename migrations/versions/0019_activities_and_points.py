"""Peacetime activities (patrols, 扫楼 rounds, drills, community events) with who came, one
service ledger for them and for mobilisations, the district's points rule, and redemptions.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(name: str, table: str, nullable: bool = False) -> "sa.Column[int]":
    return sa.Column(name, sa.Integer(), sa.ForeignKey(f"{table}.id"), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("district_id", "district"),
        _fk("community_id", "community"),
        _fk("grid_id", "grid", nullable=True),
        _fk("building_id", "building", nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("series", sa.String(36), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("checked_by", sa.String(128), nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name="period"),
    )
    op.create_index("ix_activity_community_starts", "activity", ["community_id", "starts_at"])
    op.create_index("ix_activity_series", "activity", ["series"])
    op.create_table(
        "activity_person",
        sa.Column("activity_id", sa.Integer(), sa.ForeignKey("activity.id"), primary_key=True),
        sa.Column("responder_id", sa.Integer(), sa.ForeignKey("responder.id"), primary_key=True),
        sa.Column("how", sa.String(16), nullable=False),
        sa.Column("joined_at", UTCDateTime(), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.CheckConstraint("hours IS NULL OR hours >= 0", name="hours"),
    )
    op.create_index("ix_activity_person_responder_id", "activity_person", ["responder_id"])
    op.create_table(
        "points_rule",
        sa.Column("district_id", sa.Integer(), sa.ForeignKey("district.id"), primary_key=True),
        sa.Column("points_per_hour", sa.Float(), nullable=False),
        sa.Column("points_per_activity", sa.Float(), nullable=False),
        sa.Column("yuan_per_point", sa.Float(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "redemption",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("responder_id", "responder"),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("what", sa.String(200), nullable=False),
        sa.Column("redeemed_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
    )
    op.create_index("ix_redemption_responder_id", "redemption", ["responder_id"])
    # One ledger: a record comes from a mobilisation or from an activity (nothing refers to
    # service_record, so SQLite may rebuild it).
    with op.batch_alter_table("service_record", recreate="auto") as batch:
        batch.alter_column("mobilisation_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("activity_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_service_record_activity_id_activity", "activity", ["activity_id"], ["id"]
        )
        batch.create_unique_constraint(
            "uq_service_record_activity_id_responder_id", ["activity_id", "responder_id"]
        )
        batch.create_check_constraint(
            "ck_service_record_one_source", "(mobilisation_id IS NULL) <> (activity_id IS NULL)"
        )


def downgrade() -> None:
    with op.batch_alter_table("service_record", recreate="auto") as batch:
        batch.drop_constraint("ck_service_record_one_source", type_="check")
        batch.drop_constraint("uq_service_record_activity_id_responder_id", type_="unique")
        batch.drop_constraint("fk_service_record_activity_id_activity", type_="foreignkey")
        batch.drop_column("activity_id")
        batch.alter_column("mobilisation_id", existing_type=sa.Integer(), nullable=False)
    for table in ("redemption", "points_rule", "activity_person", "activity"):
        op.drop_table(table)
