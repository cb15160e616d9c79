"""A district changes without losing history: importing an update retires what left (marked
with when) instead of deleting it, so past mobilisations, events and hours keep every row
they point at.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RETIRABLE = ("street", "community", "grid", "household", "unit", "pairing", "team", "responder")


def upgrade() -> None:
    for table in RETIRABLE:
        op.add_column(table, sa.Column("retired_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    for table in RETIRABLE:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("retired_at")
