"""Tasks in the API: dispatch from command centres, the lifecycle, and household records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.orm import Session
from strawberry import Private

from mobilize import errors
from mobilize import models as m
from mobilize.api.common import ContextInfo, decode_id, decode_ids, load_one, related
from mobilize.api.districts import Community, Grid, Household, HouseholdTag
from mobilize.api.enums import CheckResult, TaskKind, TaskStatus
from mobilize.api.errors import (
    AlreadyRecordedError,
    CommandErrors,
    ForbiddenError,
    NotFoundError,
    ValidationError,
    field_error,
)
from mobilize.api.paging import paged
from mobilize.api.relay import Connection, Node, expect_global_id, to_global_id
from mobilize.db.session import AnyRow
from mobilize.tasks import dispatch, lifecycle, records


@strawberry.type(description="A household record: checked or supplied, by whom and when.")
class HouseholdRecord(Node):
    pk: Private[int]
    kind: str
    result: str
    note: str | None
    recorded_at: datetime
    recorded_by: str

    @classmethod
    def from_model(cls, row: m.HouseholdRecord | AnyRow, by: str = "") -> HouseholdRecord:
        return cls(
            id=to_global_id("HouseholdRecord", row.id),
            pk=row.id,
            kind=row.kind,
            result=row.result,
            note=row.note,
            recorded_at=row.recorded_at,
            recorded_by=by,
        )


@strawberry.type
class HouseholdEntry:
    household: Household
    checked: HouseholdRecord | None
    supplied: HouseholdRecord | None


def _entries(
    households: list[AnyRow], records: dict[tuple[int, str], AnyRow]
) -> list[HouseholdEntry]:
    def rec(h: AnyRow, kind: str) -> HouseholdRecord | None:
        found = records.get((h.id, kind))
        return None if found is None else HouseholdRecord.from_model(found)

    return [
        HouseholdEntry(
            household=Household.from_model(h), checked=rec(h, "check"), supplied=rec(h, "delivery")
        )
        for h in households
    ]


def _task_households(session: Session, task: m.Task) -> list[HouseholdEntry]:
    households = records.ordered_households(session, task)
    found = records.household_records(session, task.mobilisation_id, [h.id for h in households])
    return _entries(households, found)


@strawberry.type(description="Work in one area, with its lifecycle.")
class Task(Node):
    pk: Private[int]
    grid_pk: Private[int | None]
    community_pk: Private[int]
    mobilisation_pk: Private[int]
    kind: TaskKind
    title: str
    status: TaskStatus
    priority: int = strawberry.field(description="1 most urgent .. 5")
    due_at: datetime
    reason: str | None
    target_tags: list[HouseholdTag]

    @classmethod
    def from_model(cls, row: m.Task) -> Task:
        return cls(
            id=to_global_id("Task", row.id),
            pk=row.id,
            grid_pk=row.grid_id,
            community_pk=row.community_id,
            mobilisation_pk=row.mobilisation_id,
            kind=m.TaskKind(row.kind),
            title=row.title,
            status=m.TaskStatus(row.status),
            priority=row.priority,
            due_at=row.due_at,
            reason=row.reason,
            target_tags=m.HouseholdTag.unmask(row.target_tags),
        )

    @strawberry.field
    async def grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.grid_pk)

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community | None:
        return await related(info, Community, m.Community, self.community_pk)

    @strawberry.field(description="Households to check or supply, the vulnerable first.")
    async def households(self, info: ContextInfo) -> list[HouseholdEntry]:
        if self.kind not in (m.TaskKind.HOUSEHOLD_CHECK, m.TaskKind.SUPPLY_DELIVERY):
            return []
        row = await load_one(info, m.Task, self.pk)
        if row is None:
            return []
        return await info.context.db.run(_task_households, row)


@strawberry.type
class DispatchedTasks:
    count: int
    tasks: list[Task]


TaskResult = Annotated[Task | CommandErrors, strawberry.union("TaskResult")]


RecordResult = Annotated[
    HouseholdRecord | AlreadyRecordedError | CommandErrors, strawberry.union("RecordResult")
]


DispatchResult = Annotated[
    DispatchedTasks | NotFoundError | ValidationError | ForbiddenError,
    strawberry.union("DispatchResult"),
]


@strawberry.input
class AreaInput:
    grids: list[strawberry.ID] = strawberry.field(default_factory=list)
    every_micro_grid_of_communities: list[strawberry.ID] = strawberry.field(default_factory=list)
    every_micro_grid_of_streets: list[strawberry.ID] = strawberry.field(default_factory=list)
    communities: list[strawberry.ID] = strawberry.field(
        default_factory=list, description="One task for each community as a whole."
    )


@strawberry.type
class TaskQuery:
    @strawberry.field(description="Tasks of a mobilisation you may see.")
    async def tasks(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        status: TaskStatus | None = None,
        kind: TaskKind | None = None,
        grid: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Task]:
        where: list[Any] = [
            m.Task.mobilisation_id == expect_global_id(mobilisation, "Mobilisation", "mobilisation")
        ]
        if status is not None:
            where.append(m.Task.status == status.value)
        if kind is not None:
            where.append(m.Task.kind == kind.value)
        if grid is not None:
            where.append(m.Task.grid_id == expect_global_id(grid, "Grid", "grid"))
        return await paged(info, Task, m.Task, where, first, after)


async def _task_change(info: ContextInfo, fn: Any, **kwargs: Any) -> TaskResult:
    ctx = info.context
    try:
        row = await ctx.db.write(fn, actor=ctx.actor, clock=ctx.clock, **kwargs)
    except errors.DomainError as exc:
        return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
    return Task.from_model(row)


@strawberry.type
class TaskMutation:
    @strawberry.mutation(description="Send a task to many areas at once.")
    async def dispatch_task(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        kind: TaskKind,
        area: AreaInput,
        title: str | None = None,
        priority: int = 3,
        due_at: datetime | None = None,
        target_tags: list[HouseholdTag] | None = None,
    ) -> DispatchResult:
        ctx = info.context
        try:
            choice = dispatch.AreaChoice(
                grids=decode_ids(area.grids, "Grid", "grids"),
                micro_grids_of_communities=decode_ids(
                    area.every_micro_grid_of_communities, "Community", "everyMicroGridOfCommunities"
                ),
                micro_grids_of_streets=decode_ids(
                    area.every_micro_grid_of_streets, "Street", "everyMicroGridOfStreets"
                ),
                communities=decode_ids(area.communities, "Community", "communities"),
            )
            rows = await ctx.db.write(
                dispatch.dispatch,
                actor=ctx.actor,
                clock=ctx.clock,
                mobilisation_id=decode_id(mobilisation, "Mobilisation", "mobilisation"),
                kind=kind.value,
                areas=choice,
                title=title,
                priority=priority,
                due_at=due_at,
                target_tags=m.HouseholdTag.mask(m.HouseholdTag(t.value) for t in target_tags or []),
            )
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        return DispatchedTasks(count=len(rows), tasks=[Task.from_model(r) for r in rows[:500]])

    @strawberry.mutation(description="Give a task to named people.")
    async def reassign_task(
        self, info: ContextInfo, task: strawberry.ID, responders: list[strawberry.ID]
    ) -> TaskResult:
        try:
            kwargs = {
                "task_id": decode_id(task, "Task", "task"),
                "responder_ids": list(decode_ids(responders, "Responder", "responders")),
            }
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        return await _task_change(info, lifecycle.reassign_task, **kwargs)

    @strawberry.mutation
    async def cancel_task(self, info: ContextInfo, task: strawberry.ID, reason: str) -> TaskResult:
        try:
            pk = decode_id(task, "Task", "task")
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        return await _task_change(info, lifecycle.cancel_task, task_id=pk, reason=reason)

    @strawberry.mutation
    async def set_task_priority(
        self, info: ContextInfo, task: strawberry.ID, priority: int
    ) -> TaskResult:
        try:
            pk = decode_id(task, "Task", "task")
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        return await _task_change(info, lifecycle.set_priority, task_id=pk, priority=priority)

    @strawberry.mutation(description="Accept (to accept), complete (to done) or fail a task.")
    async def update_task(
        self,
        info: ContextInfo,
        task: strawberry.ID,
        to: TaskStatus,
        note: str | None = None,
        client_mutation_id: str | None = None,
    ) -> TaskResult:
        try:
            pk = decode_id(task, "Task", "task")
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        return await _task_change(
            info,
            lifecycle.work_on,
            task_id=pk,
            to=to.value,
            note=note,
            client_mutation_id=client_mutation_id,
        )

    @strawberry.mutation(description="One household checked: ok, needs help, absent, refused.")
    async def record_household_check(
        self,
        info: ContextInfo,
        task: strawberry.ID,
        household: strawberry.ID,
        result: CheckResult,
        note: str | None = None,
        client_mutation_id: str | None = None,
    ) -> RecordResult:
        return await _record(info, task, household, "check", result.value, note, client_mutation_id)

    @strawberry.mutation(description="One household supplied (delivered, absent, refused).")
    async def record_delivery(
        self,
        info: ContextInfo,
        task: strawberry.ID,
        household: strawberry.ID,
        result: str = "delivered",
        note: str | None = None,
        client_mutation_id: str | None = None,
    ) -> RecordResult:
        return await _record(info, task, household, "delivery", result, note, client_mutation_id)


async def _record(
    info: ContextInfo,
    task: str,
    household: str,
    kind: str,
    result: str,
    note: str | None,
    client_mutation_id: str | None,
) -> RecordResult:
    ctx = info.context
    try:
        row = await ctx.db.write(
            records.record_household,
            actor=ctx.actor,
            clock=ctx.clock,
            task_id=decode_id(task, "Task", "task"),
            household_id=decode_id(household, "Household", "household"),
            kind=kind,
            result=result,
            note=note,
            client_mutation_id=client_mutation_id,
        )
    except errors.DomainError as exc:
        return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
    return HouseholdRecord.from_model(row, by=ctx.actor.name)
