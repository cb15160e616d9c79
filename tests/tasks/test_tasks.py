"""Tasks and the phone: generation, dispatch, lifecycle, check-in, records, retries, hours."""

from __future__ import annotations

import re
import threading
from collections import namedtuple
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import shapely
import sqlalchemy
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from geo import LocalMetric, wgs84_to
from mobilize.auth.actor import Actor, Binding
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.errors import DomainError, Forbidden, InvalidInput, NotFound
from mobilize.idempotency import ReusedMutationId
from mobilize.mobilisation import assignments, field, phone, risk_fix, switch
from mobilize.models import (
    Assignment,
    Community,
    Event,
    Grid,
    GridLevel,
    GridState,
    Household,
    HouseholdRecord,
    HouseholdTag,
    Notification,
    Responder,
    Role,
    ServiceRecord,
    Street,
    Task,
)
from mobilize.peacetime import leave
from mobilize.tasks import dispatch, lifecycle, records
from tests.people import away_from_now
from tests.wartime import activated, district_commander, grid_of, street_commander, write

HOLD = ("assigned", "acknowledged", "en_route", "on_site")


@pytest.fixture
def wartime(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> int:
    return activated(engine, small_bundle, clock, scope="street:S01").id


def person(
    engine: Engine, mobilisation_id: int, clock: ManualClock, *, minimum: bool = True
) -> tuple[Actor, Assignment]:
    """A responder holding a grid (in the minimum slot or not), as their phone acts."""
    with Session(engine) as session:
        a = session.scalars(
            select(Assignment)
            .where(
                Assignment.mobilisation_id == mobilisation_id,
                Assignment.role == ("minimum" if minimum else "work"),
            )
            .order_by(Assignment.id)
        ).first()
        assert a is not None
    actor = Actor(
        user_id=500 + a.responder_id,
        name=f"r{a.responder_id}",
        address="10.2.0.1",
        bindings=(Binding(Role.RESPONDER, a.responder_id, 1),),
    )
    return actor, a


def test_activation_generates_one_check_per_micro_grid_and_deliveries(
    engine: Engine, wartime: int
) -> None:
    with Session(engine) as session:
        grids = session.execute(
            select(func.count())
            .select_from(Grid)
            .join(Community)
            .join(Street)
            .where(Street.code == "S01", Grid.level == GridLevel.MICRO.value)
        ).scalar_one()
        checks = session.execute(
            select(func.count()).select_from(Task).where(Task.kind == "household_check")
        ).scalar_one()
        tagged = session.execute(
            select(func.count(func.distinct(Household.micro_grid_id)))
            .join(Grid, Grid.id == Household.micro_grid_id)
            .join(Community)
            .join(Street)
            .where(Street.code == "S01", Household.tags.op("&")(dispatch.SUPPLY_TAGS) != 0)
        ).scalar_one()
        deliveries = session.execute(
            select(func.count()).select_from(Task).where(Task.kind == "supply_delivery")
        ).scalar_one()
        statuses = set(session.scalars(select(Task.status)))
    assert checks == grids and deliveries == tagged > 0
    assert statuses <= {"assigned", "pending"}


def test_households_come_building_by_building_the_most_urgent_first(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    actor, _ = person(engine, wartime, clock)
    with Session(engine) as session:
        view = phone.my_assignment(session, actor=actor, clock=clock)
        assert view is not None
        households, _ = phone.grid_households(
            session, mobilisation_id=view.mobilisation.id, grid_id=view.grid.id
        )
        leader = phone.leader(
            session, mobilisation_id=view.mobilisation.id, community_id=view.grid.community_id
        )
    assert households

    def rank(h: Any) -> int:
        return next((i for i, t in enumerate(dispatch.PRIORITY_TAGS) if h.tags & t.bit), 4)

    buildings = list(dict.fromkeys(h.building_id for h in households))
    assert None not in buildings
    runs = [[h for h in households if h.building_id == b] for b in buildings]
    # Each building walked once, its households one after another, door by door.
    assert sum(len(run) for run in runs) == len(households)
    assert [h.building_id for run in runs for h in run] == [h.building_id for h in households]
    for run in runs:
        doors = [(int(h.building_unit), int(h.door)) for h in run]
        assert doors == sorted(doors)
    # The building with the most urgent household first, then the next most urgent...
    most_urgent = [min(rank(h) for h in run) for run in runs]
    assert most_urgent == sorted(most_urgent) and most_urgent[0] == min(map(rank, households))
    assert view.minutes_left == 180.0 and leader is not None


def test_visiting_order_reads_units_and_doors_as_numbers() -> None:
    row = namedtuple("row", "code tags building_id building_unit door")
    elderly = HouseholdTag.ELDERLY.bit
    households = [
        row("A", 0, 1, "10", "101"),
        row("B", 0, 1, "2", "1101"),
        row("C", 0, 1, "2", "502"),
        row("D", 0, None, "", ""),
        row("E", elderly, 2, "1", "301"),
        row("F", 0, 2, "1", "201"),
    ]
    order = [h.code for h in records.in_visiting_order(households)]
    # Building 2 holds the elderly household: first, its doors in order; then building 1
    # unit 2 before unit 10, door 502 before 1101; the household without a building last.
    assert order == ["F", "E", "C", "B", "A", "D"]


def test_lifecycle_and_illegal_transitions(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    actor, _ = person(engine, wartime, clock)
    with Session(engine) as session:
        [mine] = [t for t in lifecycle.my_tasks(session, actor) if t.kind == "household_check"]
    accepted = write(
        engine, lifecycle.work_on, actor=actor, clock=clock, task_id=mine.id, to="accepted"
    )
    assert accepted.status == "accepted"
    with pytest.raises(InvalidInput, match="reason"):
        write(engine, lifecycle.work_on, actor=actor, clock=clock, task_id=mine.id, to="failed")
    done = write(engine, lifecycle.work_on, actor=actor, clock=clock, task_id=mine.id, to="done")
    assert done.status == "done"
    with pytest.raises(lifecycle.TaskTransitionError, match="the task is done"):
        write(engine, lifecycle.work_on, actor=actor, clock=clock, task_id=mine.id, to="accepted")
    with pytest.raises(lifecycle.TaskTransitionError, match="done"):
        write(
            engine,
            lifecycle.cancel_task,
            actor=district_commander(engine),
            clock=clock,
            task_id=mine.id,
            reason="x",
        )


def test_dispatch_by_area_inside_your_street_only(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    mine, theirs = street_commander(engine, "S01"), street_commander(engine, "S02")
    with Session(engine) as session:
        s01 = session.scalars(select(Street.id).where(Street.code == "S01")).one()
        s02 = session.scalars(select(Street.id).where(Street.code == "S02")).one()
        micro = session.execute(
            select(func.count())
            .select_from(Grid)
            .join(Community)
            .where(Community.street_id == s01, Grid.level == "micro")
        ).scalar_one()
    made = write(
        engine,
        dispatch.dispatch,
        actor=mine,
        clock=clock,
        mobilisation_id=wartime,
        kind="publicity",
        areas=dispatch.AreaChoice(micro_grids_of_streets=(s01,)),
        priority=1,
        target_tags=HouseholdTag.ELDERLY.bit,
    )
    assert len(made) == micro
    with pytest.raises(DomainError):  # S02's commander cannot even see this mobilisation
        write(
            engine,
            dispatch.dispatch,
            actor=theirs,
            clock=clock,
            mobilisation_id=wartime,
            kind="publicity",
            areas=dispatch.AreaChoice(micro_grids_of_streets=(s02,)),
        )
    with pytest.raises(InvalidInput, match="outside"):
        write(
            engine,
            dispatch.dispatch,
            actor=district_commander(engine),
            clock=clock,
            mobilisation_id=wartime,
            kind="publicity",
            areas=dispatch.AreaChoice(micro_grids_of_streets=(s02,)),
        )
    task = made[0]
    write(engine, lifecycle.set_priority, actor=mine, clock=clock, task_id=task.id, priority=5)
    cancelled = write(
        engine,
        lifecycle.cancel_task,
        actor=mine,
        clock=clock,
        task_id=task.id,
        reason="重复 duplicate",
    )
    assert cancelled.status == "cancelled"


def _grid_point(engine: Engine, grid_id: int) -> shapely.Point:
    with Session(engine) as session:
        grid = session.get(Grid, grid_id)
        assert grid is not None
        return grid.centre


def test_check_in_radius_in_wgs84_and_gcj02(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    actor, a = person(engine, wartime, clock)
    centre = _grid_point(engine, grid_of(a))
    glon, glat = wgs84_to([centre.x], [centre.y], "gcj02")
    # GCJ-02 coordinates sent as if they were GPS: hundreds of metres off, refused.
    with pytest.raises(field.OutOfArea) as caught:
        write(
            engine,
            field.check_in,
            actor=actor,
            clock=clock,
            assignment_id=a.id,
            lon=float(glon[0]),
            lat=float(glat[0]),
            crs="wgs84",
        )
    assert 150 < caught.value.distance_m < 700
    assert "m from your micro-grid" in caught.value.message
    # The same point, labelled correctly, lands inside.
    out = write(
        engine,
        field.check_in,
        actor=actor,
        clock=clock,
        assignment_id=a.id,
        lon=float(glon[0]),
        lat=float(glat[0]),
        crs="gcj02",
    )
    assert out.assignment is not None and out.assignment.status == "on_site"
    # 140 m outside the polygon still counts (150 m buffer); 400 m does not.
    other, b = person(engine, wartime, clock, minimum=False)
    with Session(engine) as session:
        grid = session.get(Grid, b.grid_id)
        assert grid is not None
        metric = LocalMetric.around(grid.geom)
        ring = metric.to_degrees(shapely.buffer(metric.to_metres(grid.geom), 140).exterior)
    near = ring.coords[0]
    write(
        engine,
        field.check_in,
        actor=other,
        clock=clock,
        assignment_id=b.id,
        lon=near[0],
        lat=near[1],
    )


def test_retries_and_races_on_one_household(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    actor, a = person(engine, wartime, clock)
    with Session(engine) as session:
        task = next(t for t in lifecycle.my_tasks(session, actor) if t.kind == "household_check")
        households = records.ordered_households(session, task)
    first = households[0]

    def retry(_: int) -> int:
        record = write(
            engine,
            records.record_household,
            actor=actor,
            clock=clock,
            task_id=task.id,
            household_id=first.id,
            kind="check",
            result="ok",
            client_mutation_id="phone-1/1",
        )
        return record.id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(retry, range(8)))
    assert len(ids) == 1  # every retry answered with the one record
    with pytest.raises(ReusedMutationId):
        write(
            engine,
            records.record_household,
            actor=actor,
            clock=clock,
            task_id=task.id,
            household_id=first.id,
            kind="check",
            result="needs_help",
            client_mutation_id="phone-1/1",
        )
    # A teammate records the same household with their own id: told who was first.
    with Session(engine) as session:
        mate = session.scalars(
            select(Assignment).where(
                Assignment.mobilisation_id == wartime,
                Assignment.grid_id == a.grid_id,
                Assignment.id != a.id,
            )
        ).first()
    if mate is not None:
        teammate = Actor(
            user_id=900,
            name="mate",
            address="10.2.0.2",
            bindings=(Binding(Role.RESPONDER, mate.responder_id, 1),),
        )
        with pytest.raises(records.AlreadyRecorded, match=f"Already recorded by {actor.name}"):
            write(
                engine,
                records.record_household,
                actor=teammate,
                clock=clock,
                task_id=task.id,
                household_id=first.id,
                kind="check",
                result="absent",
                client_mutation_id="phone-2/1",
            )
    # Two phones racing on another household without ids: one record, one told.
    second = households[1]

    def race(who: Actor) -> object:
        try:
            return write(
                engine,
                records.record_household,
                actor=who,
                clock=clock,
                task_id=task.id,
                household_id=second.id,
                kind="check",
                result="ok",
            )
        except records.AlreadyRecorded as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(race, [actor, actor]))
    assert sum(isinstance(o, records.AlreadyRecorded) for o in outcomes) == 1
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(HouseholdRecord)).scalar_one() == 2
        assert session.get_one(Task, task.id).status == "in_progress"


@contextmanager
def in_step(engine: Engine, pattern: str, *, once_per_thread: bool = False) -> Iterator[None]:
    """Two threads writing at once: on PostgreSQL each waits, after a statement matching
    `pattern` (only its first, with `once_per_thread`), until the other has run one too, so
    the two always overlap there. SQLite has one writer at a time: there they queue."""
    if engine.dialect.name != "postgresql":
        yield
        return
    both = threading.Barrier(2, timeout=20)
    done: set[int] = set()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        me = threading.get_ident()
        if once_per_thread and me in done:
            return
        if re.search(pattern, statement, re.DOTALL):
            done.add(me)
            both.wait()

    sqlalchemy.event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        sqlalchemy.event.remove(engine, "after_cursor_execute", after)


def test_two_first_records_at_once_both_land(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    """Two phones of one grid send their first checks at the same moment: both saw the task
    not yet started, one starts it, and the other's checks land too (no refusal to retry).
    On PostgreSQL each waits, once it has read the task, for the other to have read it."""
    actor, _ = person(engine, wartime, clock)
    with Session(engine) as session:
        task = next(t for t in lifecycle.my_tasks(session, actor) if t.kind == "household_check")
        households = records.ordered_households(session, task)

    def sync(household: Household) -> object:
        entries = [records.HouseholdEntry(household.id, "ok")]
        return write(engine, records.record_households, actor=actor, clock=clock,
                     task_id=task.id, kind="check", entries=entries)  # fmt: skip

    task_read = r"FROM task\b.*WHERE task\.id ="
    with in_step(engine, task_read, once_per_thread=True), ThreadPoolExecutor(2) as pool:
        list(pool.map(sync, households[:2]))
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(HouseholdRecord)).scalar_one() == 2
        assert session.get_one(Task, task.id).status == "in_progress"


def test_phones_recording_one_grid_at_once_are_all_counted(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    """Phones sync side by side (a household record takes its community's lock shared): each
    recounts the grid, so the grid's count must be read after the others' have committed, or
    the last to write leaves the count of its own view and checks go missing from coverage.
    On PostgreSQL every record waits, once inserted, for another phone's to be inserted too,
    so the two always overlap (SQLite has one writer at a time, so there they queue)."""
    actor, a = person(engine, wartime, clock)
    with Session(engine) as session:
        task = next(t for t in lifecycle.my_tasks(session, actor) if t.kind == "household_check")
        households = records.ordered_households(session, task)
    assert len(households) >= 26

    def sync(start: int) -> None:
        entries = [records.HouseholdEntry(h.id, "ok") for h in households[start : start + 2]]
        write(engine, records.record_households, actor=actor, clock=clock, task_id=task.id,
              kind="check", entries=entries)  # fmt: skip

    sync(0)  # the first starts the task (a lock of its own the others would queue on)
    inserted = r"^\s*INSERT INTO household_record"
    with in_step(engine, inserted), ThreadPoolExecutor(2) as pool:
        list(pool.map(sync, range(2, 26, 2)))
    with Session(engine) as session:
        state = session.scalars(
            select(GridState).where(
                GridState.mobilisation_id == wartime, GridState.grid_id == a.grid_id
            )
        ).one()
        written = session.execute(select(func.count()).select_from(HouseholdRecord)).scalar_one()
        last = session.scalars(
            select(Event)
            .where(Event.kind == "grid.status", Event.subject_id == str(a.grid_id))
            .order_by(Event.mseq.desc())
        ).first()
    assert written == 26
    assert state.checked == 26
    assert last is not None and last.payload["checked"] == 26  # replay folds the same


def test_a_phone_syncs_its_checks_in_one_batch(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    """A phone back online sends its checks together: all land with one event each and the
    grid's count, or, when one is wrong, none (named by index); one another phone recorded
    first is reported, not recorded again; a retry answers the same records."""
    actor, a = person(engine, wartime, clock)
    with Session(engine) as session:
        task = next(t for t in lifecycle.my_tasks(session, actor) if t.kind == "household_check")
        households = records.ordered_households(session, task)
        elsewhere = session.scalars(
            select(Household).where(Household.micro_grid_id != a.grid_id)
        ).first()
    assert len(households) >= 4 and elsewhere is not None
    entries = [records.HouseholdEntry(h.id, "ok") for h in households[:3]]
    bad = [*entries, records.HouseholdEntry(elsewhere.id, "ok")]
    with pytest.raises(InvalidInput, match=r"entries\[3\]\.household"):
        write(engine, records.record_households, actor=actor, clock=clock, task_id=task.id,
              kind="check", entries=bad)  # fmt: skip
    with pytest.raises(InvalidInput, match=r"entries\[1\]\.result"):
        wrong = [entries[0], records.HouseholdEntry(households[1].id, "fine")]
        write(engine, records.record_households, actor=actor, clock=clock, task_id=task.id,
              kind="check", entries=wrong)  # fmt: skip
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(HouseholdRecord)).scalar_one() == 0
    write(engine, records.record_household, actor=actor, clock=clock, task_id=task.id,
          household_id=households[1].id, kind="check", result="absent")  # fmt: skip
    clock.advance(timedelta(minutes=10))

    def sync() -> records.RecordedBatch:
        batch = write(
            engine,
            records.record_households,
            actor=actor,
            clock=clock,
            task_id=task.id,
            kind="check",
            entries=entries,
            client_mutation_id="s1",
        )
        assert isinstance(batch, records.RecordedBatch)
        return batch

    first = sync()
    assert [r.household_id for r in first.records] == [households[0].id, households[2].id]
    assert set(first.taken) == {households[1].id}
    assert first.taken[households[1].id].result == "absent"
    again = sync()
    assert [r.id for r in again.records] == [r.id for r in first.records]
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(HouseholdRecord)).scalar_one() == 3
        checked = session.execute(
            select(func.count()).where(
                Event.kind == "household.checked", Event.mobilisation_id == wartime
            )
        ).scalar_one()
        state = session.scalars(
            select(GridState).where(
                GridState.mobilisation_id == wartime, GridState.grid_id == a.grid_id
            )
        ).one()
    assert checked == 3 and state.checked == 3


def test_not_your_task_not_your_household(engine: Engine, wartime: int, clock: ManualClock) -> None:
    actor, a = person(engine, wartime, clock)
    with Session(engine) as session:
        elsewhere = session.scalars(
            select(Task).where(Task.mobilisation_id == wartime, Task.grid_id != a.grid_id)
        ).first()
        assert elsewhere is not None
        household = session.scalars(
            select(Household).where(Household.micro_grid_id == elsewhere.grid_id)
        ).first()
        assert household is not None
    with pytest.raises((Forbidden, NotFound)):
        write(
            engine,
            records.record_household,
            actor=actor,
            clock=clock,
            task_id=elsewhere.id,
            household_id=household.id,
            kind="check",
            result="ok",
        )


def test_a_task_given_to_named_people_is_theirs_alone(
    engine: Engine, wartime: int, clock: ManualClock
) -> None:
    holder, a = person(engine, wartime, clock)
    with Session(engine) as session:
        task_id = session.scalars(
            select(Task.id).where(Task.grid_id == a.grid_id, Task.kind == "household_check")
        ).one()
        named = session.scalars(
            select(Assignment.responder_id)
            .where(
                Assignment.mobilisation_id == wartime,
                Assignment.grid_id != a.grid_id,
                Assignment.status.in_(HOLD),
            )
            .order_by(Assignment.responder_id)
        ).first()
        households = session.scalars(
            select(Household.id).where(Household.micro_grid_id == a.grid_id).order_by(Household.id)
        ).all()
    assert named is not None and len(households) >= 2
    write(
        engine, lifecycle.reassign_task, actor=district_commander(engine), clock=clock,
        task_id=task_id, responder_ids=[named],
    )  # fmt: skip

    def check(actor: Actor, household: int) -> HouseholdRecord:
        return write(
            engine, records.record_household, actor=actor, clock=clock, task_id=task_id,
            household_id=household, kind="check", result="ok",
        )  # fmt: skip

    # The grid's own holder no longer sees the task; the person named does, and the
    # record says it was theirs.
    with pytest.raises(NotFound, match=f"No task {task_id}"):
        check(holder, households[0])
    record = check(_phone_of(named), households[0])
    assert record.responder_id == named
    # A phone answering for the holder and the named person records as the named one.
    both = Actor(
        user_id=900,
        name="both",
        bindings=(Binding(Role.RESPONDER, a.responder_id, 1), Binding(Role.RESPONDER, named, 1)),
    )
    assert check(both, households[1]).responder_id == named


def test_service_hours_and_points(engine: Engine, wartime: int, clock: ManualClock) -> None:
    actor, a = person(engine, wartime, clock)
    centre = _grid_point(engine, grid_of(a))
    write(
        engine,
        field.check_in,
        actor=actor,
        clock=clock,
        assignment_id=a.id,
        lon=centre.x,
        lat=centre.y,
    )
    clock.advance(timedelta(hours=2, minutes=30))
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=wartime,
    )
    with Session(engine) as session:
        [record] = session.scalars(select(ServiceRecord)).all()
        open_tasks = session.execute(
            select(func.count())
            .select_from(Task)
            .where(Task.status.not_in(["cancelled", "done", "failed"]))
        ).scalar_one()
    assert record.responder_id == a.responder_id
    assert record.hours == 2.5 and record.points == 2.5 * 2 + 5  # the seed's Bishan rule
    assert open_tasks == 0  # stand-down cancelled the rest


def test_a_problem_goes_to_the_street(engine: Engine, wartime: int, clock: ManualClock) -> None:
    actor, a = person(engine, wartime, clock)  # their assignment is where the problem is
    _, batches = write(
        engine,
        field.report_problem,
        actor=actor,
        clock=clock,
        assignment_id=a.id,
        text="3号楼独居老人需要送药",
    )
    assert batches
    with Session(engine) as session:
        note = session.scalars(select(Notification).where(Notification.kind == "problem")).one()
    assert note.recipient == "street:S01" and "送药" in note.text


def test_hours_export_as_csv(
    engine: Engine, wartime: int, clock: ManualClock, migrated_url: str
) -> None:
    import csv
    import io

    from typer.testing import CliRunner

    from mobilize.cli.main import app

    actor, a = person(engine, wartime, clock)
    centre = _grid_point(engine, grid_of(a))
    write(
        engine,
        field.check_in,
        actor=actor,
        clock=clock,
        assignment_id=a.id,
        lon=centre.x,
        lat=centre.y,
    )
    clock.advance(timedelta(hours=3))
    write(
        engine,
        switch.stand_down,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=wartime,
    )
    result = CliRunner().invoke(app, ["hours", "--csv", "--database-url", migrated_url])
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.output)))
    assert float(row["hours"]) == 3.0 and float(row["points"]) == 11.0


