"""Where tasks come from: the activation's bulk generation, a commander's dispatch to chosen
areas, and promoting pending tasks once someone holds their area."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import DISPATCH_ROLES, Actor
from mobilize.auth.scope import street_in_place, visible, visible_mobilisation
from mobilize.clock import Clock
from mobilize.db.bulk import insert_rows
from mobilize.db.one_of import one_of
from mobilize.errors import Forbidden, InvalidInput
from mobilize.events import record_event, record_events
from mobilize.models import (
    HOLDING,
    Assignment,
    Community,
    Grid,
    GridLevel,
    Household,
    HouseholdTag,
    Mobilisation,
    MobilisationArea,
    MobilisationKind,
    MobilisationStatus,
    Task,
    TaskKind,
    TaskStatus,
    table_of,
)

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


MAX_AREAS = 20_000


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
            MobilisationArea.mobilisation_id == mobilisation.id,
            Grid.level == GridLevel.MICRO.value,
            Grid.current(),
        )
        .order_by(Grid.id)
    ).all()
    staffed = set(
        session.scalars(
            select(Assignment.grid_id).where(
                Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(HOLDING)
            )
        )
    )
    tagged = dict(
        session.execute(
            select(Household.micro_grid_id, func.count())
            .where(
                one_of(Household.micro_grid_id, [g.id for g in grids]),
                Household.tags.op("&")(SUPPLY_TAGS) != 0,
                Household.current(),
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
    insert_rows(session, table_of(Task), rows)
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
    if not actor.holds_any(DISPATCH_ROLES):
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
        Grid.level == GridLevel.MICRO.value, Grid.current(), visible(actor, Grid)
    )
    wanted = [micro.where(one_of(Grid.id, areas.grids))] if areas.grids else []
    if areas.micro_grids_of_communities:
        wanted.append(micro.where(one_of(Grid.community_id, areas.micro_grids_of_communities)))
    for street_id in areas.micro_grids_of_streets:  # a street wider than your place: refused
        street_in_place(session, actor, street_id)
    if areas.micro_grids_of_streets:
        wanted.append(
            micro.join(Community, Community.id == Grid.community_id).where(
                one_of(Community.street_id, areas.micro_grids_of_streets)
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
                    one_of(Community.id, areas.communities), visible(actor, Community)
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
                Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(HOLDING)
            )
        )
    )
    staffed_communities = set(
        session.scalars(
            select(Assignment.community_id).where(
                Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(HOLDING)
            )
        )
    )
    tasks = []
    for target_grid, community_id in targets:
        staffed = (
            target_grid in staffed_grids if target_grid else community_id in staffed_communities
        )
        tasks.append(
            Task(
                mobilisation_id=mobilisation.id,
                kind=task_kind.value,
                title=title,
                grid_id=target_grid,
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
        one_of(Assignment.grid_id, ids),
        Assignment.status.in_(HOLDING),
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
