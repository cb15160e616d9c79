"""Mobilisations in the API: the switch, assignments, and commanders' changes.

The Mobilisation and Assignment types live with the mutations that return them: a reader of
one command sees the whole of what it answers. Coverage, risk, tasks and the phone have their
own modules."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import Private

from mobilize import errors, jobs
from mobilize import models as m
from mobilize.api.common import ContextInfo, decode_id, related, run_mutation
from mobilize.api.districts import Community, Grid, Responder
from mobilize.api.enums import (
    AssignmentRole,
    AssignmentSource,
    AssignmentStatus,
    JobStatus,
    MobilisationKind,
    MobilisationStatus,
)
from mobilize.api.errors import (
    AlreadyActiveError,
    AlreadyStoodDownError,
    ConflictError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
    ValidationError,
    wartime_error,
)
from mobilize.api.paging import paged
from mobilize.api.relay import Connection, Node, expect_global_id, to_global_id
from mobilize.districts import queries
from mobilize.mobilisation import assignments, switch
from mobilize.mobilisation.area import AreaScope
from mobilize.mobilisation.rules import RULES
from mobilize.mobilisation.rules import StaffingRule as RuleData


@strawberry.type
class TravelMode:
    name: str
    up_to_metres: float | None = strawberry.field(description="Null: no upper bound.")
    speed_kmh: float


@strawberry.type(description="The staffing rule: data, per mobilisation kind.")
class StaffingRule:
    min_on_site: int = strawberry.field(description="People every micro-grid needs on site.")
    households_per_worker: int = strawberry.field(
        description="A micro-grid needs ceil(households / this) people in all."
    )
    setup_minutes: float
    candidates_per_person: int
    detour_factor: float
    modes: list[TravelMode]

    @classmethod
    def from_rule(cls, rule: RuleData) -> StaffingRule:
        return cls(
            min_on_site=rule.min_on_site,
            households_per_worker=rule.households_per_worker,
            setup_minutes=rule.setup_minutes,
            candidates_per_person=rule.candidates_per_person,
            detour_factor=rule.detour_factor,
            modes=[
                TravelMode(
                    name=x.name,
                    up_to_metres=None if math.isinf(x.up_to_m) else x.up_to_m,
                    speed_kmh=x.speed_kmh,
                )
                for x in rule.modes
            ],
        )


@strawberry.type
class KindRule:
    kind: MobilisationKind
    rule: StaffingRule


@strawberry.type
class ReasonCount:
    reason: str
    count: int


@strawberry.type(description="What the engine achieved at activation.")
class ActivationFigures:
    grids: int
    people_called: int
    people_assigned: int
    slots: int
    micro_grids_with_minimum: int
    slots_filled: int
    total_travel_minutes: float
    latest_arrival_minutes: float
    unfilled_minimum: list[ReasonCount]
    unfilled_work: list[ReasonCount]
    solve_seconds: float

    @classmethod
    def from_dict(cls, f: dict[str, Any]) -> ActivationFigures:
        def reasons(d: dict[str, int]) -> list[ReasonCount]:
            return [ReasonCount(reason=k, count=v) for k, v in sorted(d.items())]

        return cls(
            grids=f.get("grids", 0),
            people_called=f.get("people_called", 0),
            people_assigned=f.get("people_assigned", 0),
            slots=f.get("slots", 0),
            micro_grids_with_minimum=f.get("micro_grids_with_minimum", 0),
            slots_filled=f.get("slots_filled", 0),
            total_travel_minutes=f.get("total_travel_minutes", 0.0),
            latest_arrival_minutes=f.get("latest_arrival_minutes", 0.0),
            unfilled_minimum=reasons(f.get("unfilled_minimum", {})),
            unfilled_work=reasons(f.get("unfilled_work", {})),
            solve_seconds=f.get("solve_s", 0.0),
        )


@strawberry.type
class MobilisationScope:
    district: bool
    streets: list[str]
    communities: list[str]


@strawberry.type(description="后台求解 A background job: an activation's solve.")
class JobRun:
    status: JobStatus
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None
    error: str | None

    @classmethod
    def from_model(cls, row: m.JobRun) -> JobRun:
        return cls(
            status=m.JobStatus(row.status),
            attempts=row.attempts,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            worker=row.worker,
            error=row.error,
        )


@strawberry.type(description="A mobilisation: an area in wartime mode from T0 to stand-down.")
class Mobilisation(Node):
    pk: Private[int]
    kind: MobilisationKind
    title: str
    status: MobilisationStatus
    t0: datetime
    deadline: datetime
    scope: MobilisationScope
    rule: StaffingRule
    figures: ActivationFigures
    activated_by: str
    stood_down_at: datetime | None

    @classmethod
    def from_model(cls, row: m.Mobilisation) -> Mobilisation:
        return cls(
            id=to_global_id("Mobilisation", row.id),
            pk=row.id,
            kind=m.MobilisationKind(row.kind),
            title=row.title,
            status=m.MobilisationStatus(row.status),
            t0=row.t0,
            deadline=row.deadline,
            scope=MobilisationScope(
                district=bool(row.scope.get("district")),
                streets=list(row.scope.get("streets", [])),
                communities=list(row.scope.get("communities", [])),
            ),
            rule=StaffingRule.from_rule(RuleData.from_dict(row.rule)),
            figures=ActivationFigures.from_dict(row.figures),
            activated_by=row.activated_by,
            stood_down_at=row.stood_down_at,
        )

    @strawberry.field(
        description="The activation's solve: queued, running (attempts so far), done or failed."
    )
    async def activation(self, info: ContextInfo) -> JobRun | None:
        row = await info.context.loaders.activations().load(self.pk)
        return None if row is None else JobRun.from_model(row)

    @strawberry.field(description="Communities in this mobilisation that you may see.")
    async def communities(self, info: ContextInfo) -> list[Community]:
        areas = await info.context.loaders.many(m.MobilisationArea.mobilisation_id).load(self.pk)
        rows = await info.context.loaders.one(m.Community).load_many(
            [a.community_id for a in areas]
        )
        return [Community.from_model(r) for r in rows if r is not None]

    @strawberry.field(description="临时党组织 opened for this mobilisation.")
    async def party_organisations(self, info: ContextInfo) -> list[PartyOrganisation]:
        rows = await info.context.loaders.many(m.PartyOrganisation.mobilisation_id).load(self.pk)
        return [PartyOrganisation.from_model(r) for r in rows]

    @strawberry.field(description="Assignments you may see, filtered.")
    async def assignments(
        self,
        info: ContextInfo,
        status: AssignmentStatus | None = None,
        grid: strawberry.ID | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Assignment]:
        where: list[Any] = [m.Assignment.mobilisation_id == self.pk]
        if status is not None:
            where.append(m.Assignment.status == status.value)
        if grid is not None:
            where.append(m.Assignment.grid_id == expect_global_id(grid, "Grid", "grid"))
        return await paged(info, Assignment, m.Assignment, where, first, after)


@strawberry.type(description="Where one person goes in one mobilisation, and how far they got.")
class Assignment(Node):
    pk: Private[int]
    mobilisation_pk: Private[int]
    responder_pk: Private[int]
    grid_pk: Private[int | None]
    community_pk: Private[int]
    role: AssignmentRole
    source: AssignmentSource
    pinned: bool
    status: AssignmentStatus
    travel_minutes: float
    distance_metres: float
    mode: str
    updated_at: datetime
    reason: str | None

    @classmethod
    def from_model(cls, row: m.Assignment) -> Assignment:
        return cls(
            id=to_global_id("Assignment", row.id),
            pk=row.id,
            mobilisation_pk=row.mobilisation_id,
            responder_pk=row.responder_id,
            grid_pk=row.grid_id,
            community_pk=row.community_id,
            role=m.AssignmentRole(row.role),
            source=m.AssignmentSource(row.source),
            pinned=row.pinned,
            status=m.AssignmentStatus(row.status),
            travel_minutes=row.travel_minutes,
            distance_metres=row.distance_m,
            mode=row.mode,
            updated_at=row.updated_at,
            reason=row.reason,
        )

    @strawberry.field
    async def responder(self, info: ContextInfo) -> Responder | None:
        return await related(info, Responder, m.Responder, self.responder_pk)

    @strawberry.field
    async def grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.grid_pk)

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community | None:
        return await related(info, Community, m.Community, self.community_pk)

    @strawberry.field
    async def mobilisation(self, info: ContextInfo) -> Mobilisation | None:
        return await related(info, Mobilisation, m.Mobilisation, self.mobilisation_pk)


@strawberry.type(description="临时党组织: leads the forces of one community in wartime.")
class PartyOrganisation(Node):
    pk: Private[int]
    community_pk: Private[int]
    leader_pk: Private[int | None]
    name: str
    leader_basis: str = strawberry.field(description="secretary, senior_cadre or none")

    @classmethod
    def from_model(cls, row: m.PartyOrganisation) -> PartyOrganisation:
        return cls(
            id=to_global_id("PartyOrganisation", row.id),
            pk=row.id,
            community_pk=row.community_id,
            leader_pk=row.leader_id,
            name=row.name,
            leader_basis=row.leader_basis,
        )

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community | None:
        return await related(info, Community, m.Community, self.community_pk)

    @strawberry.field
    async def leader(self, info: ContextInfo) -> Responder | None:
        return await related(info, Responder, m.Responder, self.leader_pk)


ActivateResult = Annotated[
    Mobilisation | AlreadyActiveError | ValidationError | ForbiddenError,
    strawberry.union("ActivateResult"),
]


StandDownResult = Annotated[
    Mobilisation | AlreadyStoodDownError | NotFoundError | ForbiddenError,
    strawberry.union("StandDownResult"),
]


AssignmentResult = Annotated[
    Assignment
    | ConflictError
    | InvalidTransitionError
    | AlreadyStoodDownError
    | NotFoundError
    | ValidationError
    | ForbiddenError,
    strawberry.union("AssignmentResult"),
]


ResponderResult = Annotated[
    Responder | NotFoundError | ValidationError | ForbiddenError,
    strawberry.union("ResponderResult"),
]


@strawberry.input
class ScopeInput:
    district: bool = False
    streets: list[str] = strawberry.field(default_factory=list)
    communities: list[str] = strawberry.field(default_factory=list)


async def _settled(info: ContextInfo, run_ids: list[str], mobilisation_id: int) -> m.Mobilisation:
    """The mobilisation once its jobs are done, or as it is after `activation_wait_seconds`.
    Each poll reads in a fresh transaction: a SQLite reader keeps its first snapshot."""
    ctx = info.context
    loop = asyncio.get_running_loop()
    give_up = loop.time() + ctx.settings.activation_wait_seconds
    for run_id in run_ids:
        while loop.time() < give_up:
            status = await ctx.db.run(jobs.status_of, run_id)
            await ctx.db.close()
            if status not in (m.JobStatus.QUEUED, m.JobStatus.RUNNING):
                break
            await asyncio.sleep(0.05)
    row = await ctx.db.run(lambda s: s.get(m.Mobilisation, mobilisation_id, populate_existing=True))
    assert row is not None
    return row


@strawberry.type
class WartimeQuery:
    @strawberry.field(description="Mobilisations you may see, newest first is not implied.")
    async def mobilisations(
        self,
        info: ContextInfo,
        status: MobilisationStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Mobilisation]:
        where = [] if status is None else [m.Mobilisation.status == status.value]
        return await paged(info, Mobilisation, m.Mobilisation, where, first, after)

    @strawberry.field(description="The staffing rule of each mobilisation kind.")
    def staffing_rules(self) -> list[KindRule]:
        return [
            KindRule(kind=kind, rule=StaffingRule.from_rule(rule)) for kind, rule in RULES.items()
        ]


@strawberry.type
class WartimeMutation:
    @strawberry.mutation(description="平战转换: switch an area to wartime and assign everyone.")
    async def activate_mobilisation(
        self,
        info: ContextInfo,
        scope: ScopeInput,
        kind: MobilisationKind,
        title: str,
        target_minutes: int = 180,
        client_mutation_id: str | None = None,
    ) -> ActivateResult:
        try:
            area = AreaScope(
                district=scope.district,
                streets=tuple(scope.streets),
                communities=tuple(scope.communities),
            )
            outcome = await run_mutation(
                info,
                switch.activate,
                scope=area,
                kind=kind.value,
                title=title,
                target_minutes=target_minutes,
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return wartime_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        row = await _settled(info, outcome.jobs, outcome.mobilisation.id)
        return Mobilisation.from_model(row)

    @strawberry.mutation(description="Back to peacetime: release everyone, keep the record.")
    async def stand_down(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        client_mutation_id: str | None = None,
    ) -> StandDownResult:
        try:
            outcome = await run_mutation(
                info,
                switch.stand_down,
                mobilisation_id=decode_id(id, "Mobilisation", "id"),
                client_mutation_id=client_mutation_id,
            )
        except errors.DomainError as exc:
            return wartime_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        return Mobilisation.from_model(outcome.mobilisation)

    @strawberry.mutation(
        description="I am coming, in about etaMinutes: the engine will no longer move me."
    )
    async def acknowledge_assignment(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        eta_minutes: int | None = None,
        client_mutation_id: str | None = None,
    ) -> AssignmentResult:
        return await _assignment_change(
            info,
            assignments.acknowledge,
            assignment_id=("Assignment", id),
            eta_minutes=eta_minutes,
            client_mutation_id=client_mutation_id,
        )

    @strawberry.mutation(description="I cannot come: my slot goes to someone else.")
    async def decline_assignment(
        self,
        info: ContextInfo,
        id: strawberry.ID,
        reason: str,
        client_mutation_id: str | None = None,
    ) -> AssignmentResult:
        return await _assignment_change(
            info,
            assignments.decline,
            assignment_id=("Assignment", id),
            reason=reason,
            display_tz=info.context.settings.display_timezone,
            client_mutation_id=client_mutation_id,
        )

    @strawberry.mutation(description="Send a person to another micro-grid (pinned by default).")
    async def reassign(
        self,
        info: ContextInfo,
        assignment: strawberry.ID,
        grid: strawberry.ID,
        from_grid: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The grid you saw them at: if they have been moved since, nothing "
                "changes and you get a ConflictError."
            ),
        ],
        pin: bool = True,
    ) -> AssignmentResult:
        return await _assignment_change(
            info,
            assignments.reassign,
            assignment_id=("Assignment", assignment),
            grid_id=("Grid", grid),
            from_grid_id=("Grid", from_grid),
            pin=pin,
            display_tz=info.context.settings.display_timezone,
        )

    @strawberry.mutation(description="Pin an assignment: re-plans will not move it.")
    async def pin_assignment(self, info: ContextInfo, id: strawberry.ID) -> AssignmentResult:
        return await _assignment_change(
            info, assignments.set_pinned, assignment_id=("Assignment", id), pinned=True
        )

    @strawberry.mutation(description="Unpin an assignment.")
    async def unpin_assignment(self, info: ContextInfo, id: strawberry.ID) -> AssignmentResult:
        return await _assignment_change(
            info, assignments.set_pinned, assignment_id=("Assignment", id), pinned=False
        )

    @strawberry.mutation(description="Take a person out of every call-up (ill, away...).")
    async def mark_unavailable(
        self, info: ContextInfo, responder: strawberry.ID, reason: str
    ) -> ResponderResult:
        try:
            pk = decode_id(responder, "Responder", "responder")
            await run_mutation(
                info,
                assignments.mark_unavailable,
                responder_id=pk,
                reason=reason,
                display_tz=info.context.settings.display_timezone,
            )
            row = await info.context.db.run(
                queries.by_ids, m.Responder, [pk], actor=info.context.actor
            )
        except errors.DomainError as exc:
            return wartime_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        assert row[0] is not None  # marked unavailable a moment ago, so visible to the caller
        return Responder.from_model(row[0])


async def _assignment_change(info: ContextInfo, fn: Any, **kwargs: Any) -> AssignmentResult:
    try:
        resolved = {
            k: decode_id(v[1], v[0], k.removesuffix("decode_id")) if isinstance(v, tuple) else v
            for k, v in kwargs.items()
        }
        outcome = await run_mutation(info, fn, **resolved)
    except errors.DomainError as exc:
        return wartime_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
    assert outcome.assignment is not None
    return Assignment.from_model(outcome.assignment)
