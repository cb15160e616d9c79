"""Task lifecycle, bulk generation, dispatch and the household records phones send.

A task without explicit assignees belongs to whoever holds an assignment in its area, so when
the engine moves people the work follows them without rewriting tasks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, literal, or_, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mobilize import idempotency, validation
from mobilize.auth.actor import Actor
from mobilize.auth.scope import in_place, street_in_place, visible, visible_mobilisation
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db.bulk import insert_many_if_absent, insert_rows
from mobilize.db.session import core_rows
from mobilize.errors import DomainError, Forbidden, InvalidInput, NotFound
from mobilize.events import record_event, record_events
from mobilize.mobilisation.locks import lock_communities
from mobilize.models import (
    HOLDING,
    Assignment,
    CheckResult,
    Community,
    Grid,
    GridLevel,
    Household,
    HouseholdRecord,
    HouseholdTag,
    Mobilisation,
    MobilisationArea,
    MobilisationKind,
    MobilisationStatus,
    Responder,
    Role,
    Task,
    TaskAssignee,
    TaskKind,
    TaskStatus,
)

_HOLDING = [s.value for s in HOLDING]
# Who is checked and supplied first (七彩图): the vulnerable before everyone else.
PRIORITY_TAGS = (
    HouseholdTag.ELDERLY,
    HouseholdTag.EMPTY_NEST,
    HouseholdTag.DISABILITY,
    HouseholdTag.HARDSHIP,
)
SUPPLY_TAGS = HouseholdTag.mask(PRIORITY_TAGS)
KINDS_WITH_SUPPLY = {MobilisationKind.EPIDEMIC, MobilisationKind.FLOOD, MobilisationKind.EARTHQUAKE}
TITLES = {
    TaskKind.HOUSEHOLD_CHECK: "入户核查 Household check",
    TaskKind.SUPPLY_DELIVERY: "物资配送 Supply delivery",
    TaskKind.TESTING_SUPPORT: "核酸检测保障 Testing support",
    TaskKind.ORDER_KEEPING: "秩序维护 Order keeping",
    TaskKind.PUBLICITY: "政策宣传 Publicity",
    TaskKind.CODE_CHECK: "扫码查验 Code check",
    TaskKind.OTHER: "其他 Other",
}
# The lifecycle: pending -> assigned -> accepted -> in_progress -> done | failed | cancelled.
TRANSITIONS: dict[TaskStatus, set[TaskStatus]] = {
    TaskStatus.PENDING: {TaskStatus.ASSIGNED, TaskStatus.CANCELLED},
    TaskStatus.ASSIGNED: {
        TaskStatus.ACCEPTED,
        TaskStatus.IN_PROGRESS,
        TaskStatus.DONE,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.ASSIGNED,
    },
    TaskStatus.ACCEPTED: {
        TaskStatus.IN_PROGRESS,
        TaskStatus.DONE,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.ASSIGNED,
    },
    TaskStatus.IN_PROGRESS: {
        TaskStatus.DONE,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.ASSIGNED,
    },
    TaskStatus.DONE: set(),
    TaskStatus.FAILED: set(),
    TaskStatus.CANCELLED: set(),
}
MAX_AREAS = 20_000


class TaskTransitionError(DomainError):
    code = "INVALID_TRANSITION"

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"任务当前为 {current}，不能变为 {wanted}: the task is {current}")
        self.current = current


class AlreadyRecorded(DomainError):
    code = "ALREADY_RECORDED"

    def __init__(self, by: str, at: datetime, result: str) -> None:
        super().__init__(f"该户已由{by}登记 Already recorded by {by} at {at:%H:%M} ({result})")
        self.by, self.at, self.result = by, at, result


# -- generation and dispatch ----------------------------------------------------------------


def generate_for_activation(
    session: Session, *, mobilisation: Mobilisation, by: str, clock: Clock
) -> dict[str, int]:
    """One household check per micro-grid in scope, and supply deliveries to tagged households
    where the kind needs them; in bulk."""
    now = clock.now()
    grids = session.execute(
        select(Grid.id, Grid.community_id, Grid.code)
        .join(MobilisationArea, MobilisationArea.community_id == Grid.community_id)
        .where(
            MobilisationArea.mobilisation_id == mobilisation.id, Grid.level == GridLevel.MICRO.value
        )
        .order_by(Grid.id)
    ).all()
    staffed = set(
        session.scalars(
            select(Assignment.grid_id).where(
                Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(_HOLDING)
            )
        )
    )
    tagged = dict(
        session.execute(
            select(Household.micro_grid_id, func.count())
            .where(
                Household.micro_grid_id.in_([g.id for g in grids]),
                Household.tags.op("&")(SUPPLY_TAGS) != 0,
            )
            .group_by(Household.micro_grid_id)
        ).all()
    )
    with_supply = MobilisationKind(mobilisation.kind) in KINDS_WITH_SUPPLY
    rows: list[dict[str, Any]] = []

    def task(kind: TaskKind, grid: Any, tags: int, priority: int) -> dict[str, Any]:
        return {
            "mobilisation_id": mobilisation.id,
            "kind": kind.value,
            "title": TITLES[kind],
            "grid_id": grid.id,
            "community_id": grid.community_id,
            "target_tags": tags,
            "priority": priority,
            "due_at": mobilisation.deadline,
            "status": (TaskStatus.ASSIGNED if grid.id in staffed else TaskStatus.PENDING).value,
            "reason": None,
            "created_by": by,
            "created_at": now,
            "updated_at": now,
        }

    for grid in grids:
        rows.append(task(TaskKind.HOUSEHOLD_CHECK, grid, 0, 2))
        if with_supply and tagged.get(grid.id):
            rows.append(task(TaskKind.SUPPLY_DELIVERY, grid, SUPPLY_TAGS, 1))
    insert_rows(session, Task.__table__, rows)  # type: ignore[arg-type]
    counts = {
        "household_check": len(grids),
        "supply_delivery": sum(r["kind"] == "supply_delivery" for r in rows),
    }
    record_event(
        session,
        clock=clock,
        actor=by,
        kind="tasks.generated",
        subject_type="mobilisation",
        subject_id=str(mobilisation.id),
        mobilisation_id=mobilisation.id,
        payload=counts,
    )
    return counts


def _commanding(actor: Actor) -> bool:
    return bool(
        {Role.DISTRICT_COMMANDER, Role.STREET_COMMANDER, Role.COMMUNITY_SECRETARY} & actor.roles
    )


def _active_mobilisation(session: Session, actor: Actor, mobilisation_id: int) -> Mobilisation:
    found = visible_mobilisation(session, actor, mobilisation_id)
    if found.status != MobilisationStatus.ACTIVE.value:
        raise InvalidInput("mobilisation", "the mobilisation has stood down")
    return found


@dataclass(frozen=True)
class AreaChoice:
    """Where dispatched work goes: listed micro-grids, every micro-grid of some communities or
    streets, or communities as a whole (one task each)."""

    grids: tuple[int, ...] = ()
    micro_grids_of_communities: tuple[int, ...] = ()
    micro_grids_of_streets: tuple[int, ...] = ()
    communities: tuple[int, ...] = ()


def dispatch(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    mobilisation_id: int,
    kind: str,
    areas: AreaChoice,
    title: str | None = None,
    priority: int = 3,
    due_at: datetime | None = None,
    target_tags: int = 0,
) -> list[Task]:
    """One task per area, in one go; only areas of the mobilisation the actor commands."""
    if not _commanding(actor):
        raise Forbidden("dispatchTask")
    mobilisation = _active_mobilisation(session, actor, mobilisation_id)
    try:
        task_kind = TaskKind(kind)
    except ValueError:
        raise InvalidInput("kind", f"{kind!r} is not a task kind") from None
    if not 1 <= priority <= 5:
        raise InvalidInput("priority", "must be 1 (most urgent) to 5")
    title = validation.text("title", title or TITLES[task_kind], max_len=200)
    due = due_at or mobilisation.deadline
    if due.tzinfo is None:
        raise InvalidInput("dueAt", "needs a timezone")
    in_scope = set(
        session.scalars(
            select(MobilisationArea.community_id).where(
                MobilisationArea.mobilisation_id == mobilisation.id
            )
        )
    )
    targets: list[tuple[int | None, int]] = []  # (grid or None, community)
    micro = select(Grid.id, Grid.community_id).where(
        Grid.level == GridLevel.MICRO.value, visible(actor, Grid)
    )
    wanted = [micro.where(Grid.id.in_(areas.grids))] if areas.grids else []
    if areas.micro_grids_of_communities:
        wanted.append(micro.where(Grid.community_id.in_(areas.micro_grids_of_communities)))
    for street_id in areas.micro_grids_of_streets:  # a street wider than your place: refused
        street_in_place(session, actor, street_id)
    if areas.micro_grids_of_streets:
        wanted.append(
            micro.join(Community, Community.id == Grid.community_id).where(
                Community.street_id.in_(areas.micro_grids_of_streets)
            )
        )
    seen: set[int] = set()
    for stmt in wanted:
        for grid_id, community_id in session.execute(stmt.order_by(Grid.id)).all():
            if grid_id not in seen:
                seen.add(grid_id)
                targets.append((grid_id, community_id))
    if areas.grids and not set(areas.grids) <= seen:
        raise InvalidInput("grids", "some micro-grids are not yours or do not exist")
    if areas.communities:
        mine = set(
            session.scalars(
                select(Community.id).where(
                    Community.id.in_(areas.communities), visible(actor, Community)
                )
            )
        )
        if mine != set(areas.communities):
            raise InvalidInput("communities", "some communities are not yours or do not exist")
        targets += [(None, c) for c in sorted(mine)]
    validation.items("areas", targets, max_items=MAX_AREAS, min_items=1)
    outside = {c for _, c in targets} - in_scope
    if outside:
        raise InvalidInput("areas", "some areas are outside this mobilisation")
    now = clock.now()
    staffed_grids = set(
        session.scalars(
            select(Assignment.grid_id).where(
                Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(_HOLDING)
            )
        )
    )
    staffed_communities = set(
        session.scalars(
            select(Assignment.community_id).where(
                Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(_HOLDING)
            )
        )
    )
    tasks = []
    for grid_id, community_id in targets:
        staffed = grid_id in staffed_grids if grid_id else community_id in staffed_communities
        tasks.append(
            Task(
                mobilisation_id=mobilisation.id,
                kind=task_kind.value,
                title=title,
                grid_id=grid_id,
                community_id=community_id,
                target_tags=target_tags,
                priority=priority,
                due_at=due,
                status=(TaskStatus.ASSIGNED if staffed else TaskStatus.PENDING).value,
                created_by=actor.label,
                created_at=now,
                updated_at=now,
            )
        )
    session.add_all(tasks)
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="tasks.dispatched",
        subject_type="mobilisation",
        subject_id=str(mobilisation.id),
        mobilisation_id=mobilisation.id,
        payload={"kind": task_kind.value, "tasks": [t.id for t in tasks], "priority": priority},
    )
    return tasks


def promote_staffed(
    session: Session, *, mobilisation_id: int, grid_ids: Iterable[int], clock: Clock, by: str
) -> list[int]:
    """Pending tasks become assigned once someone holds their area: a task dispatched to a
    micro-grid (or a community) nobody held waits `pending`, and the engine, a reassignment
    or a risk fix that staffs it hands it to the new holder, who may then accept and record.
    Returns the tasks promoted, each with a `task.assigned` event."""
    ids = sorted(set(grid_ids))
    pending = select(Task.id).where(
        Task.mobilisation_id == mobilisation_id, Task.status == TaskStatus.PENDING.value
    )
    if not ids or session.scalar(pending.limit(1)) is None:  # the usual case: nothing waits
        return []
    held = select(Assignment.grid_id).where(
        Assignment.mobilisation_id == mobilisation_id,
        Assignment.grid_id.in_(ids),
        Assignment.status.in_(_HOLDING),
    )
    communities = select(Grid.community_id).where(Grid.id.in_(held))
    waiting = session.execute(
        select(Task.id, Task.grid_id)
        .where(
            Task.mobilisation_id == mobilisation_id,
            Task.status == TaskStatus.PENDING.value,
            or_(
                Task.grid_id.in_(held),
                (Task.grid_id.is_(None)) & Task.community_id.in_(communities),
            ),
        )
        .order_by(Task.id)
    ).all()
    if not waiting:
        return []
    now = clock.now()
    session.execute(
        update(Task)
        .where(Task.id.in_([t.id for t in waiting]), Task.status == TaskStatus.PENDING.value)
        .values(status=TaskStatus.ASSIGNED.value, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    record_events(
        session,
        clock=clock,
        actor=by,
        events=[
            ("task.assigned", "task", str(t.id), {"grid": t.grid_id, "cause": "staffed"})
            for t in waiting
        ],
        mobilisation_id=mobilisation_id,
    )
    return [t.id for t in waiting]


# -- one task -------------------------------------------------------------------------------


def get_task(session: Session, actor: Actor, task_id: int) -> Task:
    found = session.scalar(select(Task).where(Task.id == task_id, visible(actor, Task)))
    if found is None:
        raise NotFound(f"没有这个任务 No task {task_id}")
    return found


def _move(
    session: Session, task: Task, to: TaskStatus, now: datetime, reason: str | None = None
) -> None:
    """Change the status if the lifecycle allows it from the status the row has now."""
    current = TaskStatus(task.status)
    allowed = [s.value for s, nxt in TRANSITIONS.items() if to in nxt]
    changed = session.execute(
        update(Task)
        .where(Task.id == task.id, Task.status.in_(allowed))
        .values(status=to.value, updated_at=now, reason=reason if reason else Task.reason)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        session.refresh(task)
        raise TaskTransitionError(task.status if task.status else current.value, to.value)
    # The row now says what we wrote: mirror it without another round trip.
    set_committed_value(task, "status", to.value)
    set_committed_value(task, "updated_at", now)
    if reason:
        set_committed_value(task, "reason", reason)


def _event(
    session: Session, clock: Clock, actor: Actor, task: Task, kind: str, **payload: Any
) -> None:
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind=kind,
        subject_type="task",
        subject_id=str(task.id),
        mobilisation_id=task.mobilisation_id,
        payload={"grid": task.grid_id, **payload},
    )


def people_of(session: Session, task: Task) -> list[int]:
    """Who does this task: its explicit assignees, else whoever holds the area."""
    # Both in one statement (every phone's record asks): the explicit ones are marked.
    if task.grid_id is not None:
        statement, area = _PEOPLE_OF_GRID, task.grid_id
    else:
        statement, area = _PEOPLE_OF_COMMUNITY, task.community_id
    rows = core_rows(session, statement, {"task": task.id, "m": task.mobilisation_id, "area": area})
    explicit = [r for is_explicit, r in rows if is_explicit]
    # Sorted here, not by the database: an ORDER BY responder_id tempts a planner without
    # statistics to walk the whole mobilisation in responder order instead of the grid's rows.
    return sorted(explicit or [r for _, r in rows])


# Built once: every phone's record asks these.
_ASSIGNEES = select(literal(1).label("explicit"), TaskAssignee.responder_id).where(
    TaskAssignee.task_id == bindparam("task")
)
_HOLDERS = select(literal(0).label("explicit"), Assignment.responder_id).where(
    Assignment.mobilisation_id == bindparam("m"), Assignment.status.in_(_HOLDING)
)
_PEOPLE_OF_GRID = union_all(_ASSIGNEES, _HOLDERS.where(Assignment.grid_id == bindparam("area")))
_PEOPLE_OF_COMMUNITY = union_all(
    _ASSIGNEES, _HOLDERS.where(Assignment.community_id == bindparam("area"))
)


def _doer(session: Session, actor: Actor, task: Task) -> int:
    found = _doer_or_none(session, actor, task)
    if found is None:
        raise Forbidden("this task is not yours")
    return found


def _doer_or_none(session: Session, actor: Actor, task: Task) -> int | None:
    """Which of the caller's people does this task, if any."""
    mine = [b.scope_id for b in actor.bindings if b.role is Role.RESPONDER]
    people = set(people_of(session, task))
    for responder_id in mine:
        if responder_id in people:
            return int(responder_id)  # type: ignore[arg-type]
    return None


