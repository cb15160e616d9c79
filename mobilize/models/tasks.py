"""The work of wartime: tasks in an area, what phones record against them, problems raised,
and the volunteer service each person gave."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base, checked_per_statement


class TaskKind(enum.StrEnum):
    HOUSEHOLD_CHECK = "household_check"  # 人员核查, 扫楼
    SUPPLY_DELIVERY = "supply_delivery"  # 物资配送
    TESTING_SUPPORT = "testing_support"  # 核酸检测
    ORDER_KEEPING = "order_keeping"  # 秩序维护
    PUBLICITY = "publicity"  # 政策宣传
    CODE_CHECK = "code_check"  # 扫码查验
    OTHER = "other"


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_TASK_STATUSES = (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED)


class CheckResult(enum.StrEnum):
    OK = "ok"
    NEEDS_HELP = "needs_help"
    ABSENT = "absent"
    REFUSED = "refused"


class Task(Base):
    """Work in one area. Without explicit assignees, whoever is assigned to the area does it."""

    __tablename__ = "task"
    __table_args__ = (
        checked_per_statement("mobilisation_id", "mobilisation"),
        checked_per_statement("grid_id", "grid"),
        checked_per_statement("community_id", "community"),
        Index("ix_task_mobilisation_grid", "mobilisation_id", "grid_id"),
        Index("ix_task_mobilisation_community", "mobilisation_id", "community_id"),
        # Every re-plan asks whether any task waits for a holder (`promote_staffed`).
        Index("ix_task_mobilisation_status", "mobilisation_id", "status"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int]
    kind: Mapped[TaskKind] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    grid_id: Mapped[int | None]
    community_id: Mapped[int]
    target_tags: Mapped[int] = mapped_column(default=0)  # households with any of these tags
    priority: Mapped[int] = mapped_column(default=3)  # 1 most urgent .. 5
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[TaskStatus] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TaskAssignee(Base):
    """Explicit assignees (a commander's choice) instead of the area's people."""

    __tablename__ = "task_assignee"

    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    responder_id: Mapped[int] = mapped_column(
        ForeignKey("responder.id"), primary_key=True, index=True
    )


class HouseholdRecord(Base):
    """One household checked or supplied in one mobilisation: one record, whoever races."""

    __tablename__ = "household_record"
    __table_args__ = (UniqueConstraint("mobilisation_id", "household_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    responder_id: Mapped[int] = mapped_column(ForeignKey("responder.id"))
    kind: Mapped[str] = mapped_column(String(16))  # check | delivery
    result: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(1000))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProblemReport(Base):
    """A problem raised from the grid; it goes up to the street command centre."""

    __tablename__ = "problem_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"), index=True)
    responder_id: Mapped[int] = mapped_column(ForeignKey("responder.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grid.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id"))
    text: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # escalated | resolved


class ServiceRecord(Base):
    """The service ledger: time given and the points it earns (志愿服务积分), from a
    mobilisation (check-in to release) or from a peacetime activity (its attendance)."""

    __tablename__ = "service_record"
    __table_args__ = (
        UniqueConstraint("mobilisation_id", "responder_id"),
        UniqueConstraint("activity_id", "responder_id"),
        CheckConstraint("(mobilisation_id IS NULL) <> (activity_id IS NULL)", name="one_source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int | None] = mapped_column(ForeignKey("mobilisation.id"))
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"))
    responder_id: Mapped[int] = mapped_column(ForeignKey("responder.id"), index=True)
    checked_in_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hours: Mapped[float] = mapped_column(Float)
    points: Mapped[float] = mapped_column(Float)
