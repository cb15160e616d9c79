"""Leave (请假) and commitments (承诺/践诺). A person's availability is their leave: whoever
was marked unavailable before becomes a leave from now with no end, and the old flag goes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "leave",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("responder_id", sa.Integer(), sa.ForeignKey("responder.id"), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("ends_at IS NULL OR ends_at >= starts_at", name="period"),
    )
    op.create_index("ix_leave_responder_period", "leave", ["responder_id", "starts_at", "ends_at"])
    op.create_table(
        "commitment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("responder_id", sa.Integer(), sa.ForeignKey("responder.id"), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("promise", sa.String(500), nullable=False),
        sa.Column("fulfilment", sa.String(1000), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("fulfilled_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_commitment_responder_year", "commitment", ["responder_id", "year"])
    now = datetime.now(UTC)
    leave = sa.table(
        "leave",
        sa.column("responder_id", sa.Integer()),
        sa.column("starts_at", UTCDateTime()),
        sa.column("reason", sa.String()),
        sa.column("note", sa.String()),
        sa.column("recorded_by", sa.String()),
        sa.column("recorded_at", UTCDateTime()),
    )
    away = op.get_bind().execute(sa.text("SELECT id FROM responder WHERE NOT available")).all()
    if away:
        op.bulk_insert(
            leave,
            [
                {
                    "responder_id": row.id,
                    "starts_at": now,
                    "reason": "other",
                    "note": "marked unavailable before leave was kept (migration 0018)",
                    "recorded_by": "migration:0018",
                    "recorded_at": now,
                }
                for row in away
            ],
        )
    op.drop_column("responder", "available")


def downgrade() -> None:
    op.add_column(
        "responder",
        sa.Column("available", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.execute(
        "UPDATE responder SET available = false WHERE id IN (SELECT responder_id FROM leave "
        "WHERE ends_at IS NULL)"
    )
    op.drop_table("commitment")
    op.drop_table("leave")
