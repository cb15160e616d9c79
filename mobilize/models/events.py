"""The event log: the history replay and after-action review read. Append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_mobilisation_seq", "mobilisation_id", "seq"),
        Index("ix_event_subject", "subject_type", "subject_id"),
    )

    # BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite, so both autoincrement.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    mobilisation_id: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
