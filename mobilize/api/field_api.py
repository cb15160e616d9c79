"""Tasks and the phone in the API: dispatch from command centres, work from the grid."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import Row, select
from sqlalchemy.orm import Session
from strawberry import Private

from mobilize import errors
from mobilize import models as m
from mobilize.api.errors import Error, NotFoundError, ValidationError
from mobilize.api.paging import paged
from mobilize.api.relay import Connection, Node, expect_global_id, to_global_id
from mobilize.api.types import (
    Community,
    ContextInfo,
    Grid,
    Household,
    HouseholdTag,
    ResponderKind,
    _one,
    related,
)
from mobilize.api.wartime import (
    Assignment,
    AssignmentRole,
    AssignmentStatus,
    ForbiddenError,
    InvalidTransitionError,
    Mobilisation,
    _id,
    _run,
    wartime_error,
)
from mobilize.idempotency import ReusedMutationId
from mobilize.mobilisation import field, phone
from mobilize.tasks import dispatch, lifecycle, records

TaskKind = strawberry.enum(m.TaskKind, description="入户核查/物资配送/核酸保障/秩序维护/宣传/扫码")
TaskStatus = strawberry.enum(m.TaskStatus)
CheckResult = strawberry.enum(m.CheckResult)


@strawberry.type(description="A household record: checked or supplied, by whom and when.")
class HouseholdRecord(Node):
    pk: Private[int]
    kind: str
    result: str
    note: str | None
    recorded_at: datetime
    recorded_by: str

    @classmethod
    def from_model(cls, row: m.HouseholdRecord | Row[Any], by: str = "") -> HouseholdRecord:
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


@strawberry.type(description="A teammate on the same grid, or the community's leader.")
class Teammate:
    name: str
    phone: str
    kind: ResponderKind
    role: AssignmentRole | None
    status: AssignmentStatus | None


def _teammate(r: m.Responder, a: m.Assignment | None) -> Teammate:
    return Teammate(
        name=r.name,
        phone=r.phone,
        kind=m.ResponderKind(r.kind),
        role=m.AssignmentRole(a.role) if a else None,
        status=m.AssignmentStatus(a.status) if a else None,
    )


def _entries(
    households: list[Row[Any]], records: dict[tuple[int, str], Row[Any]]
) -> list[HouseholdEntry]:
    def rec(h: Row[Any], kind: str) -> HouseholdRecord | None:
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


def _grid_households(session: Session, mobilisation_id: int, grid_id: int) -> list[HouseholdEntry]:
    return _entries(
        *phone.grid_households(session, mobilisation_id=mobilisation_id, grid_id=grid_id)
    )


def _teammates(
    session: Session, mobilisation_id: int, grid_id: int, besides: int
) -> list[Teammate]:
    found = phone.teammates(
        session, mobilisation_id=mobilisation_id, grid_id=grid_id, besides=besides
    )
    return [_teammate(r, a) for r, a in found]


def _leader(session: Session, mobilisation_id: int, community_id: int) -> Teammate | None:
    found = phone.leader(session, mobilisation_id=mobilisation_id, community_id=community_id)
    return None if found is None else _teammate(found, None)


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
        return await related(info, Grid, m.Grid, self.grid_pk)  # type: ignore[no-any-return]

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community | None:
        return await related(info, Community, m.Community, self.community_pk)  # type: ignore[no-any-return]

    @strawberry.field(description="Households to check or supply, the vulnerable first.")
    async def households(self, info: ContextInfo) -> list[HouseholdEntry]:
        if self.kind not in (m.TaskKind.HOUSEHOLD_CHECK, m.TaskKind.SUPPLY_DELIVERY):
            return []
        row = await _one(info, m.Task, self.pk)
        if row is None:
            return []
        return await info.context.db.run(_task_households, row)


@strawberry.type(description="My assignment, on the phone: where, with whom, until when.")
class MyAssignment:
    assignment: Assignment
    mobilisation: Mobilisation
    grid: Grid
    deadline: datetime
    minutes_left: float

    # Read only when asked: the phone polls this screen for the deadline and status.
    @strawberry.field(description="My micro-grid's households, the vulnerable first.")
    async def households(self, info: ContextInfo) -> list[HouseholdEntry]:
        return await info.context.db.run(
            _grid_households, self.assignment.mobilisation_pk, self.grid.pk
        )

    @strawberry.field(description="The others holding my micro-grid.")
    async def teammates(self, info: ContextInfo) -> list[Teammate]:
        return await info.context.db.run(
            _teammates, self.assignment.mobilisation_pk, self.grid.pk, self.assignment.pk
        )

    @strawberry.field(description="My community's temporary party organisation's leader.")
    async def leader(self, info: ContextInfo) -> Teammate | None:
        return await info.context.db.run(
            _leader, self.assignment.mobilisation_pk, self.grid.community_pk
        )


@strawberry.type
class ProblemReport(Node):
    pk: Private[int]
    text: str
    status: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: m.ProblemReport) -> ProblemReport:
        return cls(
            id=to_global_id("ProblemReport", row.id),
            pk=row.id,
            text=row.text,
            status=row.status,
            created_at=row.created_at,
        )


@strawberry.type
class ServiceEntry:
    mobilisation_title: str
    checked_in_at: datetime
    released_at: datetime
    hours: float
    points: float


@strawberry.type(description="志愿服务: my hours and points.")
class MyService:
    hours: float
    points: float
    entries: list[ServiceEntry]


@strawberry.type
class DispatchedTasks:
    count: int
    tasks: list[Task]


@strawberry.type(description="Someone recorded this household first.")
class AlreadyRecordedError(Error):
    recorded_by: str
    recorded_at: datetime
    result: str


@strawberry.type(description="The check-in point is too far from the micro-grid.")
class OutOfAreaError(Error):
    distance_metres: float


def field_error(exc: errors.DomainError) -> Error:
    if isinstance(exc, records.AlreadyRecorded):
        return AlreadyRecordedError(
            message=exc.message, recorded_by=exc.by, recorded_at=exc.at, result=exc.result
        )
    if isinstance(exc, field.OutOfArea):
        return OutOfAreaError(message=exc.message, distance_metres=round(exc.distance_m, 1))
    if isinstance(exc, lifecycle.TaskTransitionError):
        return InvalidTransitionError(message=exc.message, current_status=exc.current)
    if isinstance(exc, ReusedMutationId):
        return ValidationError(message=exc.message, field="clientMutationId")
    return wartime_error(exc)


_Errors = InvalidTransitionError | NotFoundError | ValidationError | ForbiddenError
TaskResult = Annotated[Task | _Errors, strawberry.union("TaskResult")]
RecordResult = Annotated[
    HouseholdRecord | AlreadyRecordedError | _Errors, strawberry.union("RecordResult")
]
CheckInResult = Annotated[Assignment | OutOfAreaError | _Errors, strawberry.union("CheckInResult")]
ProblemResult = Annotated[ProblemReport | _Errors, strawberry.union("ProblemResult")]
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


@strawberry.input
class LocationInput:
    lon: float
    lat: float
    crs: str = strawberry.field(default="wgs84", description="wgs84 (GPS), gcj02 or bd09")


def _view(session: Session, actor: Any, clock: Any) -> MyAssignment | None:
    view = phone.my_assignment(session, actor=actor, clock=clock)
    if view is None:
        return None
    return MyAssignment(
        assignment=Assignment.from_model(view.assignment),
        mobilisation=Mobilisation.from_model(view.mobilisation),
        grid=Grid.from_model(view.grid),
        deadline=view.mobilisation.deadline,
        minutes_left=view.minutes_left,
    )


def _service(session: Session, actor: Any) -> MyService:
    mine = [b.scope_id for b in actor.bindings if b.role is m.Role.RESPONDER]
    rows = session.execute(
        select(m.ServiceRecord, m.Mobilisation.title)
        .join(m.Mobilisation, m.Mobilisation.id == m.ServiceRecord.mobilisation_id)
        .where(m.ServiceRecord.responder_id.in_(mine))
        .order_by(m.ServiceRecord.checked_in_at)
    ).all()
    entries = [
        ServiceEntry(
            mobilisation_title=title,
            checked_in_at=r.checked_in_at,
            released_at=r.released_at,
            hours=r.hours,
            points=r.points,
        )
        for r, title in rows
    ]
    return MyService(
        hours=round(sum(e.hours for e in entries), 2),
        points=round(sum(e.points for e in entries), 1),
        entries=entries,
    )


@strawberry.type
class FieldQuery:
    @strawberry.field(description="My current assignment, or null in peacetime.")
    async def my_assignment(self, info: ContextInfo) -> MyAssignment | None:
        return await info.context.db.run(_view, info.context.actor, info.context.clock)

    @strawberry.field(description="My open tasks, most urgent first.")
    async def my_tasks(self, info: ContextInfo) -> list[Task]:
        rows = await info.context.db.run(lifecycle.my_tasks, info.context.actor)
        return [Task.from_model(r) for r in rows]

    @strawberry.field(description="My volunteer hours and points.")
    async def my_service(self, info: ContextInfo) -> MyService:
        return await info.context.db.run(_service, info.context.actor)

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
        return await paged(info, Task, m.Task, where, first, after)  # type: ignore[no-any-return]


async def _task_change(info: ContextInfo, fn: Any, **kwargs: Any) -> TaskResult:
    ctx = info.context
    try:
        row = await ctx.db.write(fn, actor=ctx.actor, clock=ctx.clock, **kwargs)
    except errors.DomainError as exc:
        return field_error(exc)  # type: ignore[return-value]
    return Task.from_model(row)


def _ids(values: list[strawberry.ID], type_name: str, argument: str) -> tuple[int, ...]:
    return tuple(_id(v, type_name, argument) for v in values)


@strawberry.type
class FieldMutation:
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
                grids=_ids(area.grids, "Grid", "grids"),
                micro_grids_of_communities=_ids(
                    area.every_micro_grid_of_communities, "Community", "everyMicroGridOfCommunities"
                ),
                micro_grids_of_streets=_ids(
                    area.every_micro_grid_of_streets, "Street", "everyMicroGridOfStreets"
                ),
                communities=_ids(area.communities, "Community", "communities"),
            )
            rows = await ctx.db.write(
                dispatch.dispatch,
                actor=ctx.actor,
                clock=ctx.clock,
                mobilisation_id=_id(mobilisation, "Mobilisation", "mobilisation"),
                kind=kind.value,
                areas=choice,
                title=title,
                priority=priority,
                due_at=due_at,
                target_tags=m.HouseholdTag.mask(m.HouseholdTag(t.value) for t in target_tags or []),
            )
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
        return DispatchedTasks(count=len(rows), tasks=[Task.from_model(r) for r in rows[:500]])

    @strawberry.mutation(description="Give a task to named people.")
    async def reassign_task(
        self, info: ContextInfo, task: strawberry.ID, responders: list[strawberry.ID]
    ) -> TaskResult:
        try:
            kwargs = {
                "task_id": _id(task, "Task", "task"),
                "responder_ids": list(_ids(responders, "Responder", "responders")),
            }
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
        return await _task_change(info, lifecycle.reassign_task, **kwargs)

    @strawberry.mutation
    async def cancel_task(self, info: ContextInfo, task: strawberry.ID, reason: str) -> TaskResult:
        try:
            pk = _id(task, "Task", "task")
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
        return await _task_change(info, lifecycle.cancel_task, task_id=pk, reason=reason)

    @strawberry.mutation
    async def set_task_priority(
        self, info: ContextInfo, task: strawberry.ID, priority: int
    ) -> TaskResult:
        try:
            pk = _id(task, "Task", "task")
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
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
            pk = _id(task, "Task", "task")
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
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

    @strawberry.mutation(description="I am on site (location in WGS-84, GCJ-02 or BD-09).")
    async def check_in(
        self,
        info: ContextInfo,
        assignment: strawberry.ID,
        location: LocationInput,
        client_mutation_id: str | None = None,
    ) -> CheckInResult:
        try:
            outcome = await _run(
                info,
                field.check_in,
                assignment_id=_id(assignment, "Assignment", "assignment"),
                lon=location.lon,
                lat=location.lat,
                crs=location.crs,
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
        return Assignment.from_model(outcome.assignment)

    @strawberry.mutation(description="Report a problem; it goes to the street command centre.")
    async def report_problem(
        self,
        info: ContextInfo,
        assignment: strawberry.ID,
        text: str,
        client_mutation_id: str | None = None,
    ) -> ProblemResult:
        ctx = info.context
        try:
            report, batches = await ctx.db.write(
                field.report_problem,
                actor=ctx.actor,
                clock=ctx.clock,
                assignment_id=_id(assignment, "Assignment", "assignment"),
                text=text,
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]
        ctx.dispatcher.dispatch(batches)
        return ProblemReport.from_model(report)


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
            task_id=_id(task, "Task", "task"),
            household_id=_id(household, "Household", "household"),
            kind=kind,
            result=result,
            note=note,
            client_mutation_id=client_mutation_id,
        )
    except errors.DomainError as exc:
        return field_error(exc)  # type: ignore[return-value]
    return HouseholdRecord.from_model(row, by=ctx.actor.name)
