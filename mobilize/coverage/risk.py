"""Which micro-grids will miss the deadline, why, and who could still save them.

Each person holding a slot has a projected arrival: on site already; acknowledged, at the
time they promised (or their travel time after acknowledging), and once past it a few minutes
from now, until they are late by as long as an unanswered call is waited for and are no
longer counted on (else a no-show's ever-slipping projection would block every fix); merely
assigned, after the setup time and their travel, until they have left the call unanswered
too long and are no longer counted on. A grid's minimum arrives when its `min_on_site`-th
person does. A grid is at risk when that is after the deadline, never, or rests on someone
already past their promised time. "The deadline" here is the staffing rule's aim when that
is sooner (`aim_minutes`): the command centres act on a grid that would be staffed at minute
95 while someone could still be there at 40. The suggested fix is the person who could
arrive first: a free responder, or one whose own grid keeps its minimum without them; each
person is suggested once."""

from __future__ import annotations

import enum
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.orm import Session

from mobilize.auth.scope import belongs_in_place, place_asked, visible
from mobilize.coverage.service import scope_states
from mobilize.db.session import core_rows
from mobilize.mobilisation import callup
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import (
    HOLDING,
    HOLDING_VALUES,
    Assignment,
    AssignmentRole,
    AssignmentStatus,
    Community,
    GridState,
    GridStatus,
    Mobilisation,
    MobilisationArea,
    Responder,
    table_of,
)

_GAVE_UP = frozenset({AssignmentStatus.DECLINED.value, AssignmentStatus.NO_SHOW.value})
_DONE = frozenset({GridStatus.MOBILISED.value, GridStatus.CHECKED.value})


class RiskReason(enum.StrEnum):
    NOBODY_ASSIGNED = "nobody_assigned"  # fewer people hold it than its minimum
    DECLINED = "declined"  # and someone sent there declined or did not show
    NOBODY_ACKNOWLEDGED = "nobody_acknowledged"  # a call left unanswered too long
    NOT_ARRIVED_BY_ETA = "not_arrived_by_eta"  # someone is past the time they promised
    TOO_FAR = "too_far"  # the people coming cannot be there in time
    STANDBY_ONLY = "standby_only"  # its minimum rests on a standby the system sent: a nearer
    # person, if any, is still worth sending (the standby is then released)


# What people read: Chinese, and English where the page is switched to it.
REASON_NAMES_ZH_EN = {
    RiskReason.NOBODY_ASSIGNED: ("无人分配", "nobody assigned"),
    RiskReason.DECLINED: ("有人拒绝", "someone declined"),
    RiskReason.NOBODY_ACKNOWLEDGED: ("无人确认", "nobody acknowledged"),
    RiskReason.NOT_ARRIVED_BY_ETA: ("超时未到", "late past their ETA"),
    RiskReason.TOO_FAR: ("距离太远", "too far to make it"),
    RiskReason.STANDBY_ONLY: ("仅有备岗", "only a standby"),
}
REASON_NAMES = {reason: zh for reason, (zh, _) in REASON_NAMES_ZH_EN.items()}


@dataclass(frozen=True)
class Suggestion:
    """Send this person to the grid: they would arrive at `arrives_at`."""

    responder_id: int
    assignment_id: int | None  # None: a free responder, called up
    from_grid_id: int | None  # where they hold a slot now
    travel_minutes: float
    arrives_at: datetime


@dataclass
class GridRisk:
    grid_id: int
    community_id: int
    street_id: int
    status: str
    projected: datetime | None  # when the minimum is projected on site; None: never
    at_risk: bool
    reasons: list[RiskReason] = field(default_factory=list)
    suggestion: Suggestion | None = None
    standby_coming: bool = False  # a standby the system sent is on its way (or called)

    def minutes_late(self, deadline: datetime) -> float | None:
        if self.projected is None:
            return None
        return round((self.projected - deadline).total_seconds() / 60.0, 1)


@dataclass(frozen=True)
class _Holder:
    assignment_id: int
    responder_id: int
    grid_id: int
    arrives: datetime | None  # None: not counted on
    overdue: bool  # acknowledged, past the promised time, not on site
    unanswered: bool  # assigned, not answered within the timeout
    on_site: bool
    standby: bool


@dataclass(frozen=True)
class _Waits:
    """The rule's waits as durations, made once per assessment (a beat projects every
    holder of the district's open grids, each minute)."""

    ack_timeout: timedelta
    late_slip: timedelta
    setup: timedelta

    @staticmethod
    def of(rule: StaffingRule) -> _Waits:
        return _Waits(
            timedelta(minutes=rule.ack_timeout_minutes),
            timedelta(minutes=rule.late_slip_minutes),
            timedelta(minutes=rule.setup_minutes),
        )


