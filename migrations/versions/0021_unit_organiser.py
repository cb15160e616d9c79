"""The unit organiser (单位联络员): a role over one unit, keeping the list of its cadres who
sink in wartime.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "role IN ('district_commander', 'street_commander', 'community_secretary',"
    " 'responder', 'reviewer', 'admin')"
)
AFTER = (
    "role IN ('district_commander', 'street_commander', 'community_secretary',"
    " 'responder', 'reviewer', 'admin', 'unit_organiser')"
)


def upgrade() -> None:
    with op.batch_alter_table("role_binding") as batch:
        batch.drop_constraint("ck_role_binding_role", type_="check")
        batch.create_check_constraint("ck_role_binding_role", AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM role_binding WHERE role = 'unit_organiser'")
    with op.batch_alter_table("role_binding") as batch:
        batch.drop_constraint("ck_role_binding_role", type_="check")
        batch.create_check_constraint("ck_role_binding_role", BEFORE)