def reassign_task(
    session: Session, *, actor: Actor, clock: Clock, task_id: int, responder_ids: list[int]
) -> Task:
    """Give a task to named people (in the mobilisation, in your scope)."""
    if not _commanding(actor):
        raise Forbidden("reassignTask")
    task = get_task(session, actor, task_id)
    validation.items("responders", responder_ids, max_items=100, min_items=1)
    # Where they work decides, not whether the caller can see them: a cadre of a unit paired
    # here but working in another street is not this command centre's to give work to.
    visible_ok = set(
        session.scalars(
            select(Assignment.responder_id).where(
                Assignment.mobilisation_id == task.mobilisation_id,
                Assignment.responder_id.in_(responder_ids),
                Assignment.status.in_(_HOLDING),
                in_place(actor, Assignment.community_id),
            )
        )
    )
    if visible_ok != set(responder_ids):
        raise InvalidInput(
            "responders", "everyone must be assigned in this mobilisation and in your scope"
        )
    _move(session, task, TaskStatus.ASSIGNED, clock.now())
    session.execute(TaskAssignee.__table__.delete().where(TaskAssignee.task_id == task.id))
    session.add_all(TaskAssignee(task_id=task.id, responder_id=r) for r in sorted(visible_ok))
    session.flush()
    _event(session, clock, actor, task, "task.reassigned", responders=sorted(visible_ok))
    return task