_ON_SITE = AssignmentStatus.ON_SITE.value
_ON_THE_WAY = (AssignmentStatus.ACKNOWLEDGED.value, AssignmentStatus.EN_ROUTE.value)
_STANDBY = AssignmentRole.STANDBY.value
_HOLDING = frozenset(HOLDING_VALUES)


def _projection(a: Any, waits: _Waits, now: datetime) -> _Holder:
    """One holder's projected arrival (see the module's docstring)."""
    travel = timedelta(minutes=a.travel_minutes)
    arrives: datetime | None
    overdue = unanswered = False
    if a.status == _ON_SITE:
        arrives = a.checked_in_at or a.updated_at
    elif a.status in _ON_THE_WAY:
        since = a.acknowledged_at or a.updated_at
        promised = since + (
            timedelta(minutes=a.eta_minutes) if a.eta_minutes is not None else travel
        )
        overdue = now > promised
        if now > promised + waits.ack_timeout:
            arrives = None  # this late, no longer counted on: a fix need not beat them
        else:
            arrives = now + waits.late_slip if overdue else promised
    else:
        if now > a.updated_at + waits.ack_timeout:
            arrives, unanswered = None, True
        else:
            arrives = max(now, a.updated_at + waits.setup) + travel
    return _Holder(
        a.id,
        a.responder_id,
        a.grid_id,
        arrives,
        overdue,
        unanswered,
        a.status == _ON_SITE,
        a.role == _STANDBY,
    )


def _grid_risk(
    state: Any, holders: list[_Holder], gave_up: bool, rule: StaffingRule, deadline: datetime
) -> GridRisk:
    counted = sorted(h.arrives for h in holders if h.arrives is not None)
    k = rule.min_on_site
    projected = counted[k - 1] if len(counted) >= k else None
    coming = [(h.arrives, h) for h in holders if h.arrives is not None]
    needed = [h for _, h in sorted(coming, key=lambda pair: pair[0])][:k]
    done = state.status in _DONE
    reasons: list[RiskReason] = []
    if not done:
        if len(holders) < k:
            reasons.append(RiskReason.DECLINED if gave_up else RiskReason.NOBODY_ASSIGNED)
        if any(h.unanswered for h in holders) and len(counted) < k:
            reasons.append(RiskReason.NOBODY_ACKNOWLEDGED)
        if any(h.overdue for h in needed) or (len(counted) < k and any(h.overdue for h in holders)):
            reasons.append(RiskReason.NOT_ARRIVED_BY_ETA)
        if projected is not None and projected > deadline and not reasons:
            reasons.append(RiskReason.TOO_FAR)
        if any(h.standby and not h.on_site for h in needed) and not reasons:
            reasons.append(RiskReason.STANDBY_ONLY)
        if projected is None and not reasons:
            reasons.append(RiskReason.DECLINED if gave_up else RiskReason.NOBODY_ASSIGNED)
    at_risk = not done and (projected is None or projected > deadline or bool(reasons))
    return GridRisk(
        grid_id=state.grid_id,
        community_id=state.community_id,
        street_id=state.street_id,
        status=state.status,
        projected=projected,
        at_risk=at_risk,
        reasons=reasons if at_risk else [],
        standby_coming=any(h.standby and not h.on_site for h in holders),
    )


def _projected(
    session: Session,
    mobilisation: Mobilisation,
    street_id: int | None,
    community_id: int | None,
    open_only: bool,
) -> Sequence[Any]:
    """The assignments to the scope's grids, with what projections need (no geometry): a
    street's risk list reads its street's, not the whole district's."""
    stmt = select(
        Assignment.id,
        Assignment.responder_id,
        Assignment.grid_id,
        Assignment.status,
        Assignment.role,
        Assignment.travel_minutes,
        Assignment.eta_minutes,
        Assignment.acknowledged_at,
        Assignment.checked_in_at,
        Assignment.updated_at,
    ).where(Assignment.mobilisation_id == mobilisation.id)
    if street_id is not None or community_id is not None or open_only:
        stmt = scope_states(
            stmt.join(
                GridState,
                and_(
                    GridState.mobilisation_id == Assignment.mobilisation_id,
                    GridState.grid_id == Assignment.grid_id,
                ),
            ),
            street_id,
            community_id,
        )
    if open_only:
        stmt = stmt.where(GridState.status.not_in(_DONE))
    return session.execute(stmt).all()


