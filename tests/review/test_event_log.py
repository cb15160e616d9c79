"""The event log is the record: on PostGIS the database itself refuses to change it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mobilize import events
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.events import record_event
from mobilize.models import Event, EventCounter
from tests.wartime import activated


def test_postgis_refuses_to_update_or_delete_events(postgis_url: str) -> None:
    engine = make_engine(postgis_url)
    clock = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))
    with transaction(make_sessionmaker(engine)) as session:
        event = record_event(
            session,
            clock=clock,
            actor="test",
            kind="test.recorded",
            subject_type="test",
            subject_id="1",
            payload={"n": 1},
        )
        assert event is not None  # not a mobilisation's: written now, its seq known
        seq = event.seq
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


@pytest.mark.parametrize("one_statement_up_to", [1000, 0], ids=["one statement", "copy"])
def test_a_mobilisations_events_are_numbered_in_commit_order_and_never_go_back_in_time(
    engine: Engine,
    tiny_bundle: Bundle,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    one_statement_up_to: int,
) -> None:
    """Events recorded against clocks that disagree (a write's events at several readings,
    a later commit with an earlier clock) get consecutive numbers, and each one's time is
    raised to its predecessor's when it is earlier: "the events up to time t" stays a prefix.
    The same whichever way PostgreSQL takes a commit's batch (one statement, or COPY as an
    activation's thousands go)."""
    monkeypatch.setattr(events, "ONE_STATEMENT_UP_TO", one_statement_up_to)
    mobilisation = activated(engine, tiny_bundle, clock)
    factory = make_sessionmaker(engine)
    with Session(engine) as session:
        start = session.scalar(
            select(func.max(Event.mseq)).where(Event.mobilisation_id == mobilisation.id)
        )
        floor = session.scalar(
            select(func.max(Event.occurred_at)).where(Event.mobilisation_id == mobilisation.id)
        )
    assert start is not None and floor is not None
    base = floor + timedelta(minutes=10)

    def commit(*minutes: int) -> None:
        with transaction(factory) as session:
            for n, minute in enumerate(minutes):
                record_event(
                    session,
                    clock=ManualClock(base + timedelta(minutes=minute)),
                    actor="test",
                    kind="test.clock",
                    subject_type="test",
                    subject_id=f"{minute}/{n}",
                    mobilisation_id=mobilisation.id,
                )

    commit(0)
    commit(-2, 1, -1)  # earlier, later, earlier again
    commit(0)  # a whole commit behind the last time
    commit(3, 3)
    with Session(engine) as session:
        rows = session.execute(
            select(Event.mseq, Event.subject_id, Event.occurred_at)
            .where(Event.mobilisation_id == mobilisation.id, Event.mseq > start)
            .order_by(Event.mseq)
        ).all()
        counter = session.get(EventCounter, mobilisation.id)
        assert counter is not None
        last_at, last_mseq = counter.last_at, counter.last_mseq
    assert [r.mseq for r in rows] == list(range(start + 1, start + 8))
    assert [r.subject_id for r in rows] == ["0/0", "-2/0", "1/1", "-1/2", "0/0", "3/0", "3/1"]
    assert [int((r.occurred_at - base).total_seconds() // 60) for r in rows] == [
        0, 0, 1, 1, 1, 3, 3,
    ]  # fmt: skip
    assert (last_mseq, last_at) == (start + 7, base + timedelta(minutes=3))
