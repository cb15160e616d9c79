"""Notifications through Celery with a real Redis broker and a real worker."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.models import Notification
from mobilize.notify import Message
from mobilize.outbox import enqueue
from mobilize.settings import Settings
from mobilize.worker import tasks
from mobilize.worker.app import app
from mobilize.worker.tasks import CeleryDispatcher
from mobilize.worker.watch import ConsumerWatch

BROKER = "redis://127.0.0.1:6379/13"
# This file alone uses Redis database 13, and its tests run one at a time on one
# pytest-xdist worker: two of them at once would share its queues.
pytestmark = pytest.mark.xdist_group("redis-13")


@pytest.fixture
def worker(engine: Engine, migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(
        tasks, "get_settings", lambda: Settings(database_url=migrated_url, broker_url=BROKER)
    )
    tasks._engine.cache_clear()
    tasks._factory.cache_clear()
    app.conf.update(
        broker_url=BROKER,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
    )
    with start_worker(
        app, perform_ping_check=False, pool="solo", loglevel="WARNING", shutdown_timeout=60
    ) as w:
        yield w
    tasks._engine.cache_clear()
    tasks._factory.cache_clear()


def test_outbox_rows_are_delivered_by_a_celery_worker(engine: Engine, worker: object) -> None:
    clock = ManualClock(datetime(2026, 7, 1, 8, tzinfo=UTC))
    with transaction(make_sessionmaker(engine)) as session:
        batches = enqueue(
            session,
            clock=clock,
            messages=[
                Message(to="13900000001", kind="assignment", text="到岗 report"),
                Message(to="13900000002", kind="assignment", text="到岗 report"),
            ],
        )
    CeleryDispatcher().dispatch(batches)  # after commit, as the edges do
    deadline = time.monotonic() + 30
    statuses: set[str] = set()
    while time.monotonic() < deadline:
        with Session(engine) as session:
            statuses = set(session.scalars(select(Notification.status)))
        if statuses == {"sent"}:
            break
        time.sleep(0.2)
    assert statuses == {"sent"}
    # Delivering the same batch again sends nothing twice.
    assert tasks.deliver_notifications.run(batches) == 0


def test_the_beat_tick_escalates_through_a_worker(
    engine: Engine, worker: object, tiny_bundle: Bundle
) -> None:
    """What Celery beat sends every few seconds, run by a real worker: a mobilisation that
    started more than two hours ago, with nobody answering, escalates once."""
    from datetime import timedelta

    from mobilize.models import Event, Milestone
    from tests.wartime import activated

    started = ManualClock(datetime.now(UTC) - timedelta(minutes=150))
    mobilisation = activated(engine, tiny_bundle, started)
    assert {"escalate", "snapshot", "republish_jobs"} <= set(app.conf.beat_schedule)
    tasks.escalate.delay()
    tasks.escalate.delay()  # an overlapping tick changes nothing
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Session(engine) as session:
            done = session.get(Milestone, (mobilisation.id, "escalation"))
            escalations = session.scalars(
                select(Event).where(Event.kind == "mobilisation.escalated")
            ).all()
            sent = session.scalars(
                select(Notification.status).where(Notification.kind == "escalation")
            ).all()
        if done is not None and sent == ["sent"]:
            break
        time.sleep(0.2)
    assert done is not None and done.figures["grids"] == 20
    assert len(escalations) == 1 and sent == ["sent"]


def test_an_activation_is_solved_by_a_worker_once_however_often_it_is_delivered(
    engine: Engine, worker: object, tiny_bundle: Bundle
) -> None:
    """The API claims the area and queues the solve; a worker runs it. The same run
    delivered three times (a retried publish, beat's republish) solves once."""
    from mobilize import jobs
    from mobilize.districts.importer import import_district
    from mobilize.mobilisation import switch
    from mobilize.mobilisation.area import AreaScope
    from mobilize.models import Assignment, Event, JobRun, Mobilisation
    from tests.wartime import district_commander

    clock = ManualClock(datetime.now(UTC))
    factory = make_sessionmaker(engine)
    with transaction(factory) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with transaction(factory) as session:
        out = switch.activate(
            session,
            actor=district_commander(engine),
            clock=clock,
            scope=AreaScope.parse("district"),
            kind="epidemic",
            title="演练",
        )
        assert out.mobilisation.status == "activating" and len(out.jobs) == 1
    for _ in range(3):
        CeleryDispatcher().run_jobs(out.jobs)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if jobs.status_of(session, out.jobs[0]) == "done":
                break
        time.sleep(0.2)
    time.sleep(1)  # the other deliveries, had they solved again, would have by now
    with Session(engine) as session:
        run = session.get(JobRun, out.jobs[0])
        mobilisation = session.get(Mobilisation, out.mobilisation.id)
        activated = session.scalars(
            select(Event).where(Event.kind == "mobilisation.activated")
        ).all()
        created = session.scalars(select(Event).where(Event.kind == "assignment.created")).all()
        assignments = session.scalars(select(Assignment)).all()
        sent = session.scalars(select(Notification.status)).all()
    assert run is not None and run.status == "done" and run.attempts == 1
    assert mobilisation is not None and mobilisation.status == "active"
    assert run.result == {"figures": mobilisation.figures}
    assert len(activated) == 1
    assert len(assignments) == mobilisation.figures["people_assigned"] == len(created) > 0
    assert sent and set(sent) <= {"pending", "sent"}


class _Broker:
    """A fake Celery app for the watch: a broker that answers or not, a consumer likewise."""

    def __init__(self, broker_up: bool, consumer_up: bool) -> None:
        self.broker_up, self.consumer_up = broker_up, consumer_up
        self.control = self

    def connection_for_write(self) -> _Broker:
        return self

    def __enter__(self) -> _Broker:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def ensure_connection(self, **_: object) -> None:
        if not self.broker_up:
            raise ConnectionError("Redis is down")

    def ping(self, destination: list[str], timeout: float) -> list[dict[str, object]]:
        return [{destination[0]: {"ok": "pong"}}] if self.consumer_up else []


@pytest.mark.parametrize(
    ("broker_up", "consumer_up", "ends"),
    [(True, False, True), (True, True, False), (False, False, False)],
    ids=["consumer dead: ends", "both answer: stays", "broker down: waits for it"],
)
def test_a_worker_ends_itself_only_when_its_consumer_is_silent_while_the_broker_answers(
    broker_up: bool, consumer_up: bool, ends: bool
) -> None:
    ended = threading.Event()
    watch = ConsumerWatch(
        _Broker(broker_up, consumer_up), "w@host", every_s=0.01, misses=3, end=ended.set
    )
    watch.start()
    try:
        assert ended.wait(2) is ends
    finally:
        watch.stop()
