"""Drop the event log's indexes on kind and on subject: no query reads the log by either (every
reader asks for one mobilisation's events, in sequence: `uq_event_mobilisation_mseq`), and
every event written kept both up to date, an activation's 31,287 at once (issue 28): a COPY of
those took 0.29-0.47 s with them, 0.16-0.26 s without (PostGIS, same runs).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_event_kind", table_name="event")
    op.drop_index("ix_event_subject", table_name="event")


def downgrade() -> None:
    op.create_index("ix_event_subject", "event", ["subject_type", "subject_id"])
    op.create_index("ix_event_kind", "event", ["kind"])
