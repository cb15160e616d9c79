"""Who may sign in: users, their role bindings, bearer tokens and phone one-time codes.

Secrets are never stored: tokens and codes are kept as SHA-256 digests only."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base


class Role(enum.StrEnum):
    DISTRICT_COMMANDER = "district_commander"  # 区指挥中心
    STREET_COMMANDER = "street_commander"  # 街道指挥中心
    COMMUNITY_SECRETARY = "community_secretary"  # 社区书记
    RESPONDER = "responder"  # a cadre or volunteer on a phone: themself
    REVIEWER = "reviewer"  # after-action review, read-only over the district
    ADMIN = "admin"  # imports and users
    UNIT_ORGANISER = "unit_organiser"  # 单位联络员: keeps one unit's list of cadres


ROLE_NAMES = {
    Role.DISTRICT_COMMANDER: "区指挥中心 District command centre",
    Role.STREET_COMMANDER: "街道指挥中心 Street command centre",
    Role.COMMUNITY_SECRETARY: "社区书记 Community secretary",
    Role.RESPONDER: "下沉干部、志愿者 Cadre or volunteer",
    Role.REVIEWER: "复盘人员 Reviewer",
    Role.ADMIN: "系统管理员 Administrator",
    Role.UNIT_ORGANISER: "单位联络员 Unit organiser",
}


class ScopeKind(enum.StrEnum):
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    RESPONDER = "responder"
    UNIT = "unit"


ROLE_SCOPE: dict[Role, ScopeKind] = {
    Role.DISTRICT_COMMANDER: ScopeKind.DISTRICT,
    Role.STREET_COMMANDER: ScopeKind.STREET,
    Role.COMMUNITY_SECRETARY: ScopeKind.COMMUNITY,
    Role.RESPONDER: ScopeKind.RESPONDER,
    Role.REVIEWER: ScopeKind.DISTRICT,
    Role.ADMIN: ScopeKind.DISTRICT,  # an admin's place is explicit, as everyone's
    Role.UNIT_ORGANISER: ScopeKind.UNIT,
}


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RoleBinding(Base):
    """One role over one place: a district, a street, a community, or one responder. Every
    binding names its place, admins' too: nobody reads every district by default.

    Places are named by code, not id, so bindings survive a district being re-imported."""

    __tablename__ = "role_binding"
    __table_args__ = (
        UniqueConstraint("user_id", "role", "district_code", "scope_code"),
        CheckConstraint(
            "role IN ('district_commander', 'street_commander', 'community_secretary',"
            " 'responder', 'reviewer', 'admin', 'unit_organiser')",
            name="role",
        ),
        CheckConstraint("scope_code IS NOT NULL", name="scope_given"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(String(32))
    district_code: Mapped[str | None] = mapped_column(String(64))
    scope_code: Mapped[str | None] = mapped_column(String(64))  # the place's code, by role


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInCode(Base):
    """A one-time code sent to a phone for one requesting client: 5 minutes, 5 tries. Only
    that client's tries count against it, so nobody else can spend the owner's tries.

    A code is written for every request, registered phone or not (an unregistered phone's is
    never sent), so the two cannot be told apart by what the answer says or how long it takes."""

    __tablename__ = "sign_in_code"
    __table_args__ = (Index("ix_sign_in_code_phone_client", "phone", "client", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(64))  # digest of the device id or address
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SignInDevice(Base):
    """A client (device) that signed in with a phone before: it keeps a way in when someone
    else spends the phone's shared allowance of codes."""

    __tablename__ = "sign_in_device"
    __table_args__ = (UniqueConstraint("phone", "client"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))
    client: Mapped[str] = mapped_column(String(64))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CredentialChange(Base):
    """One row per committed change of who may do what (a token revoked, a role granted, a
    district imported). Every API process watches the newest id, so a change made anywhere,
    even by a command with no broker, is heard within a second."""

    __tablename__ = "credential_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())
