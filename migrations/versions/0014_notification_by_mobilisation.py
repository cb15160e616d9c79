"""Notifications by mobilisation and status: deliveries take live mobilisations' messages
first, and a stand-down cancels its pending ones (status `cancelled`), both by this index.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_notification_mobilisation_status",
        "notification",
        ["mobilisation_id", "status", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_notification_mobilisation_status", table_name="notification")