def _holdings(session: Session, mobilisation: Mobilisation) -> Sequence[Any]:
    """Every assignment of the mobilisation, only who holds which grid: what a fix must not
    break anywhere (a donor grid keeps its minimum; nobody is called twice)."""
    return core_rows(session, _HOLDINGS, {"m": mobilisation.id})


# Core, on the table: the ORM's handling of 20,000 plain rows cost more than reading them.
_A = table_of(Assignment).c
_HOLDINGS = select(_A.id, _A.responder_id, _A.grid_id, _A.status).where(
    _A.mobilisation_id == bindparam("m")
)


def assess(
    session: Session,
    *,
    mobilisation: Mobilisation,
    now: datetime,
    street_id: int | None = None,
    community_id: int | None = None,
    open_only: bool = False,
) -> list[GridRisk]:
    """Every micro-grid of the scope with its projection, at-risk ones first (never staffed,
    then latest), then by grid id. `open_only`: only grids not yet mobilised (the only ones
    that can be at risk), which is what keeps a beat cheap once most grids are staffed."""
    rule = StaffingRule.from_dict(mobilisation.rule)
    aim = min(mobilisation.deadline, mobilisation.t0 + timedelta(minutes=rule.aim_minutes))
    stmt = select(
        GridState.grid_id, GridState.community_id, GridState.street_id, GridState.status
    ).where(GridState.mobilisation_id == mobilisation.id)
    if open_only:
        stmt = stmt.where(GridState.status.not_in(_DONE))
    states = session.execute(scope_states(stmt, street_id, community_id)).all()
    holders: dict[int, list[_Holder]] = defaultdict(list)
    gave_up: set[int] = set()
    waits = _Waits.of(rule)
    for a in _projected(session, mobilisation, street_id, community_id, open_only):
        if a.grid_id is None:
            continue
        if a.status in _HOLDING:
            holders[a.grid_id].append(_projection(a, waits, now))
        elif a.status in _GAVE_UP:
            gave_up.add(a.grid_id)
    found = [
        _grid_risk(s, holders.get(s.grid_id, []), s.grid_id in gave_up, rule, aim) for s in states
    ]
    found.sort(
        key=lambda r: (
            not r.at_risk,
            r.projected is not None,
            -r.projected.timestamp() if r.projected else 0.0,
            r.grid_id,
        )
    )
    return found


