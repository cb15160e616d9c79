"""A per-mobilisation event sequence a tailing reader can follow, and replay snapshots.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mobilisation_fk(table: str) -> sa.Column:
    return sa.Column(
        "mobilisation_id",
        sa.Integer(),
        sa.ForeignKey(
            "mobilisation.id", ondelete="CASCADE", name=f"fk_{table}_mobilisation_id_mobilisation"
        ),
        primary_key=True,
    )


def upgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("mseq", sa.Integer(), nullable=True))
        batch.drop_index("ix_event_mobilisation_seq")
        batch.create_index("uq_event_mobilisation_mseq", ["mobilisation_id", "mseq"], unique=True)
    op.create_table(
        "event_counter",
        _mobilisation_fk("event_counter"),
        sa.Column("last_mseq", sa.Integer(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("mobilisation_id", name="pk_event_counter"),
    )
    op.create_table(
        "event_snapshot",
        _mobilisation_fk("event_snapshot"),
        sa.Column("mseq", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("mobilisation_id", "mseq", name="pk_event_snapshot"),
    )


def downgrade() -> None:
    op.drop_table("event_snapshot")
    op.drop_table("event_counter")
    with op.batch_alter_table("event") as batch:
        batch.drop_index("uq_event_mobilisation_mseq")
        batch.create_index("ix_event_mobilisation_seq", ["mobilisation_id", "seq"])
        batch.drop_column("mseq")
