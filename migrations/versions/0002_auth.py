"""Users, role bindings, bearer tokens and phone sign-in codes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from mobilize.db.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "role_binding",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "app_user.id", ondelete="CASCADE", name="fk_role_binding_user_id_app_user"
            ),
            nullable=False,
        ),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("district_code", sa.String(64), nullable=True),
        sa.Column("scope_code", sa.String(64), nullable=True),
        sa.UniqueConstraint(
            "user_id",
            "role",
            "district_code",
            "scope_code",
            name="uq_role_binding_user_id_role_district_code_scope_code",
        ),
        sa.CheckConstraint(
            "role IN ('district_commander', 'street_commander', 'community_secretary',"
            " 'responder', 'reviewer', 'admin')",
            name="ck_role_binding_role",
        ),
        sa.CheckConstraint(
            "(role = 'admin') = (scope_code IS NULL)", name="ck_role_binding_scope_by_role"
        ),
    )
    op.create_index("ix_role_binding_user_id", "role_binding", ["user_id"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("app_user.id", ondelete="CASCADE", name="fk_api_token_user_id_app_user"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("digest", name="uq_api_token_digest"),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "sign_in_code",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("phone", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_sign_in_code_phone_created", "sign_in_code", ["phone", "created_at"])


def downgrade() -> None:
    for table in ("sign_in_code", "api_token", "role_binding", "app_user"):
        op.drop_table(table)
