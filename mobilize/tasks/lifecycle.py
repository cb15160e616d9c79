"""One task's lifecycle (pending → assigned → accepted → in progress → done | failed |
cancelled), who does it, and the commands on it.

A task without explicit assignees belongs to whoever holds an assignment in its area, so when
the engine moves people the work follows them without rewriting tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mobilize import idempotency, validation
from mobilize.auth.actor import DISPATCH_ROLES, Actor
from mobilize.auth.scope import in_place, visible
from mobilize.clock import Clock
from mobilize.db import prepared
from mobilize.db.one_of import one_of
from mobilize.db.prepared import Prepared
from mobilize.db.session import core_rows
from mobilize.errors import DomainError, Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.models import (
    HOLDING,
    HOLDING_VALUES,
    Assignment,
    Task,
    TaskAssignee,
    TaskStatus,
    table_of,
)

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


class TaskTransitionError(DomainError):
    code = "INVALID_TRANSITION"

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"任务当前为 {current}，不能变为 {wanted}: the task is {current}")
        self.current = current


def get_task(session: Session, actor: Actor, task_id: int) -> Task:
    found = session.scalar(select(Task).where(Task.id == task_id, visible(actor, Task)))
    if found is None:
        raise NotFound(f"没有这个任务 No task {task_id}")
    return found


def _move_to(to: TaskStatus) -> Prepared:
    """The statement that moves a task to `to` from a status that may lead there."""
    task = table_of(Task).c
    allowed = [s.value for s, nxt in TRANSITIONS.items() if to in nxt]
    return Prepared(
        update(table_of(Task))
        .where(task.id == bindparam("id"), one_of(task.status, allowed))
        .values(
            status=to.value,
            updated_at=bindparam("now", type_=task.updated_at.type),
            reason=func.coalesce(bindparam("reason", type_=task.reason.type), task.reason),
        )
    )


# Built once: the first record of every check task moves it (a drill makes thousands).
_MOVES = {to: _move_to(to) for to in TaskStatus}


def move_task(
    session: Session, task: Task, to: TaskStatus, now: datetime, reason: str | None = None
) -> None:
    """Change the status if the lifecycle allows it from the status the row has now."""
    current = TaskStatus(task.status)
    changed = prepared.run(
        session, _MOVES[to], {"id": task.id, "now": now, "reason": reason or None}
    )
    if changed != 1:
        session.refresh(task)
        raise TaskTransitionError(task.status if task.status else current.value, to.value)
    # The row now says what we wrote: mirror it without another round trip.
    set_committed_value(task, "status", to.value)
    set_committed_value(task, "updated_at", now)
    if reason:
        set_committed_value(task, "reason", reason)


def task_event(
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


def doer_of_task(mine: str) -> Any:
    """A column: which of `mine` (the name of a parameter: the caller's responder ids) does the
    task in the statement's `Task` row, the lowest id first; NULL if none. A task's people
    are its explicit assignees, else whoever holds its area (its grid, or its community for
    a community's task). A column, not a query of its own, so a phone's sync reads its task
    and whether it is theirs in one statement."""
    assigned = select(TaskAssignee.responder_id).where(TaskAssignee.task_id == Task.id)
    holding = select(func.min(Assignment.responder_id)).where(
        Assignment.mobilisation_id == Task.mobilisation_id,
        one_of(Assignment.status, HOLDING_VALUES),
        one_of(Assignment.responder_id, mine),
        or_(
            Assignment.grid_id == Task.grid_id,
            and_(Task.grid_id.is_(None), Assignment.community_id == Task.community_id),
        ),
    )
    return case(
        (
            assigned.exists(),
            assigned.with_only_columns(func.min(TaskAssignee.responder_id))
            .where(one_of(TaskAssignee.responder_id, mine))
            .scalar_subquery(),
        ),
        else_=holding.scalar_subquery(),
    )


_DOER = select(doer_of_task("mine")).where(Task.id == bindparam("task"))


def doer(session: Session, actor: Actor, task: Task) -> int:
    found = doer_or_none(session, actor, task)
    if found is None:
        raise Forbidden("this task is not yours")
    return found


def doer_or_none(session: Session, actor: Actor, task: Task) -> int | None:
    """Which of the caller's people does this task, if any (`doer_of_task`)."""
    if not actor.responder_ids:
        return None
    found = core_rows(session, _DOER, {"task": task.id, "mine": list(actor.responder_ids)})
    return None if not found or found[0][0] is None else int(found[0][0])


def reassign_task(
    session: Session, *, actor: Actor, clock: Clock, task_id: int, responder_ids: list[int]
) -> Task:
    """Give a task to named people (in the mobilisation, in your scope)."""
    if not actor.holds_any(DISPATCH_ROLES):
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
                Assignment.status.in_(HOLDING),
                in_place(actor, Assignment.community_id),
            )
        )
    )
    if visible_ok != set(responder_ids):
        raise InvalidInput(
            "responders", "everyone must be assigned in this mobilisation and in your scope"
        )
    move_task(session, task, TaskStatus.ASSIGNED, clock.now())
    session.execute(table_of(TaskAssignee).delete().where(TaskAssignee.task_id == task.id))
    session.add_all(TaskAssignee(task_id=task.id, responder_id=r) for r in sorted(visible_ok))
    session.flush()
    task_event(session, clock, actor, task, "task.reassigned", responders=sorted(visible_ok))
    return task


def cancel_task(session: Session, *, actor: Actor, clock: Clock, task_id: int, reason: str) -> Task:
    if not actor.holds_any(DISPATCH_ROLES):
        raise Forbidden("cancelTask")
    reason = validation.text("reason", reason, max_len=500)
    task = get_task(session, actor, task_id)
    move_task(session, task, TaskStatus.CANCELLED, clock.now(), reason)
    task_event(session, clock, actor, task, "task.cancelled", reason=reason)
    return task


def set_priority(
    session: Session, *, actor: Actor, clock: Clock, task_id: int, priority: int
) -> Task:
    if not actor.holds_any(DISPATCH_ROLES):
        raise Forbidden("setTaskPriority")
    if not 1 <= priority <= 5:
        raise InvalidInput("priority", "must be 1 (most urgent) to 5")
    task = get_task(session, actor, task_id)
    if TaskStatus(task.status) in (TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED):
        raise TaskTransitionError(task.status, "reprioritised")
    task.priority, task.updated_at = priority, clock.now()
    session.flush()
    task_event(session, clock, actor, task, "task.priority_changed", priority=priority)
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
    doer(session, actor, task)
    move_task(session, task, wanted, clock.now(), note)
    task_event(session, clock, actor, task, f"task.{wanted.value}", note=note)
    idempotency.remember(
        session,
        actor=actor.label,
        key=client_mutation_id,
        result={"task": task.id, "status": task.status},
    )
    return task


def my_tasks(session: Session, actor: Actor) -> list[Task]:
    """The open tasks the signed-in responder does, most urgent first."""
    mine = actor.responder_ids
    if not mine:
        return []
    holding = (
        select(Assignment.mobilisation_id, Assignment.grid_id, Assignment.community_id)
        .where(Assignment.responder_id.in_(mine), Assignment.status.in_(HOLDING))
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