def cancel_task(session: Session, *, actor: Actor, clock: Clock, task_id: int, reason: str) -> Task:
    if not _commanding(actor):
        raise Forbidden("cancelTask")
    reason = validation.text("reason", reason, max_len=500)
    task = get_task(session, actor, task_id)
    _move(session, task, TaskStatus.CANCELLED, clock.now(), reason)
    _event(session, clock, actor, task, "task.cancelled", reason=reason)
    return task


def set_priority(
    session: Session, *, actor: Actor, clock: Clock, task_id: int, priority: int
) -> Task:
    if not _commanding(actor):
        raise Forbidden("setTaskPriority")
    if not 1 <= priority <= 5:
        raise InvalidInput("priority", "must be 1 (most urgent) to 5")
    task = get_task(session, actor, task_id)
    if TaskStatus(task.status) in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED):
        raise TaskTransitionError(task.status, "reprioritised")
    task.priority, task.updated_at = priority, clock.now()
    session.flush()
    _event(session, clock, actor, task, "task.priority_changed", priority=priority)
    return task


def work_on(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    to: str,
    note: str | None = None,
    client_mutation_id: str | None = None,
) -> Task:
    """The doer accepts, completes or fails a task (fail needs a reason)."""
    wanted = TaskStatus(to)
    if wanted not in (TaskStatus.ACCEPTED, TaskStatus.DONE, TaskStatus.FAILED):
        raise InvalidInput("status", "accept, complete or fail")
    note = (
        validation.text("reason", note, max_len=500)
        if note or wanted is TaskStatus.FAILED
        else None
    )
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=client_mutation_id,
        operation=f"task.{to}",
        clock=clock,
        request={"task": task_id, "note": note},
    )
    task = get_task(session, actor, task_id)
    if earlier is not None:
        return task
    _doer(session, actor, task)
    _move(session, task, wanted, clock.now(), note)
    _event(session, clock, actor, task, f"task.{wanted.value}", note=note)
    idempotency.remember(
        session,
        actor=actor.label,
        key=client_mutation_id,
        result={"task": task.id, "status": task.status},
    )
    return task


