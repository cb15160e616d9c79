"""Mobilisations, assignments, temporary party organisations, idempotent mutations, the
notification outbox; responders' availability and seniority, communities' secretaries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(column: str, table: str, target: str, ondelete: str, nullable: bool = False) -> sa.Column:
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{target}.id", ondelete=ondelete, name=f"fk_{table}_{column}_{target}"),
        nullable=nullable,
    )


def upgrade() -> None:
    with op.batch_alter_table("responder") as batch:
        batch.add_column(
            sa.Column("seniority", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.add_column(
            sa.Column("available", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("community") as batch:
        batch.add_column(sa.Column("secretary_code", sa.String(64), nullable=True))

    op.create_table(
        "mobilisation",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("district_id", "mobilisation", "district", "CASCADE"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("t0", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("activated_by", sa.String(128), nullable=False),
        sa.Column("stood_down_at", UTCDateTime(), nullable=True),
        sa.Column("stood_down_by", sa.String(128), nullable=True),
        sa.Column("final_state", sa.JSON(), nullable=True),
        sa.CheckConstraint("status IN ('active', 'stood_down')", name="ck_mobilisation_status"),
        sa.CheckConstraint(
            "kind IN ('epidemic', 'flood', 'earthquake', 'fire', 'other')",
            name="ck_mobilisation_kind",
        ),
    )
    op.create_table(
        "mobilisation_area",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "mobilisation_area", "mobilisation", "CASCADE"),
        _fk("community_id", "mobilisation_area", "community", "CASCADE"),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_mobilisation_area_mobilisation_id", "mobilisation_area", ["mobilisation_id"]
    )
    op.create_index(
        "uq_mobilisation_area_active_community",
        "mobilisation_area",
        ["community_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "assignment",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "assignment", "mobilisation", "CASCADE"),
        _fk("responder_id", "assignment", "responder", "CASCADE"),
        _fk("grid_id", "assignment", "grid", "CASCADE", nullable=True),
        _fk("community_id", "assignment", "community", "CASCADE"),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("travel_minutes", sa.Float(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("eta_minutes", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("checked_in_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint(
            "mobilisation_id", "responder_id", name="uq_assignment_mobilisation_id_responder_id"
        ),
    )
    op.create_index("ix_assignment_responder_id", "assignment", ["responder_id"])
    op.create_index("ix_assignment_mobilisation_grid", "assignment", ["mobilisation_id", "grid_id"])
    op.create_table(
        "party_organisation",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "party_organisation", "mobilisation", "CASCADE"),
        _fk("community_id", "party_organisation", "community", "CASCADE"),
        sa.Column("name", sa.String(200), nullable=False),
        _fk("leader_id", "party_organisation", "responder", "SET NULL", nullable=True),
        sa.Column("leader_basis", sa.String(32), nullable=False),
        sa.UniqueConstraint(
            "mobilisation_id",
            "community_id",
            name="uq_party_organisation_mobilisation_id_community_id",
        ),
    )
    op.create_table(
        "client_mutation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("client_mutation_id", sa.String(100), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "actor", "client_mutation_id", name="uq_client_mutation_actor_client_mutation_id"
        ),
    )
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("batch", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        _fk("mobilisation_id", "notification", "mobilisation", "CASCADE", nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_notification_status", "notification", ["status", "id"])
    op.create_index("ix_notification_batch", "notification", ["batch"])


def downgrade() -> None:
    for table in (
        "notification",
        "client_mutation",
        "party_organisation",
        "assignment",
        "mobilisation_area",
        "mobilisation",
    ):
        op.drop_table(table)
    with op.batch_alter_table("community") as batch:
        batch.drop_column("secretary_code")
    with op.batch_alter_table("responder") as batch:
        batch.drop_column("available")
        batch.drop_column("seniority")
