"""The district as space: streets, communities, the grid levels and households."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import shapely
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import Geometry, UTCDateTime
from mobilize.models.base import Base, Retirable, spatial_index, valid_geometry


class GridLevel(enum.StrEnum):
    GENERAL = "general"
    MICRO = "micro"


class CommunityKind(enum.StrEnum):
    COMMUNITY = "community"  # 社区, urban
    VILLAGE = "village"  # 村, rural


class HouseholdTag(enum.StrEnum):
    """The seven-colour map (七彩图); the order fixes each tag's bit."""

    PARTY_MEMBER = "party_member"
    EMPTY_NEST = "empty_nest"
    ELDERLY = "elderly"
    HARDSHIP = "hardship"
    DISABILITY = "disability"
    RENTED = "rented"
    VACANT = "vacant"

    @property
    def bit(self) -> int:
        return _TAG_BITS[self]

    @staticmethod
    def mask(tags: Iterable[HouseholdTag]) -> int:
        value = 0
        for tag in tags:
            value |= tag.bit
        return value

    @staticmethod
    def unmask(mask: int) -> list[HouseholdTag]:
        return [tag for tag, bit in _TAG_BITS.items() if mask & bit]


# Every household listed on a phone is unmasked: worked out once, not per tag and call.
_TAG_BITS = {tag: 1 << i for i, tag in enumerate(HouseholdTag)}


class District(Base):
    __tablename__ = "district"
    __table_args__ = (spatial_index("district"), valid_geometry())

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    source_crs: Mapped[str] = mapped_column(String(16))
    geom: Mapped[shapely.MultiPolygon] = mapped_column(Geometry("MULTIPOLYGON"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Street(Retirable, Base):
    """街道/镇: one street command centre each."""

    __tablename__ = "street"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        spatial_index("street"),
        valid_geometry(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    geom: Mapped[shapely.MultiPolygon] = mapped_column(Geometry("MULTIPOLYGON"))


class Community(Retirable, Base):
    """社区/村, the master grid (总网格)."""

    __tablename__ = "community"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        spatial_index("community"),
        valid_geometry(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    street_id: Mapped[int] = mapped_column(ForeignKey("street.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[CommunityKind] = mapped_column(String(16))
    secretary_code: Mapped[str | None] = mapped_column(String(64))  # responder leading it
    geom: Mapped[shapely.MultiPolygon] = mapped_column(Geometry("MULTIPOLYGON"))


class Grid(Retirable, Base):
    """A general grid (一般网格, parent: none, in a community) or a micro-grid (微网格,
    parent: its general grid)."""

    __tablename__ = "grid"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        CheckConstraint("level IN ('general', 'micro')", name="level"),
        CheckConstraint(
            "(level = 'general' AND parent_id IS NULL)"
            " OR (level = 'micro' AND parent_id IS NOT NULL)",
            name="parent_by_level",
        ),
        CheckConstraint("household_count >= 0", name="household_count"),
        Index("ix_grid_community_level", "community_id", "level"),
        spatial_index("grid"),
        valid_geometry(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"), index=True)
    level: Mapped[GridLevel] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    household_count: Mapped[int] = mapped_column(default=0)
    geom: Mapped[shapely.MultiPolygon] = mapped_column(Geometry("MULTIPOLYGON"))
    centre: Mapped[shapely.Point] = mapped_column(Geometry("POINT"))  # a point inside it


class Building(Retirable, Base):
    """楼栋: a building in one micro-grid; its leader (楼栋长) is a responder
    (`Responder.leads_building_id`). Households name it, with their unit (单元) and door."""

    __tablename__ = "building"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        CheckConstraint("floors >= 1", name="floors"),
        spatial_index("building"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    micro_grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300))
    floors: Mapped[int] = mapped_column(default=1)
    geom: Mapped[shapely.Point] = mapped_column(Geometry("POINT"))


class Household(Retirable, Base):
    """户: a point in a micro-grid, with its size and seven-colour tags (bitmask); in a
    building, its unit (单元) and door (门牌), when the bundle says so (format 2)."""

    __tablename__ = "household"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        CheckConstraint("size >= 0", name="size"),
        spatial_index("household"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    micro_grid_id: Mapped[int] = mapped_column(ForeignKey("grid.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(default=1)
    tags: Mapped[int] = mapped_column(default=0)
    geom: Mapped[shapely.Point] = mapped_column(Geometry("POINT"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"), index=True)
    building_unit: Mapped[str] = mapped_column(String(16), default="")  # 单元
    door: Mapped[str] = mapped_column(String(16), default="")  # 门牌/房号
    address: Mapped[str] = mapped_column(String(300), default="")
