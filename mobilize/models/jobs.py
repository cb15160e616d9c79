"""Background jobs with a run id: one row per piece of work (an activation's solve), so a
message delivered twice, or redelivered after its worker died, does the work once, and the
result is kept here rather than in the broker."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobRun(Base):
    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("kind", "subject"),  # one run per activation, whatever the retries
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the run id (uuid hex)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))  # e.g. the mobilisation id
    status: Mapped[JobStatus] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(128))  # who took the last attempt
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