def suggest(
    session: Session,
    *,
    actor: Any,
    mobilisation: Mobilisation,
    risks: list[GridRisk],
    now: datetime,
    free_only: bool = False,
) -> None:
    """Fill in `suggestion` on the at-risk grids given, best first, each person once: only
    people the actor may see, and only when they would arrive before the grid's projection.
    `free_only` (the system's own reactions): nobody holding a slot is suggested. Moving
    someone who answered is a commander's call; and a person still silent when the system
    acts is, by then, most likely slow to answer the second call too (the drill showed
    chains of standbys who never came)."""
    wanted = [r for r in risks if r.at_risk]
    if not wanted:
        return
    rule = StaffingRule.from_dict(mobilisation.rule)
    metric = callup.metric_for(session, mobilisation.district_id)
    busy = callup.busy_elsewhere(session, mobilisation.id)
    here = Responder.district_id == mobilisation.district_id, visible(actor, Responder)
    if free_only:
        # Only the free: read neither the district's assignments nor its every grid (a beat
        # runs this each minute), only the people never called or released, and the grids
        # of the communities at risk.
        info = callup.load_grids(session, sorted({r.community_id for r in wanted}), metric)
        mine: dict[int, Any] = {}
        movable: set[int] = set()
        called = select(Assignment.responder_id).where(
            Assignment.mobilisation_id == mobilisation.id,
            Assignment.status != AssignmentStatus.RELEASED.value,
        )
        who = and_(*here, belongs_in_place(actor), Responder.id.not_in(called))
    else:
        # The grids of the communities the actor may see: every grid a person they may send
        # holds or sets off from (a street's list need not read the district's every grid).
        scope = list(
            session.scalars(
                select(MobilisationArea.community_id)
                .join(Community, Community.id == MobilisationArea.community_id)
                .where(
                    MobilisationArea.mobilisation_id == mobilisation.id,
                    visible(actor, Community),
                )
            )
        )
        info = callup.load_grids(session, scope, metric)
        mine = {a.responder_id: a for a in _holdings(session, mobilisation)}
        movable = set(
            session.scalars(
                select(Assignment.id).where(
                    Assignment.mobilisation_id == mobilisation.id, visible(actor, Assignment)
                )
            )
        )
        # Whom the actor may send: those working in their place, or free and belonging to it
        # (as acceptRiskFix will check); seeing someone is not enough.
        working_here = select(Assignment.responder_id).where(
            Assignment.mobilisation_id == mobilisation.id, visible(actor, Assignment)
        )
        who = and_(*here, or_(Responder.id.in_(working_here), belongs_in_place(actor)))
    roster = callup.candidates(session, who=who, metric=metric, info=info, now=now)
    # What each grid holds: it can spare a person only while it keeps its minimum coming, and
    # a person on site only while it keeps its minimum on site (a fix must not turn a staffed
    # grid back into one waiting for someone).
    holding: dict[int, int] = defaultdict(int)
    on_site: dict[int, int] = defaultdict(int)
    for a in mine.values():
        if a.status in HOLDING and a.grid_id is not None:
            holding[a.grid_id] += 1
            on_site[a.grid_id] += a.status == AssignmentStatus.ON_SITE.value

    def spares(source: Any) -> bool:
        g = source.grid_id
        if holding[g] - 1 < rule.min_on_site:
            return False
        return source.status != AssignmentStatus.ON_SITE.value or on_site[g] - 1 >= rule.min_on_site

    at_risk_grids = {r.grid_id for r in wanted}

    ids: list[int] = []
    xs: list[float] = []
    ys: list[float] = []
    setup: list[float] = []
    sources: list[Any] = []

    def candidate(person: int, source: Any, setup_minutes: float, x: float, y: float) -> None:
        ids.append(person)
        sources.append(source)
        setup.append(setup_minutes)
        xs.append(x)
        ys.append(y)

    for c in roster:
        a = mine.get(c.id)
        if a is None or a.status == AssignmentStatus.RELEASED.value:
            if c.id in busy:
                continue
            candidate(c.id, None, rule.setup_minutes, c.x, c.y)
        elif (
            a.status in HOLDING
            and a.id in movable
            and a.grid_id not in at_risk_grids
            and a.grid_id in info
        ):
            if a.status == AssignmentStatus.ON_SITE.value:  # sets off from where they are
                g = info[a.grid_id]
                candidate(c.id, a, 0.0, g.x, g.y)
            else:
                candidate(c.id, a, rule.setup_minutes, c.x, c.y)
    if not ids:
        return
    px, py, ready = np.asarray(xs), np.asarray(ys), np.asarray(setup)
    donor = np.asarray([s.grid_id if s is not None else -1 for s in sources])
    blocked = np.asarray([s is not None and not spares(s) for s in sources])
    for risk in wanted:
        target = info.get(risk.grid_id)
        if target is None:
            continue
        distance = np.hypot(px - target.x, py - target.y)
        minutes = rule.travel_minutes(distance) + ready
        minutes[blocked] = np.inf
        best = int(np.argmin(minutes))
        if not math.isfinite(minutes[best]):
            continue
        arrives = now + timedelta(minutes=float(minutes[best]))
        if risk.projected is not None and arrives >= risk.projected:
            continue
        blocked[best] = True
        source = sources[best]
        if source is not None:
            holding[source.grid_id] -= 1
            on_site[source.grid_id] -= source.status == AssignmentStatus.ON_SITE.value
            for i in np.flatnonzero(donor == source.grid_id):
                blocked[i] = blocked[i] or not spares(sources[i])
        risk.suggestion = Suggestion(
            responder_id=ids[best],
            assignment_id=source.id if source is not None else None,
            from_grid_id=source.grid_id if source is not None else None,
            travel_minutes=round(float(minutes[best] - ready[best]), 1),
            arrives_at=arrives,
        )


def risk_for(
    session: Session,
    *,
    actor: Any,
    mobilisation_id: int,
    now: datetime,
    street_id: int | None = None,
    community_id: int | None = None,
    only_at_risk: bool = True,
    limit: int = 100,
) -> tuple[Mobilisation, list[GridRisk]]:
    """The risk list of a scope the actor may see, with suggested fixes on the first `limit`
    at-risk grids."""
    mobilisation, street_id, community_id = place_asked(
        session,
        actor=actor,
        mobilisation_id=mobilisation_id,
        street_id=street_id,
        community_id=community_id,
    )
    risks = assess(
        session,
        mobilisation=mobilisation,
        now=now,
        street_id=street_id,
        community_id=community_id,
        open_only=only_at_risk,
    )
    if only_at_risk:
        risks = [r for r in risks if r.at_risk]
    risks = risks[:limit]
    suggest(
        session,
        actor=actor,
        mobilisation=mobilisation,
        risks=risks,
        now=now,
    )
    return mobilisation, risks
