"""The forces (力量): units paired with communities, teams and the people who respond."""

from __future__ import annotations

import enum

import shapely
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import Geometry
from mobilize.models.base import Base, Origin, Retirable, spatial_index

LEADS_TODAY = "leads_building_id IS NOT NULL AND retired_at IS NULL"


class TeamKind(enum.StrEnum):
    SHOCK_TEAM = "shock_team"  # 党员突击队
    VOLUNTEER_SERVICE_TEAM = "volunteer_service_team"  # 志愿服务队


class ResponderKind(enum.StrEnum):
    GRID_WORKER = "grid_worker"  # 专职网格员
    MICRO_GRID_MEMBER = "micro_grid_member"  # 微网格员
    SUNK_CADRE = "sunk_cadre"  # 下沉党员干部
    SHOCK_TEAM_MEMBER = "shock_team_member"
    VOLUNTEER = "volunteer"


class Unit(Retirable, Base):
    """A government unit or institution (机关/企事业单位) that sends cadres down."""

    __tablename__ = "unit"
    __table_args__ = (UniqueConstraint("district_id", "code"), spatial_index("unit"))

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    geom: Mapped[shapely.Point] = mapped_column(Geometry("POINT"))


class Pairing(Retirable, Base):
    """结对: a unit paired with a community, and how many cadres it sinks in wartime."""

    __tablename__ = "pairing"
    __table_args__ = (
        UniqueConstraint("unit_id", "community_id"),
        CheckConstraint("wartime_quota >= 0", name="wartime_quota"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"), index=True)
    wartime_quota: Mapped[int]
    origin: Mapped[Origin] = mapped_column(String(8), default=Origin.BUNDLE)


class Team(Retirable, Base):
    __tablename__ = "team"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        CheckConstraint("kind IN ('shock_team', 'volunteer_service_team')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[TeamKind] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    origin: Mapped[Origin] = mapped_column(String(8), default=Origin.BUNDLE)


class Responder(Retirable, Base):
    """A person who can be called: where they live or work, who sends them, their skills."""

    __tablename__ = "responder"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        CheckConstraint(
            "kind IN ('grid_worker', 'micro_grid_member', 'sunk_cadre', 'shock_team_member',"
            " 'volunteer')",
            name="kind",
        ),
        spatial_index("responder"),
        # Every re-plan looks for the district's free volunteers.
        Index("ix_responder_district_kind", "district_id", "kind", "team_id"),
        # One leader per building among today's people.
        Index(
            "uq_responder_leads_building",
            "leads_building_id",
            unique=True,
            sqlite_where=text(LEADS_TODAY),
            postgresql_where=text(LEADS_TODAY),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[ResponderKind] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"), index=True)
    home_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    geom: Mapped[shapely.Point | None] = mapped_column(Geometry("POINT"))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    seniority: Mapped[int] = mapped_column(default=0)  # years of service; leads when no secretary
    # 楼栋长: the building this person leads; the wartime plan keeps them there.
    leads_building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    origin: Mapped[Origin] = mapped_column(String(8), default=Origin.BUNDLE)
