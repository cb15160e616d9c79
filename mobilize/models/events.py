"""The event log: the history replay and after-action review read. Append-only.

Events of a mobilisation carry `mseq`, their place in that mobilisation's own sequence: it is
given at commit, under the mobilisation's counter lock, so transactions commit in `mseq` order
and a reader following `mseq > n` never skips one that committed late (`mobilize.events`).
The global `seq` is only a row id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from mobilize.db.types import UTCDateTime
from mobilize.models.base import Base


class Event(Base):
    __tablename__ = "event"
    # Read one mobilisation at a time, in sequence: no other index (migration 0023).
    __table_args__ = (Index("uq_event_mobilisation_mseq", "mobilisation_id", "mseq", unique=True),)

    # BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite, so both autoincrement.
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    mobilisation_id: Mapped[int | None] = mapped_column(Integer)
    mseq: Mapped[int | None] = mapped_column(Integer)  # 1, 2, 3... within the mobilisation
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class EventCounter(Base):
    """Per mobilisation: the last `mseq` given and its time. Its own table, locked only at
    commit, so no other lock is ever taken while holding it."""

    __tablename__ = "event_counter"

    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"), primary_key=True)
    last_mseq: Mapped[int] = mapped_column(default=0)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventSnapshot(Base):
    """The replayed state of a mobilisation after event `mseq` (zlib-compressed JSON), so
    `stateAt` folds at most a few thousand events whatever the log's length."""

    __tablename__ = "event_snapshot"

    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisation.id"), primary_key=True)
    mseq: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())  # the time of event `mseq`
    state: Mapped[bytes] = mapped_column(LargeBinary)
