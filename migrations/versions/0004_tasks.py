"""Tasks, household records, problem reports and volunteer service records.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(
    column: str, table: str, target: str, nullable: bool = False, primary_key: bool = False
) -> sa.Column:
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{target}.id", ondelete="CASCADE", name=f"fk_{table}_{column}_{target}"),
        nullable=nullable,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "task", "mobilisation"),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        _fk("grid_id", "task", "grid", nullable=True),
        _fk("community_id", "task", "community"),
        sa.Column("target_tags", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("priority BETWEEN 1 AND 5", name="ck_task_priority"),
    )
    op.create_index("ix_task_mobilisation_grid", "task", ["mobilisation_id", "grid_id"])
    op.create_index("ix_task_mobilisation_community", "task", ["mobilisation_id", "community_id"])
    op.create_table(
        "task_assignee",
        _fk("task_id", "task_assignee", "task", primary_key=True),
        _fk("responder_id", "task_assignee", "responder", primary_key=True),
    )
    op.create_index("ix_task_assignee_responder_id", "task_assignee", ["responder_id"])
    op.create_table(
        "household_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "household_record", "mobilisation"),
        _fk("task_id", "household_record", "task"),
        _fk("household_id", "household_record", "household"),
        _fk("responder_id", "household_record", "responder"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "mobilisation_id",
            "household_id",
            "kind",
            name="uq_household_record_mobilisation_id_household_id_kind",
        ),
    )
    op.create_index("ix_household_record_task_id", "household_record", ["task_id"])
    op.create_table(
        "problem_report",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "problem_report", "mobilisation"),
        _fk("responder_id", "problem_report", "responder"),
        _fk("grid_id", "problem_report", "grid", nullable=True),
        _fk("community_id", "problem_report", "community"),
        sa.Column("text", sa.String(1000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_problem_report_mobilisation_id", "problem_report", ["mobilisation_id"])
    op.create_table(
        "service_record",
        sa.Column("id", sa.Integer(), primary_key=True),
        _fk("mobilisation_id", "service_record", "mobilisation"),
        _fk("responder_id", "service_record", "responder"),
        sa.Column("checked_in_at", UTCDateTime(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.UniqueConstraint(
            "mobilisation_id", "responder_id", name="uq_service_record_mobilisation_id_responder_id"
        ),
    )
    op.create_index("ix_service_record_responder_id", "service_record", ["responder_id"])


def downgrade() -> None:
    for table in ("service_record", "problem_report", "household_record", "task_assignee", "task"):
        op.drop_table(table)
