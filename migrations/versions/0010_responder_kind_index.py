"""An index on a district's responders by kind and team: every re-plan looks for the
district's free volunteers, which otherwise meant reading every responder of the district.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_responder_district_kind", "responder", ["district_id", "kind", "team_id"])


def downgrade() -> None:
    op.drop_index("ix_responder_district_kind", table_name="responder")
