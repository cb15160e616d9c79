"""Peacetime: leave (请假), commitments (承诺/践诺), reporting in and enrolment (报到/报名),
activities and the service ledger with its points (积分). Nothing here is ever deleted:
a leave ends or is cancelled, an application is decided, a redemption is a row."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base


class LeaveReason(enum.StrEnum):
    ILL = "ill"  # 病假
    TRAVELLING = "travelling"  # 外出
    CARING = "caring"  # 照护家人
    OTHER = "other"


class Leave(Base):
    """A person away from `starts_at` until `ends_at` (open: until back on duty). They are
    unavailable exactly then and available again after, by itself."""

    __tablename__ = "leave"
    __table_args__ = (
        CheckConstraint("ends_at IS NULL OR ends_at >= starts_at", name="period"),
        Index("ix_leave_responder_period", "responder_id", "starts_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responder.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[LeaveReason] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Commitment(Base):
    """承诺 a person makes for a year, and 践诺 what they did about it."""

    __tablename__ = "commitment"
    __table_args__ = (Index("ix_commitment_responder_year", "responder_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responder.id"))
    year: Mapped[int]
    promise: Mapped[str] = mapped_column(String(500))
    fulfilment: Mapped[str] = mapped_column(String(1000), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ActivityKind(enum.StrEnum):
    PATROL = "patrol"  # 巡逻 of a micro-grid
    BUILDING_ROUND = "building_round"  # 扫楼: a round of a building's doors
    DRILL = "drill"  # 演练
    COMMUNITY_EVENT = "community_event"  # 社区活动
    OTHER = "other"


class ActivityStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    DONE = "done"  # held: who came and for how long is recorded
    CHECKED = "checked"  # checked by the community: its hours and points credited
    CANCELLED = "cancelled"


class Activity(Base):
    """A peacetime task: held at a time in a community (a micro-grid, a building), without
    any mobilisation. A recurring duty is a series of them sharing `series`."""

    __tablename__ = "activity"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="period"),
        Index("ix_activity_community_starts", "community_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id"))
    kind: Mapped[ActivityKind] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    series: Mapped[str | None] = mapped_column(String(36), index=True)
    status: Mapped[ActivityStatus] = mapped_column(String(16), default=ActivityStatus.SCHEDULED)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_by: Mapped[str | None] = mapped_column(String(128))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))


class ActivityPerson(Base):
    """Someone in an activity: signed up or named; once it is held, whether they came and
    for how many hours."""

    __tablename__ = "activity_person"
    __table_args__ = (CheckConstraint("hours IS NULL OR hours >= 0", name="hours"),)

    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"), primary_key=True)
    responder_id: Mapped[int] = mapped_column(
        ForeignKey("responder.id"), primary_key=True, index=True
    )
    how: Mapped[str] = mapped_column(String(16))  # signed_up | named
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attended: Mapped[bool | None] = mapped_column()
    hours: Mapped[float | None] = mapped_column(Float)


class PointsRule(Base):
    """积分 rule of a district (data, not code): points an hour, points an activity, and
    what a point is worth when redeemed. Bishan: 2 an hour, 5 an activity, 1 point = 1 yuan."""

    __tablename__ = "points_rule"

    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"), primary_key=True)
    points_per_hour: Mapped[float] = mapped_column(Float, default=2.0)
    points_per_activity: Mapped[float] = mapped_column(Float, default=5.0)
    yuan_per_point: Mapped[float] = mapped_column(Float, default=1.0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Redemption(Base):
    """Points spent (兑换): never more than the balance, each an event."""

    __tablename__ = "redemption"

    id: Mapped[int] = mapped_column(primary_key=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responder.id"), index=True)
    points: Mapped[float] = mapped_column(Float)
    what: Mapped[str] = mapped_column(String(200))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(128))


class EnrolmentKind(enum.StrEnum):
    PARTY_MEMBER = "party_member"  # 在职党员进社区报到: to where they live
    CADRE = "cadre"  # 机关干部: sent down by their unit in wartime
    VOLUNTEER = "volunteer"  # 志愿者报名


class EnrolmentStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


class Enrolment(Base):
    """报到/报名: someone asks to join a community's roster from their phone (the phone proved
    by a one-time code); the community secretary approves (遴选) or declines with a reason.
    Approved, they are a responder the next activation calls."""

    __tablename__ = "enrolment"
    __table_args__ = (
        Index("ix_enrolment_community_status", "community_id", "status"),
        # One application waiting per phone in a district.
        Index(
            "uq_enrolment_pending_phone",
            "district_id",
            "phone",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    kind: Mapped[EnrolmentKind] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    address: Mapped[str] = mapped_column(String(300))
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    availability: Mapped[str] = mapped_column(String(300))
    consent_at: Mapped[datetime] = mapped_column(UTCDateTime())  # agreed to be kept on record
    status: Mapped[EnrolmentStatus] = mapped_column(String(16), default=EnrolmentStatus.PENDING)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(String(500))
    responder_id: Mapped[int | None] = mapped_column(ForeignKey("responder.id"))
