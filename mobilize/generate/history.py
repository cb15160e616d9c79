"""A year of peacetime for a generated district, so a demo or a drill starts from a lived-in
district: people who reported in (most approved, some waiting), some away on leave at any
moment, commitments made and kept, a weekly patrol and a monthly event in every community
with who came, their hours and points credited, and some points redeemed.

Written straight into the tables (one summary event), seeded, so the same district, seed
and moment give the same history. The proportions are the seeds': Xiaogan's 6,000 cadres
reporting to 80 communities (75 a community a year, here scaled to the roster), a patrol a
week, points at Bishan's rule (2 an hour, 5 an activity)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import shapely
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.db.types import parse_all, unparsed
from mobilize.events import record_event
from mobilize.generate import names
from mobilize.models import (
    Activity,
    ActivityPerson,
    Commitment,
    Community,
    District,
    Enrolment,
    Grid,
    Leave,
    Redemption,
    Responder,
    ResponderKind,
    ServiceRecord,
)
from mobilize.models.base import Origin
from mobilize.peacetime.ledger import points_for, rule_of

AWAY_NOW = 0.02  # of the roster on leave at any moment
AWAY_THIS_YEAR = 0.12  # took a leave that has ended
ENROLMENTS_PER_COMMUNITY = 4  # reported in this year: most approved, one in five waiting
PATROLLERS = (3, 7)  # people on a weekly patrol, from the community's own
EVENT_GOERS = (8, 20)  # at a monthly community event
REDEEMING = 0.3  # of those with points, who spent some


@dataclass(frozen=True)
class History:
    enrolments: int
    leaves: int
    activities: int
    credited: int
    redemptions: int
    commitments: int


def write_history(session: Session, *, district_id: int, clock: Clock, seed: int = 0) -> History:
    """The year before `clock.now()` for the district; once (a district with activities on
    record already is left as it is)."""
    if session.scalar(
        select(func.count()).select_from(Activity).where(Activity.district_id == district_id)
    ):
        return History(0, 0, 0, 0, 0, 0)
    code = session.scalars(select(District.code).where(District.id == district_id)).one()
    # By the district's code, not its id: the same district gives the same year anywhere.
    rng = np.random.default_rng((seed, zlib.crc32(code.encode())))
    now = clock.now()
    communities = session.execute(
        select(Community.id, Community.code, unparsed(Community.geom))
        .where(Community.district_id == district_id, Community.current())
        .order_by(Community.id)
    ).all()
    people = session.execute(
        select(Responder.id, Responder.kind, Grid.community_id)
        .outerjoin(Grid, Grid.id == Responder.home_grid_id)
        .where(Responder.district_id == district_id, Responder.current())
        .order_by(Responder.id)
    ).all()
    enrolments = _enrolments(session, rng, district_id, communities, now)
    leaves = _leaves(session, rng, [p.id for p in people], now)
    commitments = _commitments(session, rng, people, now)
    by_community: dict[int, list[int]] = {}
    for p in people:
        if p.community_id is not None:
            by_community.setdefault(p.community_id, []).append(p.id)
    activities, credited = _activities(session, rng, district_id, communities, by_community, now)
    redemptions = _redemptions(session, rng, district_id, now)
    found = History(enrolments, leaves, activities, credited, redemptions, commitments)
    record_event(
        session,
        clock=clock,
        actor="generator",
        kind="history.generated",
        subject_type="district",
        subject_id=str(district_id),
        payload={"seed": seed, **vars(found)},
    )
    return found


def _enrolments(
    session: Session,
    rng: np.random.Generator,
    district_id: int,
    communities: Sequence[Any],
    now: datetime,
) -> int:
    total = ENROLMENTS_PER_COMMUNITY * len(communities)
    who = names.person_names(total, rng)
    phones = names.phone_numbers(total, rng)
    taken = set(
        session.scalars(select(Responder.phone).where(Responder.district_id == district_id))
    )
    shapes = parse_all([c.geom for c in communities])
    made = 0
    for k in range(total):
        community = communities[k % len(communities)]
        if phones[k] in taken:
            continue
        days = int(rng.integers(1, 365))
        submitted = now - timedelta(days=days, hours=int(rng.integers(0, 24)))
        waiting = days < 30 and rng.random() < 0.6
        kind = ("party_member", "volunteer")[int(rng.integers(0, 2))]
        enrolment = Enrolment(
            district_id=district_id,
            community_id=community.id,
            kind=kind,
            name=who[k],
            phone=phones[k],
            address=f"{community.code}辖区",
            skills=[],
            availability="周末",
            consent_at=submitted,
            status="pending" if waiting else "approved",
            submitted_at=submitted,
            decided_at=None if waiting else submitted + timedelta(days=2),
            decided_by=None if waiting else "generator",
        )
        session.add(enrolment)
        session.flush()
        if not waiting:
            home = shapes[k % len(communities)].representative_point()
            person = Responder(
                district_id=district_id,
                code=f"E{enrolment.id:06d}",
                name=who[k],
                phone=phones[k],
                kind=ResponderKind.VOLUNTEER.value,
                geom=shapely.Point(home.x, home.y),
                skills=[],
                seniority=0,
                origin=Origin.API,
            )
            session.add(person)
            session.flush()
            enrolment.responder_id = person.id
        made += 1
    return made


def _leaves(session: Session, rng: np.random.Generator, ids: list[int], now: datetime) -> int:
    rows = []
    reasons = ("ill", "travelling", "caring", "other")
    for pk in ids:
        draw = rng.random()
        reason = reasons[int(rng.integers(0, 4))]
        if draw < AWAY_NOW:  # away now, back within two weeks
            starts = now - timedelta(days=int(rng.integers(0, 7)))
            ends = now + timedelta(days=int(rng.integers(1, 14)))
        elif draw < AWAY_NOW + AWAY_THIS_YEAR:  # away once this year, back since
            starts = now - timedelta(days=int(rng.integers(20, 360)))
            ends = starts + timedelta(days=int(rng.integers(1, 15)))
        else:
            continue
        rows.append(
            {"responder_id": pk, "starts_at": starts, "ends_at": ends, "reason": reason,
             "note": "", "recorded_by": "generator", "recorded_at": starts}
        )  # fmt: skip
    if rows:
        session.execute(insert(Leave), rows)
    return len(rows)


def _commitments(
    session: Session, rng: np.random.Generator, people: Sequence[Any], now: datetime
) -> int:
    promises = ("每月参加一次社区志愿服务", "联系帮扶一户困难家庭", "每周巡查一次楼栋",
                "参与一次应急演练")  # fmt: skip
    rows = []
    for p in people:
        if p.kind != ResponderKind.SUNK_CADRE or rng.random() > 0.5:
            continue
        kept = rng.random() < 0.6
        made = now - timedelta(days=int(rng.integers(200, 330)))
        rows.append(
            {
                "responder_id": p.id,
                "year": made.year,
                "promise": promises[int(rng.integers(0, len(promises)))],
                "fulfilment": "已完成" if kept else "",
                "recorded_at": made,
                "fulfilled_at": made + timedelta(days=120) if kept else None,
            }
        )
    if rows:
        session.execute(insert(Commitment), rows)
    return len(rows)


def _activities(
    session: Session,
    rng: np.random.Generator,
    district_id: int,
    communities: Sequence[Any],
    by_community: dict[int, list[int]],
    now: datetime,
) -> tuple[int, int]:
    rule = rule_of(session, district_id)
    first_evening = (now - timedelta(days=365)).replace(hour=11, minute=0, second=0, microsecond=0)
    plans: list[tuple[int, str, str, datetime, float, tuple[int, int]]] = []
    for k, c in enumerate(communities):
        cid = c.id
        for week in range(52):
            start = first_evening + timedelta(weeks=week, days=k % 7)
            plans.append((cid, "patrol", "微网格周巡逻", start, 2.0, PATROLLERS))
        for month in range(12):
            start = first_evening + timedelta(days=30 * month + 5, hours=-8)
            plans.append((cid, "community_event", "社区志愿服务日", start, 3.0, EVENT_GOERS))
    activity_rows = [
        {"district_id": district_id, "community_id": cid, "kind": kind, "title": title,
         "starts_at": start, "ends_at": start + timedelta(hours=hours), "status": "checked",
         "created_by": "generator", "created_at": start - timedelta(days=3),
         "done_at": start + timedelta(hours=hours), "checked_at": start + timedelta(days=1),
         "checked_by": "generator"}
        for cid, kind, title, start, hours, _ in plans
    ]  # fmt: skip
    ids = list(
        session.scalars(
            insert(Activity).returning(Activity.id, sort_by_parameter_order=True), activity_rows
        )
    )
    people_rows, ledger_rows = [], []
    for pk, (cid, _, _, start, hours, (low, high)) in zip(ids, plans, strict=True):
        pool = by_community.get(cid, [])
        if not pool:
            continue
        count = min(len(pool), int(rng.integers(low, high + 1)))
        for person in rng.choice(pool, size=count, replace=False).tolist():
            people_rows.append(
                {"activity_id": pk, "responder_id": person, "how": "signed_up",
                 "joined_at": start - timedelta(days=1), "attended": True, "hours": hours}
            )  # fmt: skip
            ledger_rows.append(
                {"mobilisation_id": None, "activity_id": pk, "responder_id": person,
                 "checked_in_at": start, "released_at": start + timedelta(hours=hours),
                 "hours": hours, "points": points_for(rule, hours)}
            )  # fmt: skip
    for rows, model in ((people_rows, ActivityPerson), (ledger_rows, ServiceRecord)):
        for first in range(0, len(rows), 10_000):
            session.execute(insert(model), rows[first : first + 10_000])
    return len(ids), len(ledger_rows)


def _redemptions(
    session: Session, rng: np.random.Generator, district_id: int, now: datetime
) -> int:
    earned = session.execute(
        select(ServiceRecord.responder_id, func.sum(ServiceRecord.points))
        .join(Responder, Responder.id == ServiceRecord.responder_id)
        .where(Responder.district_id == district_id)
        .group_by(ServiceRecord.responder_id)
        .order_by(ServiceRecord.responder_id)
    ).all()
    goods = ("超市购物券", "理发服务", "家电维修", "体检套餐")
    rows = []
    for responder_id, points in earned:
        if rng.random() > REDEEMING or points < 20:
            continue
        spend = float(round(points * rng.uniform(0.2, 0.6)))
        rows.append(
            {"responder_id": responder_id, "points": spend,
             "what": goods[int(rng.integers(0, len(goods)))],
             "redeemed_at": now - timedelta(days=int(rng.integers(1, 60))),
             "recorded_by": "generator"}
        )  # fmt: skip
    if rows:
        session.execute(insert(Redemption), rows)
    return len(rows)
