"""Escalation and missed grids, the minute each grid was first mobilised, milestones done
once, notification retries per channel.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("grid_state") as batch:
        batch.add_column(sa.Column("escalated_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("missed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("mobilised_minute", sa.Integer(), nullable=True))
    with op.batch_alter_table("notification") as batch:
        batch.add_column(sa.Column("delivered", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.String(500), nullable=True))
    op.create_table(
        "milestone",
        sa.Column(
            "mobilisation_id",
            sa.Integer(),
            sa.ForeignKey(
                "mobilisation.id",
                ondelete="CASCADE",
                name="fk_milestone_mobilisation_id_mobilisation",
            ),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("done_at", UTCDateTime(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("mobilisation_id", "kind", name="pk_milestone"),
    )


def downgrade() -> None:
    op.drop_table("milestone")
    with op.batch_alter_table("notification") as batch:
        batch.drop_column("last_error")
        batch.drop_column("next_attempt_at")
        batch.drop_column("delivered")
    with op.batch_alter_table("grid_state") as batch:
        batch.drop_column("mobilised_minute")
        batch.drop_column("missed_at")
        batch.drop_column("escalated_at")