# -- households -----------------------------------------------------------------------------


# What a household list shows. The geometry is left out: a list of fifty is read on every
# phone's screen, and only a map asks a household's `location` (the API loads it apart).
LISTED_HOUSEHOLD = (Household.id, Household.micro_grid_id, Household.code, Household.size,
                    Household.tags)  # fmt: skip


def ordered_households(session: Session, task: Task) -> list[Row[Any]]:
    """The task's households (`LISTED_HOUSEHOLD`), the vulnerable first (七彩图), then by code."""
    stmt = select(*LISTED_HOUSEHOLD)
    if task.grid_id is not None:
        stmt = stmt.where(Household.micro_grid_id == task.grid_id)
    else:
        stmt = stmt.join(Grid, Grid.id == Household.micro_grid_id).where(
            Grid.community_id == task.community_id
        )
    if task.target_tags:
        stmt = stmt.where(Household.tags.op("&")(task.target_tags) != 0)
    return in_visiting_order(core_rows(session, stmt))


def in_visiting_order(households: Iterable[Row[Any]]) -> list[Row[Any]]:
    return sorted(households, key=lambda h: visiting_rank(h.tags, h.code))


def household_records(
    session: Session, mobilisation_id: int, household_ids: list[int]
) -> dict[tuple[int, str], Row[Any]]:
    """What was recorded at these households in the mobilisation, by (household, kind)."""
    r = HouseholdRecord
    rows = core_rows(
        session,
        select(r.id, r.household_id, r.kind, r.result, r.note, r.recorded_at).where(
            r.mobilisation_id == mobilisation_id, r.household_id.in_(household_ids)
        ),
    )
    return {(row.household_id, row.kind): row for row in rows}


