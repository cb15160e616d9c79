"""Peacetime in the API (`mobilize.peacetime`): leave and return, commitments, activities
with their attendance, the points rule, redemptions and the service ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from sqlalchemy.orm import Session
from strawberry import Private

from mobilize import errors
from mobilize import models as m
from mobilize.api.auth import RequestSignInCodeResult, SignInCodeSent, guarded, send_later
from mobilize.api.common import (
    ContextInfo,
    answer,
    decode_id,
    decode_ids,
    district_of,
    load_one,
    related,
    write,
)
from mobilize.api.districts import (
    Building,
    Commitment,
    Community,
    Grid,
    Leave,
    Responder,
    Unit,
)
from mobilize.api.enums import (
    ActivityKind,
    ActivityStatus,
    EnrolmentKind,
    EnrolmentStatus,
    LeaveReason,
)
from mobilize.api.errors import (
    ForbiddenError,
    InvalidCodeError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    edit_error,
    to_error,
)
from mobilize.api.paging import paged
from mobilize.api.relay import Connection, Node, expect_global_id, to_global_id
from mobilize.auth import signin
from mobilize.peacetime import activities, leave, ledger, roster
from mobilize.peacetime import enrolment as enrolments


@strawberry.type(description="Someone in an activity, and once held, whether they came.")
class ActivityPersonEntry:
    responder_pk: Private[int]
    how: str = strawberry.field(description="signed_up, named or walked_in")
    attended: bool | None
    hours: float | None

    @strawberry.field
    async def responder(self, info: ContextInfo) -> Responder | None:
        return await related(info, Responder, m.Responder, self.responder_pk)


@strawberry.type(description="A peacetime activity: patrol, 扫楼 round, drill, community event.")
class Activity(Node):
    pk: Private[int]
    community_pk: Private[int]
    grid_pk: Private[int | None]
    building_pk: Private[int | None]
    kind: ActivityKind
    title: str
    starts_at: datetime
    ends_at: datetime
    status: ActivityStatus
    series: str | None = strawberry.field(description="The weekly duty it belongs to, if any.")

    @classmethod
    def from_model(cls, row: m.Activity) -> Activity:
        return cls(
            id=to_global_id("Activity", row.id),
            pk=row.id,
            community_pk=row.community_id,
            grid_pk=row.grid_id,
            building_pk=row.building_id,
            kind=ActivityKind(row.kind),
            title=row.title,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            status=ActivityStatus(row.status),
            series=row.series,
        )

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community:
        return Community.from_model(await load_one(info, m.Community, self.community_pk))

    @strawberry.field
    async def grid(self, info: ContextInfo) -> Grid | None:
        return await related(info, Grid, m.Grid, self.grid_pk)

    @strawberry.field
    async def building(self, info: ContextInfo) -> Building | None:
        return await related(info, Building, m.Building, self.building_pk)

    @strawberry.field(description="Who signed up or was named, and who came.")
    async def people(self, info: ContextInfo) -> list[ActivityPersonEntry]:
        rows = await info.context.db.run(_people, self.pk)
        return [
            ActivityPersonEntry(
                responder_pk=r.responder_id, how=r.how, attended=r.attended, hours=r.hours
            )
            for r in rows
        ]


def _people(session: Session, activity_id: int) -> list[m.ActivityPerson]:
    return list(
        session.scalars(
            select(m.ActivityPerson)
            .where(m.ActivityPerson.activity_id == activity_id)
            .order_by(m.ActivityPerson.responder_id)
        )
    )


@strawberry.type(description="报到/报名: an application to join a community's roster.")
class Enrolment(Node):
    community_pk: Private[int]
    responder_pk: Private[int | None]
    kind: EnrolmentKind
    name: str
    phone: str
    address: str
    skills: list[str]
    availability: str
    status: EnrolmentStatus
    submitted_at: datetime
    decided_at: datetime | None
    reason: str | None

    @classmethod
    def from_model(cls, row: m.Enrolment) -> Enrolment:
        return cls(
            id=to_global_id("Enrolment", row.id),
            community_pk=row.community_id,
            responder_pk=row.responder_id,
            kind=EnrolmentKind(row.kind),
            name=row.name,
            phone=row.phone,
            address=row.address,
            skills=list(row.skills or []),
            availability=row.availability,
            status=EnrolmentStatus(row.status),
            submitted_at=row.submitted_at,
            decided_at=row.decided_at,
            reason=row.reason,
        )

    @strawberry.field
    async def community(self, info: ContextInfo) -> Community:
        return Community.from_model(await load_one(info, m.Community, self.community_pk))

    @strawberry.field(description="The responder an approval made.")
    async def responder(self, info: ContextInfo) -> Responder | None:
        return await related(info, Responder, m.Responder, self.responder_pk)


@strawberry.type(description="What the phone is told after reporting in (no personal data).")
class EnrolmentReceived:
    message: str
    submitted_at: datetime


@strawberry.type(description="A pairing's wartime quota, by community.")
class PairingNeedEntry:
    community_code: str
    community_name: str
    quota: int


@strawberry.type(description="A unit's cadres against its pairings' quota (the organiser's view).")
class UnitRoster:
    unit: Unit
    pairings: list[PairingNeedEntry]
    quota: int = strawberry.field(description="Cadres its pairings ask for in wartime.")
    registered: int = strawberry.field(description="Its sunk cadres on the roster.")
    on_leave: int = strawberry.field(description="Of them, away now.")
    available: int = strawberry.field(description="Of them, who could go now.")
    cadres: list[Responder]


@strawberry.type(description="积分 rule of a district: points an hour and an activity.")
class PointsRule:
    points_per_hour: float
    points_per_activity: float
    yuan_per_point: float


@strawberry.type(description="One line of the service ledger.")
class LedgerLine:
    responder_code: str
    name: str
    community: str
    at: datetime
    source: str = strawberry.field(description="mobilisation, activity or redemption")
    title: str
    hours: float
    points: float = strawberry.field(description="Earned (positive) or redeemed (negative).")


@strawberry.type(description="A person's service: hours, points earned and redeemed.")
class ServiceBalance:
    hours: float
    earned: float
    redeemed: float
    points: float = strawberry.field(description="积分 balance: earned less redeemed.")


@strawberry.type(description="The activities scheduled (a weekly duty: one a week).")
class ScheduledActivities:
    activities: list[Activity]


@strawberry.input
class AttendanceInput:
    responder: strawberry.ID
    hours: float


Errors = ValidationError | NotFoundError | ForbiddenError
LeaveResult = Annotated[Leave | Errors, strawberry.union("LeaveResult")]
BackResult = Annotated[Responder | Errors, strawberry.union("BackOnDutyResult")]
CommitmentResult = Annotated[Commitment | Errors, strawberry.union("CommitmentResult")]
ActivityResult = Annotated[Activity | Errors, strawberry.union("ActivityResult")]
ScheduleResult = Annotated[ScheduledActivities | Errors, strawberry.union("ScheduleResult")]
RuleResult = Annotated[PointsRule | Errors, strawberry.union("PointsRuleResult")]
ReportInResult = Annotated[
    EnrolmentReceived | ValidationError | InvalidCodeError | RateLimitedError,
    strawberry.union("ReportInResult"),
]
DecideResult = Annotated[Enrolment | Errors, strawberry.union("DecideEnrolmentResult")]
RedeemResult = Annotated[ServiceBalance | Errors, strawberry.union("RedeemResult")]


@strawberry.type
class PeacetimeMutation:
    @strawberry.mutation(description="请假: from now (or `startsAt`) to `endsAt` (or until back).")
    async def record_leave(
        self,
        info: ContextInfo,
        responder: strawberry.ID,
        reason: LeaveReason,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        note: str = "",
    ) -> LeaveResult:
        return await answer(
            info,
            Leave,
            leave.record_leave,
            lambda: dict(
                responder_id=decode_id(responder, "Responder", "responder"),
                reason=reason,
                starts_at=starts_at,
                ends_at=ends_at,
                note=note,
                display_tz=info.context.settings.display_timezone,
            ),
        )

    @strawberry.mutation(description="销假: back on duty now, called up again from this moment.")
    async def back_on_duty(self, info: ContextInfo, responder: strawberry.ID) -> BackResult:
        return await answer(
            info,
            Responder,
            leave.back_on_duty,
            lambda: dict(
                responder_id=decode_id(responder, "Responder", "responder"),
            ),
        )

    @strawberry.mutation(description="承诺: what a person promises for a year.")
    async def record_commitment(
        self, info: ContextInfo, responder: strawberry.ID, year: int, promise: str
    ) -> CommitmentResult:
        return await answer(
            info,
            Commitment,
            leave.record_commitment,
            lambda: dict(
                responder_id=decode_id(responder, "Responder", "responder"),
                year=year,
                promise=promise,
            ),
        )

    @strawberry.mutation(description="践诺: what was done about a commitment.")
    async def record_fulfilment(
        self, info: ContextInfo, commitment: strawberry.ID, fulfilment: str
    ) -> CommitmentResult:
        return await answer(
            info,
            Commitment,
            leave.record_fulfilment,
            lambda: dict(
                commitment_id=decode_id(commitment, "Commitment", "commitment"),
                fulfilment=fulfilment,
            ),
        )

    @strawberry.mutation(description="Schedule an activity, or a weekly duty (`repeatWeeks`).")
    async def schedule_activity(
        self,
        info: ContextInfo,
        community: strawberry.ID,
        kind: ActivityKind,
        title: str,
        starts_at: datetime,
        ends_at: datetime,
        grid: strawberry.ID | None = None,
        building: strawberry.ID | None = None,
        repeat_weeks: int = 1,
    ) -> ScheduleResult:
        try:
            rows = await write(
                info,
                activities.schedule,
                community_id=decode_id(community, "Community", "community"),
                kind=kind,
                title=title,
                starts_at=starts_at,
                ends_at=ends_at,
                grid_id=decode_id(grid, "Grid", "grid") if grid else None,
                building_id=decode_id(building, "Building", "building") if building else None,
                repeat_weeks=repeat_weeks,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return ScheduledActivities(activities=[Activity.from_model(r) for r in rows])

    @strawberry.mutation(description="I sign up for an activity.")
    async def sign_up(self, info: ContextInfo, activity: strawberry.ID) -> ActivityResult:
        return await _activity_change(info, activities.sign_up, activity)

    @strawberry.mutation(description="Name people for an activity.")
    async def name_people(
        self, info: ContextInfo, activity: strawberry.ID, people: list[strawberry.ID]
    ) -> ActivityResult:
        return await _activity_change(
            info,
            activities.name_people,
            activity,
            responder_ids=decode_ids(people, "Responder", "people"),
        )

    @strawberry.mutation(description="The activity was held: who came, for how many hours.")
    async def record_attendance(
        self, info: ContextInfo, activity: strawberry.ID, attended: list[AttendanceInput]
    ) -> ActivityResult:
        return await _activity_change(
            info,
            activities.record_attendance,
            activity,
            attended=[(decode_id(a.responder, "Responder", "attended"), a.hours) for a in attended],
        )

    @strawberry.mutation(description="Check a held activity: its hours and points credited.")
    async def check_activity(self, info: ContextInfo, activity: strawberry.ID) -> ActivityResult:
        return await _activity_change(info, activities.check, activity)

    @strawberry.mutation(description="Cancel a scheduled activity.")
    async def cancel_activity(
        self, info: ContextInfo, activity: strawberry.ID, reason: str
    ) -> ActivityResult:
        return await _activity_change(info, activities.cancel, activity, reason=reason)

    @strawberry.mutation(description="The district's points rule (from now on).")
    async def set_points_rule(
        self,
        info: ContextInfo,
        points_per_hour: float,
        points_per_activity: float,
        yuan_per_point: float = 1.0,
        district: str | None = None,
    ) -> RuleResult:
        try:
            row = await write(
                info,
                ledger.set_rule,
                district_id=await district_of(info, district),
                points_per_hour=points_per_hour,
                points_per_activity=points_per_activity,
                yuan_per_point=yuan_per_point,
            )
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return PointsRule(
            points_per_hour=row.points_per_hour,
            points_per_activity=row.points_per_activity,
            yuan_per_point=row.yuan_per_point,
        )

    @strawberry.mutation(description="积分兑换: spend a person's points (never past the balance).")
    async def redeem_points(
        self, info: ContextInfo, responder: strawberry.ID, points: float, what: str
    ) -> RedeemResult:
        try:
            pk = decode_id(responder, "Responder", "responder")
            await write(info, ledger.redeem, responder_id=pk, points=points, what=what)
            found = await info.context.db.run(ledger.balance_of, pk)
        except errors.DomainError as exc:
            return edit_error(exc)  # type: ignore[return-value]  # its union holds them all
        return _balance(found)

    @strawberry.mutation(description="A code to report in from a phone not on the roster yet.")
    async def request_enrolment_code(
        self, info: ContextInfo, phone: str, device: str | None = None
    ) -> RequestSignInCodeResult:
        ctx = info.context
        try:
            messages = await ctx.db.write(
                signin.request_code, phone=phone, device=device, purpose="enrolment",
                **guarded(ctx),
            )  # fmt: skip
        except errors.DomainError as exc:
            return to_error(exc)  # type: ignore[return-value]  # its union holds them all
        for message in messages:
            send_later(ctx.notifier, message)
        return SignInCodeSent(message=ENROLMENT_CODE_SENT)

    @strawberry.mutation(
        description="报到/报名: join a community's roster (the phone proved by its code)."
    )
    async def report_in(
        self,
        info: ContextInfo,
        phone: str,
        code: str,
        community: str,
        kind: EnrolmentKind,
        name: str,
        address: str,
        consent: bool,
        unit: str | None = None,
        skills: list[str] | None = None,
        availability: str = "",
        device: str | None = None,
    ) -> ReportInResult:
        ctx = info.context
        try:
            found = await ctx.db.write(
                enrolments.submit,
                phone=phone,
                code=code,
                device=device,
                community=community,
                kind=kind,
                name=name,
                address=address,
                consent=consent,
                unit=unit,
                skills=skills or [],
                availability=availability,
                **guarded(ctx),
            )
        except errors.DomainError as exc:
            return to_error(exc)  # type: ignore[return-value]  # its union holds them all
        if isinstance(found, errors.InvalidCode):
            return to_error(found)  # type: ignore[return-value]  # its union holds them all
        return EnrolmentReceived(
            message="已提交，等待社区审核 Received: the community will answer",
            submitted_at=found.submitted_at,
        )

    @strawberry.mutation(description="遴选: approve or decline an application (with a reason).")
    async def decide_enrolment(
        self,
        info: ContextInfo,
        enrolment: strawberry.ID,
        approve: bool,
        reason: str = "",
        home_grid: strawberry.ID | None = None,
    ) -> DecideResult:
        return await answer(
            info,
            Enrolment,
            enrolments.decide,
            lambda: dict(
                enrolment_id=decode_id(enrolment, "Enrolment", "enrolment"),
                approve=approve,
                reason=reason,
                home_grid_id=decode_id(home_grid, "Grid", "homeGrid") if home_grid else None,
            ),
        )


ENROLMENT_CODE_SENT = "验证码已发送 A code is on its way to this phone."


async def _activity_change(
    info: ContextInfo, fn: Any, activity: strawberry.ID, **kwargs: Any
) -> ActivityResult:
    return await answer(
        info,
        Activity,
        fn,
        lambda: {"activity_id": decode_id(activity, "Activity", "activity"), **kwargs},
    )


def _balance(b: ledger.Balance) -> ServiceBalance:
    return ServiceBalance(hours=b.hours, earned=b.earned, redeemed=b.redeemed, points=b.points)


@strawberry.type
class PeacetimeQuery:
    @strawberry.field(description="Activities in your place (or a community of it), by time.")
    async def activities(
        self,
        info: ContextInfo,
        community: strawberry.ID | None = None,
        status: ActivityStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Activity]:
        where: list[Any] = []
        if community is not None:
            where.append(
                m.Activity.community_id == expect_global_id(community, "Community", "community")
            )
        if status is not None:
            where.append(m.Activity.status == status.value)
        return await paged(info, Activity, m.Activity, where, first, after)

    @strawberry.field(description="The service ledger of a community (or your place) and period.")
    async def service_ledger(
        self,
        info: ContextInfo,
        community: strawberry.ID | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[LedgerLine]:
        community_pk = expect_global_id(community, "Community", "community") if community else None
        lines = await info.context.db.run(
            service_ledger, info.context.actor, community_pk, start, end
        )
        return [LedgerLine(**vars(x)) for x in lines]

    @strawberry.field(description="Applications to your place's communities (the queue).")
    async def enrolments(
        self,
        info: ContextInfo,
        status: EnrolmentStatus | None = EnrolmentStatus.PENDING,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Enrolment]:
        where = [] if status is None else [m.Enrolment.status == status.value]
        return await paged(info, Enrolment, m.Enrolment, where, first, after)

    @strawberry.field(description="A unit's cadres against what its pairings ask.")
    async def unit_roster(self, info: ContextInfo, unit: strawberry.ID) -> UnitRoster:
        found = await info.context.db.run(
            roster.unit_roster,
            actor=info.context.actor,
            unit_id=expect_global_id(unit, "Unit", "unit"),
            now=info.context.clock.now(),
        )
        return UnitRoster(
            unit=Unit.from_model(found.unit),
            pairings=[
                PairingNeedEntry(
                    community_code=p.community_code, community_name=p.community_name, quota=p.quota
                )
                for p in found.pairings
            ],
            quota=found.quota,
            registered=len(found.cadres),
            on_leave=len(found.away),
            available=found.available,
            cadres=[Responder.from_model(c) for c in found.cadres],
        )

    @strawberry.field(description="The district's points rule.")
    async def points_rule(self, info: ContextInfo, district: str | None = None) -> PointsRule:
        found = await info.context.db.run(ledger.rule_of, await district_of(info, district))
        return PointsRule(**found)


def service_ledger(
    session: Session,
    actor: Any,
    community_id: int | None,
    start: datetime | None,
    end: datetime | None,
) -> list[ledger.Line]:
    """The ledger lines of the communities asked, within the caller's place."""
    return ledger.history(
        session,
        community_ids=ledger.communities_asked(session, actor, community_id),
        start=start,
        end=end,
    )
