"""Who may see what, take two: every admin is bound to a district (no binding reads every
district by default), sign-in codes belong to the client that asked for them, devices that
signed in keep a way in, and credential changes are written down for every process to watch.
Tasks are indexed by status, for the pending ones a new holder takes over.

An admin bound to no place becomes bound to every district that exists, so nobody loses what
they could do; from now on `mobilize user add --role admin` names its district.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    districts = [row[0] for row in bind.execute(sa.text("SELECT code FROM district"))]
    unbound = list(
        bind.execute(
            sa.text(
                "SELECT id, user_id FROM role_binding WHERE role = 'admin' AND scope_code IS NULL"
            )
        )
    )
    for _, user_id in unbound:
        for code in districts:
            bind.execute(
                sa.text(
                    "INSERT INTO role_binding (user_id, role, district_code, scope_code) "
                    "VALUES (:u, 'admin', :d, :d)"
                ),
                {"u": user_id, "d": code},
            )
    bind.execute(sa.text("DELETE FROM role_binding WHERE role = 'admin' AND scope_code IS NULL"))
    with op.batch_alter_table("role_binding") as batch:
        batch.drop_constraint("ck_role_binding_scope_by_role", type_="check")
        batch.create_check_constraint("ck_role_binding_scope_given", "scope_code IS NOT NULL")

    with op.batch_alter_table("sign_in_code") as batch:
        batch.add_column(sa.Column("client", sa.String(64), nullable=False, server_default=""))
        batch.drop_index("ix_sign_in_code_phone_created")
        batch.create_index(
            "ix_sign_in_code_phone_client", ["phone", "client", "created_at"], unique=False
        )
    with op.batch_alter_table("sign_in_code") as batch:
        batch.alter_column("client", server_default=None)

    op.create_table(
        "sign_in_device",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("phone", "client", name="uq_sign_in_device_phone_client"),
    )
    op.create_table(
        "credential_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_task_mobilisation_status", "task", ["mobilisation_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_task_mobilisation_status", table_name="task")
    op.drop_table("credential_change")
    op.drop_table("sign_in_device")
    with op.batch_alter_table("sign_in_code") as batch:
        batch.drop_index("ix_sign_in_code_phone_client")
        batch.create_index("ix_sign_in_code_phone_created", ["phone", "created_at"], unique=False)
        batch.drop_column("client")
    # Admins go back to being bound to no place: one binding each, the rest dropped.
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "DELETE FROM role_binding WHERE role = 'admin' AND id NOT IN "
            "(SELECT min(id) FROM role_binding WHERE role = 'admin' GROUP BY user_id)"
        )
    )
    with op.batch_alter_table("role_binding") as batch:
        batch.drop_constraint("ck_role_binding_scope_given", type_="check")
    bind.execute(
        sa.text(
            "UPDATE role_binding SET district_code = NULL, scope_code = NULL WHERE role = 'admin'"
        )
    )
    with op.batch_alter_table("role_binding") as batch:
        batch.create_check_constraint(
            "ck_role_binding_scope_by_role", "(role = 'admin') = (scope_code IS NULL)"
        )
