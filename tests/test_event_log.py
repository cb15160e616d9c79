"""The event log is the record: on PostGIS the database itself refuses to change it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.events import record_event
from mobilize.models import Event


def test_postgis_refuses_to_update_or_delete_events(postgis_url: str) -> None:
    engine = make_engine(postgis_url)
    clock = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))
    with transaction(make_sessionmaker(engine)) as session:
        seq = record_event(
            session,
            clock=clock,
            actor="test",
            kind="test.recorded",
            subject_type="test",
            subject_id="1",
            payload={"n": 1},
        ).seq  # type: ignore[union-attr]
    for change in (
        update(Event).where(Event.seq == seq).values(payload={"n": 2}),
        delete(Event).where(Event.seq == seq),
    ):
        with (
            pytest.raises(DBAPIError, match="append-only"),
            transaction(make_sessionmaker(engine)) as session,
        ):
            session.execute(change)
    with Session(engine) as session:
        kept = session.scalars(select(Event).where(Event.seq == seq)).one()
    assert kept.payload == {"n": 1} and kept.kind == "test.recorded"
    engine.dispose()