def _empty_a_grid(engine: Engine, mobilisation_id: int, clock: ManualClock, grid_id: int) -> None:
    """Nobody holds `grid_id` any more, and nobody free is left to send there."""
    holding = select(Assignment.responder_id).where(Assignment.status.in_(HOLD))
    away_from_now(engine, clock, Responder.id.not_in(holding))
    # Setup: everyone else pinned where they are, so the re-plan after the leave below cannot
    # send a neighbouring member to help (as it would on a real day).
    with transaction(make_sessionmaker(engine)) as session:
        session.execute(
            update(Assignment)
            .where(Assignment.grid_id != grid_id, Assignment.status.in_(HOLD))
            .values(pinned=True)
        )
    with Session(engine) as session:
        holders = list(
            session.scalars(
                select(Assignment.responder_id).where(
                    Assignment.grid_id == grid_id, Assignment.status.in_(HOLD)
                )
            )
        )
    for responder_id in holders:
        write(
            engine,
            assignments.mark_unavailable,
            actor=district_commander(engine),
            clock=clock,
            responder_id=responder_id,
            reason="住院 in hospital",
        )
    with Session(engine) as session:
        assert not _holders(session, grid_id)


def _holders(session: Session, grid_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Assignment.responder_id).where(
                Assignment.grid_id == grid_id, Assignment.status.in_(HOLD)
            )
        )
    )


