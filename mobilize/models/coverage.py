"""Where each micro-grid stands against the three-hour promise, kept as events happen."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base, checked_per_statement


class GridStatus(enum.StrEnum):
    UNSTAFFED = "unstaffed"  # nobody holds it
    ASSIGNED = "assigned"  # people assigned, nobody has answered yet
    ARRIVING = "arriving"  # someone acknowledged or is on the way; the minimum is not there
    MOBILISED = "mobilised"  # its minimum is on site
    CHECKED = "checked"  # and every household has been checked


class GridState(Base):
    """One micro-grid in one mobilisation; updated with every change that touches it."""

    __tablename__ = "grid_state"
    __table_args__ = (
        checked_per_statement("mobilisation_id", "mobilisation"),
        checked_per_statement("grid_id", "grid"),
        checked_per_statement("community_id", "community"),
        checked_per_statement("street_id", "street"),
        Index("ix_grid_state_mobilisation_status", "mobilisation_id", "status"),
    )

    mobilisation_id: Mapped[int] = mapped_column(primary_key=True)
    grid_id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int]
    street_id: Mapped[int]
    status: Mapped[GridStatus] = mapped_column(String(16))
    assigned: Mapped[int] = mapped_column(default=0)
    answered: Mapped[int] = mapped_column(default=0)  # acknowledged or on the way
    on_site: Mapped[int] = mapped_column(default=0)
    households: Mapped[int] = mapped_column(default=0)
    checked: Mapped[int] = mapped_column(default=0)
    mobilised_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # first reached
    mobilised_minute: Mapped[int | None]  # minutes since T0 then: the curve, by one GROUP BY
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # sent to its street
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # not mobilised by deadline
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MilestoneKind(enum.StrEnum):
    ESCALATION = "escalation"  # T0 + escalate_after_minutes: at-risk grids go to their street
    DEADLINE = "deadline"  # the promise's end: grids not mobilised are recorded as missed


class Milestone(Base):
    """A scheduled step of a mobilisation, done once: the primary key lets only one of any
    number of schedulers (beat, in-process, a drill) record it."""

    __tablename__ = "milestone"

    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"), primary_key=True)
    kind: Mapped[MilestoneKind] = mapped_column(String(16), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime] = mapped_column(UTCDateTime())
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
