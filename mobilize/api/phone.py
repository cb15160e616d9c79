"""The phone in the API: my assignment with its grid, households, teammates and leader;
checking in on site, reporting a problem, my hours and points."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy.orm import Session
from strawberry import Private

from mobilize import errors
from mobilize import models as m
from mobilize.api.common import ContextInfo, decode_id, run_mutation
from mobilize.api.districts import Grid, Responder, ResponderKind
from mobilize.api.errors import CommandErrors, OutOfAreaError, field_error
from mobilize.api.relay import Node, to_global_id
from mobilize.api.tasks import HouseholdEntry, Task, _entries
from mobilize.api.wartime import Assignment, AssignmentRole, AssignmentStatus, Mobilisation
from mobilize.auth.actor import Actor
from mobilize.districts import queries
from mobilize.mobilisation import field, phone
from mobilize.mobilisation.navigation import directions_to
from mobilize.peacetime import ledger
from mobilize.tasks import lifecycle


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


@strawberry.type(description="A map app's directions to a place: open `url` on the phone.")
class DirectionsLink:
    app: str
    label: str
    url: str


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

    @strawberry.field(
        description="Links that open Amap or Baidu Maps with directions to my micro-grid, its "
        "point converted to each app's coordinate system (GCJ-02, BD-09)."
    )
    def directions(self) -> list[DirectionsLink]:
        lon, lat = self.grid.centre["coordinates"]
        return [
            DirectionsLink(app=d.app, label=d.label, url=d.url)
            for d in directions_to(lon, lat, f"{self.grid.code} {self.grid.name}")
        ]

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
    at: datetime
    source: str = strawberry.field(description="mobilisation, activity or redemption")
    title: str
    hours: float
    points: float = strawberry.field(description="Earned (positive) or redeemed (negative).")


@strawberry.type(description="志愿服务: my hours, my points and what they came from.")
class MyService:
    hours: float
    earned: float
    redeemed: float
    points: float = strawberry.field(description="积分 balance: earned less redeemed.")
    entries: list[ServiceEntry]


CheckInResult = Annotated[
    Assignment | OutOfAreaError | CommandErrors, strawberry.union("CheckInResult")
]


ProblemResult = Annotated[ProblemReport | CommandErrors, strawberry.union("ProblemResult")]


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


def _service(session: Session, actor: Actor) -> MyService:
    mine = list(actor.responder_ids)
    lines = ledger.history(session, responder_ids=mine)
    totals = [ledger.balance_of(session, pk) for pk in mine]
    return MyService(
        hours=round(sum(b.hours for b in totals), 2),
        earned=round(sum(b.earned for b in totals), 1),
        redeemed=round(sum(b.redeemed for b in totals), 1),
        points=round(sum(b.points for b in totals), 1),
        entries=[
            ServiceEntry(at=x.at, source=x.source, title=x.title, hours=x.hours, points=x.points)
            for x in lines
        ],
    )


@strawberry.type
class PhoneQuery:
    @strawberry.field(description="My current assignment, or null in peacetime.")
    async def my_assignment(self, info: ContextInfo) -> MyAssignment | None:
        return await info.context.db.run(_view, info.context.actor, info.context.clock)

    @strawberry.field(description="My open tasks, most urgent first.")
    async def my_tasks(self, info: ContextInfo) -> list[Task]:
        rows = await info.context.db.run(lifecycle.my_tasks, info.context.actor)
        return [Task.from_model(r) for r in rows]

    @strawberry.field(description="Me on the roster: my leave, my commitments.")
    async def my_profile(self, info: ContextInfo) -> Responder | None:
        mine = info.context.actor.responder_ids
        if not mine:
            return None
        rows = await info.context.db.run(
            queries.by_ids, m.Responder, list(mine[:1]), actor=info.context.actor
        )
        return None if rows[0] is None else Responder.from_model(rows[0])

    @strawberry.field(description="My volunteer hours and points.")
    async def my_service(self, info: ContextInfo) -> MyService:
        return await info.context.db.run(_service, info.context.actor)


@strawberry.type
class PhoneMutation:
    @strawberry.mutation(description="I am on site (location in WGS-84, GCJ-02 or BD-09).")
    async def check_in(
        self,
        info: ContextInfo,
        assignment: strawberry.ID,
        location: LocationInput,
        client_mutation_id: str | None = None,
    ) -> CheckInResult:
        try:
            outcome = await run_mutation(
                info,
                field.check_in,
                assignment_id=decode_id(assignment, "Assignment", "assignment"),
                lon=location.lon,
                lat=location.lat,
                crs=location.crs,
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        assert outcome.assignment is not None  # a check-in is always of an assignment
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
                assignment_id=decode_id(assignment, "Assignment", "assignment"),
                text=text,
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return field_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        ctx.dispatcher.dispatch(batches)
        return ProblemReport.from_model(report)