def _pending_task(engine: Engine, mobilisation_id: int, clock: ManualClock, grid_id: int) -> int:
    [task] = write(
        engine,
        dispatch.dispatch,
        actor=district_commander(engine),
        clock=clock,
        mobilisation_id=mobilisation_id,
        kind="supply_delivery",
        areas=dispatch.AreaChoice(grids=(grid_id,)),
    )
    assert task.status == "pending"  # nobody holds the grid yet
    return int(task.id)


def _phone_of(responder_id: int) -> Actor:
    return Actor(
        user_id=900 + responder_id,
        name=f"r{responder_id}",
        bindings=(Binding(Role.RESPONDER, responder_id, 1),),
    )


@pytest.mark.parametrize("staffed_by", ["risk fix", "reassignment"])
def test_a_task_waiting_on_an_empty_grid_goes_to_whoever_is_sent_there(
    engine: Engine, wartime: int, clock: ManualClock, staffed_by: str
) -> None:
    with Session(engine) as session:
        grids = list(
            session.scalars(
                select(GridState.grid_id)
                .where(GridState.mobilisation_id == wartime, GridState.assigned > 0)
                .order_by(GridState.grid_id)
            )
        )
    empty, elsewhere = grids[0], grids[-1]
    _empty_a_grid(engine, wartime, clock, empty)
    task_id = _pending_task(engine, wartime, clock, empty)
    commander = district_commander(engine)
    if staffed_by == "risk fix":
        with Session(engine) as session:
            newcomer = session.scalars(
                select(Responder.id)
                .where(Responder.id.not_in(select(Assignment.responder_id)))
                .order_by(Responder.id)
            ).first()
        assert newcomer is not None
        write(engine, leave.back_on_duty, actor=commander, clock=clock, responder_id=newcomer)
        write(
            engine, risk_fix.send_to_grid, actor=commander, clock=clock, mobilisation_id=wartime,
            grid_id=empty, responder_id=newcomer, from_grid_id=None,
        )  # fmt: skip
    else:
        with Session(engine) as session:
            moved = session.scalars(
                select(Assignment).where(
                    Assignment.grid_id == elsewhere, Assignment.status.in_(HOLD)
                )
            ).first()
            assert moved is not None
        newcomer = moved.responder_id
        write(
            engine, assignments.reassign, actor=commander, clock=clock, assignment_id=moved.id,
            grid_id=empty, from_grid_id=elsewhere,
        )  # fmt: skip
    with Session(engine) as session:
        assert _holders(session, empty) == [newcomer]
        task = session.get(Task, task_id)
        assert task is not None and task.status == "assigned"
        kinds = session.scalars(
            select(Event.kind).where(Event.subject_type == "task", Event.subject_id == str(task_id))
        ).all()
        household = session.scalars(
            select(Household.id).where(Household.micro_grid_id == empty).order_by(Household.id)
        ).first()
    assert "task.assigned" in kinds
    phone_of_newcomer = _phone_of(newcomer)
    accepted = write(
        engine,
        lifecycle.work_on,
        actor=phone_of_newcomer,
        clock=clock,
        task_id=task_id,
        to="accepted",
    )
    assert accepted.status == "accepted"
    assert household is not None
    record = write(
        engine, records.record_household, actor=phone_of_newcomer, clock=clock, task_id=task_id,
        household_id=household, kind="delivery", result="delivered",
    )  # fmt: skip
    assert record.household_id == household
