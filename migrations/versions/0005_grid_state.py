"""Grid state per mobilisation: the three-hour promise, grid by grid.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fk(column: str, target: str, primary_key: bool = False) -> sa.Column:
    return sa.Column(
        column,
        sa.Integer(),
        sa.ForeignKey(f"{target}.id", ondelete="CASCADE", name=f"fk_grid_state_{column}_{target}"),
        nullable=False,
        primary_key=primary_key,
    )


def upgrade() -> None:
    op.create_table(
        "grid_state",
        _fk("mobilisation_id", "mobilisation", primary_key=True),
        _fk("grid_id", "grid", primary_key=True),
        _fk("community_id", "community"),
        _fk("street_id", "street"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assigned", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("on_site", sa.Integer(), nullable=False),
        sa.Column("households", sa.Integer(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("mobilised_at", UTCDateTime(), nullable=True),
        sa.Column("checked_at", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_grid_state_mobilisation_status", "grid_state", ["mobilisation_id", "status"]
    )


def downgrade() -> None:
    op.drop_table("grid_state")
