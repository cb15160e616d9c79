"""The service ledger (志愿服务时长与积分): hours and points from mobilisations and from
peacetime activities in one table, the district's points rule, a balance per person, and
redemptions that never take it below zero."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CompoundSelect, Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import Actor
from mobilize.auth.policy import editors
from mobilize.auth.scope import in_place, person_in_place
from mobilize.clock import Clock
from mobilize.errors import Forbidden, InvalidInput
from mobilize.events import record_event
from mobilize.models import (
    Activity,
    ActivityPerson,
    Community,
    Grid,
    Mobilisation,
    PointsRule,
    Redemption,
    Responder,
    ServiceRecord,
)

# Bishan's rule, where a district has set none: 2 points an hour, 5 an activity, 1 yuan each.
DEFAULT_RULE = {"points_per_hour": 2.0, "points_per_activity": 5.0, "yuan_per_point": 1.0}


def rule_of(session: Session, district_id: int) -> dict[str, float]:
    """The district's points rule (its own, else the default)."""
    row = session.get(PointsRule, district_id)
    if row is None:
        return dict(DEFAULT_RULE)
    return {
        "points_per_hour": row.points_per_hour,
        "points_per_activity": row.points_per_activity,
        "yuan_per_point": row.yuan_per_point,
    }


def points_for(rule: dict[str, float], hours: float) -> float:
    """What a stretch of service earns: its hours at the hourly rate, plus one activity."""
    return round(hours * rule["points_per_hour"] + rule["points_per_activity"], 1)


def set_rule(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    district_id: int,
    points_per_hour: float,
    points_per_activity: float,
    yuan_per_point: float,
) -> PointsRule:
    """Change the district's rule: what is credited from now on (credited points stay)."""
    keeper = editors(actor, "Mutation.setPointsRule")
    if not any(b.district_id == district_id for b in keeper.bindings):
        raise Forbidden("setPointsRule: 不是您的区 not your district")
    for field, value in (
        ("pointsPerHour", points_per_hour),
        ("pointsPerActivity", points_per_activity),
        ("yuanPerPoint", yuan_per_point),
    ):
        if not 0 <= value <= 1000:
            raise InvalidInput(field, f"{value} is outside 0 to 1000")
    row = session.get(PointsRule, district_id, with_for_update=True)
    before = rule_of(session, district_id)
    if row is None:
        row = PointsRule(district_id=district_id)
        session.add(row)
    row.points_per_hour = points_per_hour
    row.points_per_activity = points_per_activity
    row.yuan_per_point = yuan_per_point
    row.changed_at = clock.now()
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="points.rule",
        subject_type="district",
        subject_id=str(district_id),
        payload={"before": before, "after": rule_of(session, district_id)},
    )
    return row


@dataclass(frozen=True)
class Balance:
    hours: float
    earned: float
    redeemed: float

    @property
    def points(self) -> float:
        return round(self.earned - self.redeemed, 1)


def balance_of(session: Session, responder_id: int) -> Balance:
    hours, earned = session.execute(
        select(
            func.coalesce(func.sum(ServiceRecord.hours), 0.0),
            func.coalesce(func.sum(ServiceRecord.points), 0.0),
        ).where(ServiceRecord.responder_id == responder_id)
    ).one()
    redeemed = session.scalar(
        select(func.coalesce(func.sum(Redemption.points), 0.0)).where(
            Redemption.responder_id == responder_id
        )
    )
    return Balance(round(float(hours), 2), round(float(earned), 1), round(float(redeemed or 0), 1))