def visiting_rank(tags: int, code: str) -> tuple[int, str]:
    """Where a household comes in the visiting order: by its most urgent tag, then code."""
    for i, tag in enumerate(PRIORITY_TAGS):
        if tags & tag.bit:
            return i, code
    return len(PRIORITY_TAGS), code


def _in_task(session: Session, task: Task, household: Any) -> bool:
    """Whether a household is one of the task's (its area, its tags), without listing them."""
    if task.target_tags and not household.tags & task.target_tags:
        return False
    if task.grid_id is not None:
        return household.micro_grid_id == task.grid_id
    community = session.scalar(select(Grid.community_id).where(Grid.id == household.micro_grid_id))
    return community == task.community_id


@dataclass(frozen=True)
class HouseholdEntry:
    """One household's result in a batch a phone sends (its checks since it last synced)."""

    household_id: int
    result: str
    note: str | None = None


@dataclass
class RecordedBatch:
    records: list[HouseholdRecord]  # recorded now (or earlier under the same client id)
    taken: dict[int, AlreadyRecorded]  # household -> who recorded it first, not recorded again


def record_household(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    household_id: int,
    kind: str,
    result: str,
    note: str | None = None,
    client_mutation_id: str | None = None,
) -> HouseholdRecord:
    """One household checked (ok, needs_help, absent, refused) or supplied (delivered,
    absent, refused). Two phones racing on one household: one record, the other is told who
    was first."""
    batch = _record(
        session,
        actor=actor,
        clock=clock,
        task_id=task_id,
        kind=kind,
        entries=[HouseholdEntry(household_id, result, note)],
        key=client_mutation_id,
        operation=f"household.{kind}",
        request={"task": task_id, "household": household_id, "result": result, "note": note},
        field=lambda _i, name: name,
    )
    if household_id in batch.taken:
        raise batch.taken[household_id]
    return batch.records[0]


