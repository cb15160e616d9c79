"""Peacetime: leave (请假), commitments (承诺/践诺), reporting in and enrolment (报到/报名),
activities and the service ledger with its points (积分). Nothing here is ever deleted:
a leave ends or is cancelled, an application is decided, a redemption is a row."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
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