def redeem(
    session: Session, *, actor: Actor, clock: Clock, responder_id: int, points: float, what: str
) -> Redemption:
    """积分兑换: spend points on something (a service, goods), never past the balance. The
    person's row is locked first, so two redemptions at once cannot both spend the same
    points."""
    keeper = editors(actor, "Mutation.redeemPoints")
    responder = session.scalar(
        select(Responder).where(Responder.id == responder_id).with_for_update()
    )
    if responder is None or not person_in_place(session, keeper, responder_id):
        raise Forbidden("redeemPoints: 此人不在您的范围 this person is not in your place")
    what = validation.text("what", what, max_len=200)
    if not 0 < points <= 100_000:
        raise InvalidInput("points", f"{points} is not a positive number of points")
    balance = balance_of(session, responder.id)
    if points > balance.points:
        raise InvalidInput(
            "points", f"积分不足 only {balance.points:g} points left; {points:g} asked"
        )
    row = Redemption(
        responder_id=responder.id,
        points=round(points, 1),
        what=what,
        redeemed_at=clock.now(),
        recorded_by=actor.label,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="points.redeemed",
        subject_type="responder",
        subject_id=str(responder.id),
        payload={
            "code": responder.code,
            "points": row.points,
            "what": what,
            "balance": round(balance.points - row.points, 1),
        },
    )
    return row


@dataclass(frozen=True)
class Line:
    """One line of a person's service history: earned (positive) or redeemed (negative)."""

    responder_code: str
    name: str
    community: str
    at: datetime
    source: str  # mobilisation | activity | redemption
    title: str
    hours: float
    points: float


def history(
    session: Session,
    *,
    responder_ids: list[int] | None = None,
    community_ids: list[int] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Line]:
    """Ledger lines, oldest first: of these people, or of the people of these communities
    (by home grid, else by the activities they served in)."""

    def earned(source: str, model: Any, column: Any) -> Select[Any]:
        """What a mobilisation or an activity credited, titled by it."""
        return select(
            ServiceRecord.responder_id,
            ServiceRecord.released_at.label("at"),
            literal(source).label("source"),
            model.title.label("title"),
            ServiceRecord.hours,
            ServiceRecord.points,
        ).join(model, model.id == column)

    spent = select(
        Redemption.responder_id,
        Redemption.redeemed_at.label("at"),
        literal("redemption").label("source"),
        Redemption.what.label("title"),
        literal(0.0).label("hours"),
        (-Redemption.points).label("points"),
    )
    lines = union_all(
        earned("mobilisation", Mobilisation, ServiceRecord.mobilisation_id),
        earned("activity", Activity, ServiceRecord.activity_id),
        spent,
    ).subquery()
    home = (
        select(Community.name)
        .join(Grid, Grid.community_id == Community.id)
        .where(Grid.id == Responder.home_grid_id)
        .scalar_subquery()
    )
    stmt = select(
        Responder.code, Responder.name, func.coalesce(home, ""), lines.c.at, lines.c.source,
        lines.c.title, lines.c.hours, lines.c.points,
    ).join(lines, lines.c.responder_id == Responder.id)  # fmt: skip
    if responder_ids is not None:
        stmt = stmt.where(Responder.id.in_(responder_ids))
    if community_ids is not None:
        stmt = stmt.where(Responder.id.in_(people_of(community_ids)))
    if start is not None:
        stmt = stmt.where(lines.c.at >= start)
    if end is not None:
        stmt = stmt.where(lines.c.at < end)
    return [
        Line(r[0], r[1], r[2], r[3], r[4], r[5], round(float(r[6]), 2), round(float(r[7]), 1))
        for r in session.execute(stmt.order_by(lines.c.at, Responder.code))
    ]


def people_of(community_ids: list[int]) -> CompoundSelect[Any]:
    """The people of these communities: who lives there (home grid), and who served in an
    activity there."""
    lives = (
        select(Responder.id)
        .join(Grid, Grid.id == Responder.home_grid_id)
        .where(Grid.community_id.in_(community_ids))
    )
    served = (
        select(ActivityPerson.responder_id)
        .join(Activity, Activity.id == ActivityPerson.activity_id)
        .where(Activity.community_id.in_(community_ids))
    )
    return union_all(lives, served)


def communities_asked(session: Session, actor: Actor, community_id: int | None) -> list[int]:
    """The communities an export covers: the one asked (within the caller's place), else all
    of the caller's place."""
    if community_id is not None:
        if not session.scalar(select(in_place(actor, community_id))):
            raise Forbidden("exportService: 社区不在您的范围 community outside your place")
        return [community_id]
    return list(session.scalars(select(Community.id).where(in_place(actor, Community.id))))