def record_households(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    kind: str,
    entries: list[HouseholdEntry],
    client_mutation_id: str | None = None,
) -> RecordedBatch:
    """A phone's checks or deliveries since it last synced, in one transaction: all land or,
    when one is invalid (named by its index), none. Households another phone recorded first
    are left as they are and reported in `taken`."""
    if not 1 <= len(entries) <= MAX_BATCH:
        raise InvalidInput("entries", f"between 1 and {MAX_BATCH} households")
    return _record(
        session,
        actor=actor,
        clock=clock,
        task_id=task_id,
        kind=kind,
        entries=entries,
        key=client_mutation_id,
        operation=f"households.{kind}",
        request={
            "task": task_id,
            "entries": [[e.household_id, e.result, e.note] for e in entries],
        },
        field=lambda i, name: f"entries[{i}].{name}",
    )


MAX_BATCH = 500


# Core rows on the session's connection: the ORM's result handling cost more than the query.
_H = Household.__table__.c
_HOUSEHOLDS = select(_H.id, _H.micro_grid_id, _H.tags, _H.code).where(
    _H.id.in_(bindparam("ids", expanding=True))
)
_TASK_AND_MOBILISATION = (
    select(Task, Mobilisation)
    .join(Mobilisation, Mobilisation.id == Task.mobilisation_id)
    .where(Task.id == bindparam("task"))
)


