"""Wartime: mobilisations over a set of communities, who is assigned where, the temporary
party organisations, and the notifications waiting to go out."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base, checked_per_statement


class MobilisationKind(enum.StrEnum):
    EPIDEMIC = "epidemic"
    FLOOD = "flood"
    EARTHQUAKE = "earthquake"
    FIRE = "fire"
    OTHER = "other"


class MobilisationStatus(enum.StrEnum):
    ACTIVATING = "activating"  # the area is claimed; its solve is queued or running
    ACTIVE = "active"
    STOOD_DOWN = "stood_down"


class AssignmentRole(enum.StrEnum):
    MINIMUM = "minimum"  # the grid's minimum on site
    WORK = "work"  # one of the grid's work slots
    TEAM = "team"  # sent with their team to the community with the largest shortfall
    EXTRA = "extra"  # called to their own grid or community beyond what it needs
    STANDBY = "standby"  # sent by the system as a backup; released once the minimum is on site


class AssignmentSource(enum.StrEnum):
    ENGINE = "engine"
    MANUAL = "manual"
    AUTO = "auto"  # the system's own reaction between the command centres' rounds


class AssignmentStatus(enum.StrEnum):
    ASSIGNED = "assigned"
    ACKNOWLEDGED = "acknowledged"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    DECLINED = "declined"
    NO_SHOW = "no_show"
    RELEASED = "released"


# Mobilisations that hold their area: no other may overlap them, no re-import under them.
LIVE = (MobilisationStatus.ACTIVATING, MobilisationStatus.ACTIVE)
# Statuses in which a person is committed and the engine may not move them.
COMMITTED = (AssignmentStatus.ACKNOWLEDGED, AssignmentStatus.EN_ROUTE, AssignmentStatus.ON_SITE)
# Statuses in which the assignment still holds a slot.
HOLDING = (AssignmentStatus.ASSIGNED, *COMMITTED)
HOLDING_VALUES = tuple(s.value for s in HOLDING)  # as stored: for one_of and plain rows
HOLDING_SQL = f"status IN ({', '.join(repr(v) for v in HOLDING_VALUES)})"  # partial indexes


class Mobilisation(Base):
    __tablename__ = "mobilisation"
    __table_args__ = (
        CheckConstraint("status IN ('activating', 'active', 'stood_down')", name="status"),
        CheckConstraint(
            "kind IN ('epidemic', 'flood', 'earthquake', 'fire', 'other')", name="kind"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("district.id"))
    kind: Mapped[MobilisationKind] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(200))
    scope: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"district": bool, "streets": [...],...}
    status: Mapped[MobilisationStatus] = mapped_column(String(16))
    t0: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)  # the staffing rule, as applied
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)  # what the activation achieved
    activated_by: Mapped[str] = mapped_column(String(128))
    stood_down_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stood_down_by: Mapped[str | None] = mapped_column(String(128))
    final_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MobilisationArea(Base):
    """A community in a mobilisation. The partial unique index makes overlapping activations
    impossible: a community is in at most one active mobilisation, whatever the race."""

    __tablename__ = "mobilisation_area"
    __table_args__ = (
        Index(
            "uq_mobilisation_area_active_community",
            "community_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    active: Mapped[bool]


class Assignment(Base):
    """One person in one mobilisation: where they go and how far they have got."""

    __tablename__ = "assignment"
    __table_args__ = (
        checked_per_statement("mobilisation_id", "mobilisation"),
        checked_per_statement("responder_id", "responder"),
        checked_per_statement("grid_id", "grid"),
        checked_per_statement("community_id", "community"),
        UniqueConstraint("mobilisation_id", "responder_id"),
        Index("ix_assignment_mobilisation_grid", "mobilisation_id", "grid_id"),
        # A person holds at most one slot anywhere: counted toward two grids' minimums, they
        # would overstate coverage in both. A stand-down releases every slot it held.
        Index(
            "uq_assignment_holding_responder",
            "responder_id",
            unique=True,
            sqlite_where=text(HOLDING_SQL),
            postgresql_where=text(HOLDING_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int]
    responder_id: Mapped[int] = mapped_column(index=True)
    grid_id: Mapped[int | None]
    community_id: Mapped[int]
    role: Mapped[AssignmentRole] = mapped_column(String(16))
    source: Mapped[AssignmentSource] = mapped_column(String(16))
    pinned: Mapped[bool] = mapped_column(default=False)
    status: Mapped[AssignmentStatus] = mapped_column(String(16))
    travel_minutes: Mapped[float] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(500))
    eta_minutes: Mapped[int | None]  # promised when acknowledging
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PartyOrganisation(Base):
    """临时党组织: opened per community in scope for the mobilisation's duration."""

    __tablename__ = "party_organisation"
    __table_args__ = (UniqueConstraint("mobilisation_id", "community_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    name: Mapped[str] = mapped_column(String(200))
    leader_id: Mapped[int | None] = mapped_column(ForeignKey("responder.id"))
    leader_basis: Mapped[str] = mapped_column(String(32))  # secretary | senior_cadre | none


class ClientMutation(Base):
    """A mutation already done for (user, client mutation id): a retry gets its result."""

    __tablename__ = "client_mutation"
    __table_args__ = (UniqueConstraint("actor", "client_mutation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(128))
    client_mutation_id: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the input: a reused id must match
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Notification(Base):
    """The outbox: written in the transaction that decides to notify, sent after it commits."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_status", "status", "id"),
        Index("ix_notification_batch", "batch"),
        # Live mobilisations' messages first; a stand-down cancels its pending ones.
        Index("ix_notification_mobilisation_status", "mobilisation_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch: Mapped[str] = mapped_column(String(32))  # the transaction's messages, sent together
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recipient: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(2000))
    mobilisation_id: Mapped[int | None] = mapped_column(ForeignKey("mobilisation.id"))
    status: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending|sent|failed|cancelled
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered: Mapped[list[str] | None] = mapped_column(JSON)  # channels that accepted it
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # retry not before
    last_error: Mapped[str | None] = mapped_column(String(500))
