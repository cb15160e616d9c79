"""A person holds at most one slot anywhere: a partial unique index on the holding
assignments. Two activations solved at the same moment used to call the same cadres.

Holdings that break the rule already (from that race) are resolved first: the person keeps
the slot they were given first; the later ones are released, with the reason said, so their
history stays and nothing is deleted.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDING = "status IN ('assigned', 'acknowledged', 'en_route', 'on_site')"


def upgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE assignment SET status = 'released', "
            "reason = 'held a slot in another mobilisation (migration 0013)' "
            "WHERE status IN ('assigned', 'acknowledged', 'en_route', 'on_site') "
            "AND EXISTS (SELECT 1 FROM assignment AS earlier "
            "WHERE earlier.responder_id = assignment.responder_id AND earlier.id < assignment.id "
            "AND earlier.status IN ('assigned', 'acknowledged', 'en_route', 'on_site'))"
        )
    )
    op.create_index(
        "uq_assignment_holding_responder",
        "assignment",
        ["responder_id"],
        unique=True,
        sqlite_where=sa.text(HOLDING),
        postgresql_where=sa.text(HOLDING),
    )


def downgrade() -> None:
    op.drop_index("uq_assignment_holding_responder", table_name="assignment")