def _record(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    task_id: int,
    kind: str,
    entries: list[HouseholdEntry],
    key: str | None,
    operation: str,
    request: dict[str, Any],
    field: Any,
) -> RecordedBatch:
    allowed = (
        {r.value for r in CheckResult} if kind == "check" else {"delivered", "absent", "refused"}
    )
    notes: list[str | None] = []
    seen: set[int] = set()
    for i, entry in enumerate(entries):
        if entry.result not in allowed:
            raise InvalidInput(
                field(i, "result"), f"{entry.result!r} is not one of {', '.join(sorted(allowed))}"
            )
        if entry.household_id in seen:
            raise InvalidInput(field(i, "household"), "the same household twice in one batch")
        seen.add(entry.household_id)
        notes.append(
            validation.text(field(i, "note"), entry.note, max_len=1000) if entry.note else None
        )
    earlier = idempotency.claim(
        session, actor=actor.label, key=key, operation=operation, clock=clock, request=request
    )
    if earlier is not None:
        ids = earlier.get("records", [earlier.get("record")])
        found = session.scalars(select(HouseholdRecord).where(HouseholdRecord.id.in_(ids))).all()
        return RecordedBatch(sorted(found, key=lambda r: ids.index(r.id)), {})
    # By primary key, then "is it theirs" from the task's own people (after the lock, which
    # keeps who holds the grid still): a task that is not theirs answers as if it did not
    # exist, as `get_task` would, without its scope query, most of a phone's sync otherwise.
    # With its mobilisation (what the grid's recount needs) in the same statement.
    found = session.execute(_TASK_AND_MOBILISATION, {"task": task_id}).one_or_none()
    if found is None:
        raise NotFound(f"没有这个任务 No task {task_id}")
    task, mobilisation = found
    # Shared: households are most of a drill's writes, and a record touches only its task and
    # its grid's state (in that order), so records in one community need not queue.
    lock_communities(session, task.mobilisation_id, [task.community_id], shared=True)
    responder_id = _doer_or_none(session, actor, task)
    if responder_id is None:
        raise NotFound(f"没有这个任务 No task {task_id}")
    expected = TaskKind.HOUSEHOLD_CHECK if kind == "check" else TaskKind.SUPPLY_DELIVERY
    if task.kind != expected.value:
        raise InvalidInput("task", f"this is a {task.kind} task, not a {expected.value} task")
    # Only what a record needs: not the geometry, whose parsing took a quarter of a sync.
    households = {h.id: h for h in core_rows(session, _HOUSEHOLDS, {"ids": list(seen)})}
    for i, entry in enumerate(entries):
        household = households.get(entry.household_id)
        if household is None or not _in_task(session, task, household):
            raise InvalidInput(field(i, "household"), "not one of this task's households")
    if TaskStatus(task.status) in (TaskStatus.ASSIGNED, TaskStatus.ACCEPTED):
        try:
            _move(session, task, TaskStatus.IN_PROGRESS, clock.now())
        except TaskTransitionError:
            # Another phone's first record started it meanwhile: work on.
            if task.status != TaskStatus.IN_PROGRESS.value:
                raise
    elif TaskStatus(task.status) is not TaskStatus.IN_PROGRESS:
        raise TaskTransitionError(task.status, "in_progress")
    now = clock.now()
    rows = [
        {
            "mobilisation_id": task.mobilisation_id,
            "task_id": task.id,
            "household_id": entry.household_id,
            "responder_id": responder_id,
            "kind": kind,
            "result": entry.result,
            "note": note,
            "recorded_at": now,
        }
        for entry, note in zip(entries, notes, strict=True)
    ]
    inserted = dict(
        (household_id, record_id)
        for record_id, household_id in insert_many_if_absent(
            session,
            HouseholdRecord.__table__,  # type: ignore[arg-type]
            rows,
            ("id", "household_id"),
        )
    )
    records = []
    for row in rows:
        record_id = inserted.get(row["household_id"])
        if record_id is None:
            continue
        records.append(HouseholdRecord(id=record_id, **row))
        household = households[row["household_id"]]
        record_event(
            session,
            clock=clock,
            actor=actor.label,
            kind="household.checked" if kind == "check" else "household.supplied",
            subject_type="household",
            subject_id=household.code,
            mobilisation_id=task.mobilisation_id,
            payload={
                "task": task.id,
                "grid": household.micro_grid_id,
                "result": row["result"],
                "responder": responder_id,
                "tags": household.tags,
            },
        )
    taken = {}
    missing = [h for h in seen if h not in inserted]
    if missing:
        for first, name in session.execute(
            select(HouseholdRecord, Responder.name)
            .join(Responder, Responder.id == HouseholdRecord.responder_id)
            .where(
                HouseholdRecord.mobilisation_id == task.mobilisation_id,
                HouseholdRecord.household_id.in_(missing),
                HouseholdRecord.kind == kind,
            )
        ):
            taken[first.household_id] = AlreadyRecorded(name, first.recorded_at, first.result)
    if kind == "check" and records:
        added = Counter(households[r.household_id].micro_grid_id for r in records)
        coverage.track(
            session, mobilisation=mobilisation, grid_ids=added, clock=clock, checks_added=added
        )
    if len(entries) == 1 and records:
        result: dict[str, Any] = {"record": records[0].id}
    else:
        result = {"records": [r.id for r in records]}
    idempotency.remember(session, actor=actor.label, key=key, result=result)
    return RecordedBatch(records, taken)


