"""Peacetime activities: a community schedules a patrol, a 扫楼 round, a drill or an event
(once, or weekly as a recurring duty) without any mobilisation; people sign up or are named;
once held, who came and for how long is recorded; the community checks it, and only then
are the hours and points credited to the ledger, once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import Actor
from mobilize.auth.policy import editors
from mobilize.auth.scope import in_place, person_in_place, visible
from mobilize.clock import Clock
from mobilize.db.bulk import insert_rows
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.models import (
    Activity,
    ActivityKind,
    ActivityPerson,
    ActivityStatus,
    Building,
    Community,
    Grid,
    GridLevel,
    Responder,
    ServiceRecord,
    table_of,
)
from mobilize.peacetime.availability import is_away
from mobilize.peacetime.ledger import points_for, rule_of

LONGEST = timedelta(hours=24)
MOST_WEEKS = 52


def _event(
    session: Session, clock: Clock, actor: Actor, event: str, a: Activity, **more: object
) -> None:
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind=event,
        subject_type="activity",
        subject_id=str(a.id),
        payload={"title": a.title, "community": a.community_id, **more},
    )


def _keeper_of(session: Session, actor: Actor, activity: Activity, operation: str) -> Actor:
    keeper = editors(actor, operation)
    if not session.scalar(select(in_place(keeper, activity.community_id))):
        raise Forbidden(f"{operation.split('.')[-1]}: 活动不在您的范围 outside your place")
    return keeper


def _activity(session: Session, actor: Actor, activity_id: int) -> Activity:
    found = session.scalar(
        select(Activity)
        .where(Activity.id == activity_id, visible(actor, Activity))
        .with_for_update()
    )
    if found is None:
        raise NotFound(f"没有这个活动 No activity {activity_id}")
    return found


def schedule(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    community_id: int,
    kind: ActivityKind,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    grid_id: int | None = None,
    building_id: int | None = None,
    repeat_weeks: int = 1,
) -> list[Activity]:
    """One activity, or a weekly duty of `repeat_weeks` occurrences sharing a series."""
    keeper = editors(actor, "Mutation.scheduleActivity")
    community = session.scalar(
        select(Community).where(Community.id == community_id, Community.current())
    )
    if community is None or not session.scalar(select(in_place(keeper, community_id))):
        raise NotFound(f"没有这个社区 No community {community_id} in your place")
    title = validation.text("title", title, max_len=200)
    if not starts_at < ends_at <= starts_at + LONGEST:
        raise InvalidInput("endsAt", "after the start, and within a day of it")
    if not 1 <= repeat_weeks <= MOST_WEEKS:
        raise InvalidInput("repeatWeeks", f"1 to {MOST_WEEKS}")
    if grid_id is not None:
        grid = session.get(Grid, grid_id)
        if grid is None or grid.community_id != community_id or grid.level != GridLevel.MICRO:
            raise InvalidInput("grid", "not a micro-grid of this community")
    if building_id is not None:
        building = session.get(Building, building_id)
        in_grid = building is not None and (grid_id is None or building.micro_grid_id == grid_id)
        if not in_grid or building is None:
            raise InvalidInput("building", "not a building of this community (or grid)")
        owner = session.get_one(Grid, building.micro_grid_id)
        if owner.community_id != community_id:
            raise InvalidInput("building", "not a building of this community")
    now = clock.now()
    made = []
    for week in range(repeat_weeks):
        activity = Activity(
            district_id=community.district_id,
            community_id=community_id,
            grid_id=grid_id,
            building_id=building_id,
            kind=kind.value,
            title=title,
            starts_at=starts_at + timedelta(weeks=week),
            ends_at=ends_at + timedelta(weeks=week),
            status=ActivityStatus.SCHEDULED.value,
            created_by=actor.label,
            created_at=now,
        )
        session.add(activity)
        made.append(activity)
    session.flush()
    if repeat_weeks > 1:
        for activity in made:
            activity.series = f"series-{made[0].id}"
    for activity in made:
        _event(session, clock, actor, "activity.scheduled", activity, kind=kind.value,
               starts_at=activity.starts_at.isoformat(), series=activity.series)  # fmt: skip
    return made


def sign_up(session: Session, *, actor: Actor, clock: Clock, activity_id: int) -> Activity:
    """A person puts their own name down."""
    activity = _activity(session, actor, activity_id)
    mine = actor.responder_ids
    if not mine:
        raise Forbidden("signUp: 只有队员本人可以报名 only a responder signs themself up")
    return _join(session, actor, clock, activity, mine[0], "signed_up")


def name_people(
    session: Session, *, actor: Actor, clock: Clock, activity_id: int, responder_ids: Sequence[int]
) -> Activity:
    """Whoever keeps the community names people for it."""
    activity = _activity(session, actor, activity_id)
    keeper = _keeper_of(session, actor, activity, "Mutation.namePeople")
    validation.items("people", list(responder_ids), min_items=1, max_items=200)
    for pk in sorted(set(responder_ids)):
        if not person_in_place(session, keeper, pk):
            raise Forbidden("namePeople: 此人不在您的范围 someone named is outside your place")
        _join(session, actor, clock, activity, pk, "named")
    return activity


def _join(
    session: Session, actor: Actor, clock: Clock, activity: Activity, responder_id: int, how: str
) -> Activity:
    if activity.status != ActivityStatus.SCHEDULED or activity.ends_at <= clock.now():
        raise InvalidInput("activity", f"{activity.title} is {activity.status}, no longer open")
    person = session.scalar(
        select(Responder).where(Responder.id == responder_id, Responder.current())
    )
    if person is None:
        raise NotFound(f"没有这个人员 No responder {responder_id}")
    if is_away(session, person.id, activity.starts_at):
        raise InvalidInput("people", f"{person.name} is on leave then")
    if session.get(ActivityPerson, (activity.id, person.id)) is None:
        session.add(
            ActivityPerson(
                activity_id=activity.id, responder_id=person.id, how=how, joined_at=clock.now()
            )
        )
        session.flush()
        _event(session, clock, actor, f"activity.{how}", activity, responder=person.code)
    return activity


def record_attendance(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    activity_id: int,
    attended: Sequence[tuple[int, float]],
) -> Activity:
    """The activity was held: who came (and how many hours each). Those signed up or named
    and not listed did not come; anyone listed who had not signed up came all the same."""
    activity = _activity(session, actor, activity_id)
    keeper = _keeper_of(session, actor, activity, "Mutation.recordAttendance")
    if activity.status != ActivityStatus.SCHEDULED:
        raise InvalidInput("activity", f"{activity.title} is {activity.status}")
    if activity.starts_at > clock.now():
        raise InvalidInput("activity", "it has not started yet")
    validation.items("attended", list(attended), max_items=500)
    came = dict(attended)
    for pk, hours in came.items():
        if not 0 < hours <= 24:
            raise InvalidInput("attended", f"{hours} hours is not 0 to 24")
        if (
            not person_in_place(session, keeper, pk)
            and session.get(ActivityPerson, (activity.id, pk)) is None
        ):
            raise Forbidden(
                "recordAttendance: 此人不在您的范围 someone listed is outside your place"
            )
    joined = {p.responder_id: p for p in session.scalars(
        select(ActivityPerson).where(ActivityPerson.activity_id == activity.id)
    )}  # fmt: skip
    now = clock.now()
    for pk in came:
        if pk not in joined:
            joined[pk] = ActivityPerson(
                activity_id=activity.id, responder_id=pk, how="walked_in", joined_at=now
            )
            session.add(joined[pk])
    for pk, person in joined.items():
        person.attended = pk in came
        person.hours = round(came[pk], 2) if pk in came else None
    activity.status = ActivityStatus.DONE
    activity.done_at = now
    session.flush()
    _event(session, clock, actor, "activity.done", activity,
           attended={str(k): v for k, v in sorted(came.items())})  # fmt: skip
    return activity


def check(session: Session, *, actor: Actor, clock: Clock, activity_id: int) -> Activity:
    """The community checks a held activity: its hours and points go to the ledger, once."""
    activity = _activity(session, actor, activity_id)
    _keeper_of(session, actor, activity, "Mutation.checkActivity")
    if activity.status != ActivityStatus.DONE:
        raise InvalidInput("activity", f"{activity.title} is {activity.status}, not held")
    rule = rule_of(session, activity.district_id)
    came = session.scalars(
        select(ActivityPerson)
        .where(ActivityPerson.activity_id == activity.id, ActivityPerson.attended.is_(True))
        .order_by(ActivityPerson.responder_id)
    ).all()
    rows = [
        {
            "mobilisation_id": None,
            "activity_id": activity.id,
            "responder_id": p.responder_id,
            "checked_in_at": activity.starts_at,
            "released_at": activity.ends_at,
            "hours": p.hours or 0.0,
            "points": points_for(rule, p.hours or 0.0),
        }
        for p in came
    ]
    insert_rows(session, table_of(ServiceRecord), rows)
    activity.status = ActivityStatus.CHECKED
    activity.checked_at = clock.now()
    activity.checked_by = actor.label
    _event(session, clock, actor, "activity.checked", activity,
           credited={str(r["responder_id"]): r["points"] for r in rows})  # fmt: skip
    return activity


def cancel(
    session: Session, *, actor: Actor, clock: Clock, activity_id: int, reason: str
) -> Activity:
    activity = _activity(session, actor, activity_id)
    _keeper_of(session, actor, activity, "Mutation.cancelActivity")
    if activity.status != ActivityStatus.SCHEDULED:
        raise InvalidInput("activity", f"{activity.title} is {activity.status}")
    activity.status = ActivityStatus.CANCELLED
    activity.cancel_reason = validation.text("reason", reason, max_len=500)
    _event(session, clock, actor, "activity.cancelled", activity, reason=activity.cancel_reason)
    return activity
