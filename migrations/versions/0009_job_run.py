"""Background jobs with a run id (an activation's solve runs as a Celery task), and the
`activating` status a mobilisation has until its solve has committed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _status_check(old: str, new: str, condition: str) -> None:
    """Replace mobilisation's status check (revision 0003's names went through the naming
    convention twice: `ck_mobilisation_ck_mobilisation_...`)."""
    with op.batch_alter_table("mobilisation") as batch:
        batch.drop_constraint(op.f(old), type_="check")
        batch.create_check_constraint(op.f(new), condition)


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("worker", sa.String(128), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_job_run_status")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_run"),
        sa.UniqueConstraint("kind", "subject", name="uq_job_run_kind_subject"),
    )
    op.create_index("ix_job_run_status", "job_run", ["status"])
    _status_check(
        "ck_mobilisation_ck_mobilisation_status",
        "ck_mobilisation_status",
        "status IN ('activating', 'active', 'stood_down')",
    )


def downgrade() -> None:
    _status_check(
        "ck_mobilisation_status",
        "ck_mobilisation_ck_mobilisation_status",
        "status IN ('active', 'stood_down')",
    )
    op.drop_index("ix_job_run_status", "job_run")
    op.drop_table("job_run")