def my_tasks(session: Session, actor: Actor) -> list[Task]:
    """The open tasks the signed-in responder does, most urgent first."""
    mine = [b.scope_id for b in actor.bindings if b.role is Role.RESPONDER]
    if not mine:
        return []
    holding = (
        select(Assignment.mobilisation_id, Assignment.grid_id, Assignment.community_id)
        .where(Assignment.responder_id.in_(mine), Assignment.status.in_(_HOLDING))
        .subquery()
    )
    explicit = select(TaskAssignee.task_id).where(TaskAssignee.responder_id.in_(mine))
    area = select(Task.id).join(
        holding,
        (holding.c.mobilisation_id == Task.mobilisation_id)
        & (
            or_(
                Task.grid_id == holding.c.grid_id,
                (Task.grid_id.is_(None)) & (Task.community_id == holding.c.community_id),
            )
        ),
    )
    without_names = ~Task.id.in_(select(TaskAssignee.task_id))
    rows = session.scalars(
        select(Task)
        .where(
            or_(Task.id.in_(explicit), Task.id.in_(area) & without_names),
            Task.status.not_in(
                [TaskStatus.DONE.value, TaskStatus.FAILED.value, TaskStatus.CANCELLED.value]
            ),
        )
        .order_by(Task.priority, Task.due_at, Task.id)
    ).all()
    return list(rows)
