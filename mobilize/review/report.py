"""The after-action report: what happened, how fast, and why grids were late, computed from
the event log (the record) and the district's tables (names, units, quotas).

Every figure (statuses, times, who came, why a grid was late) is folded from the log; a
reviewer must be able to trust that the report says what the log says. Two live tables are
read only for what never changes during a mobilisation: its grid states list which micro-grids
it covers and where they lie (community, street), and its area lists its communities.

Longer than most modules on purpose: every section (curve, causes, forces, timeline) reads
the same one fold of the log, which a split would have to pass around or fold again."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from mobilize.coverage.service import GRID_STATUS
from mobilize.events import read_log, shared_payload
from mobilize.models import (
    Community,
    Event,
    Grid,
    GridState,
    GridStatus,
    Mobilisation,
    MobilisationArea,
    Pairing,
    Responder,
    Street,
    Unit,
)

_MOBILISED = (GridStatus.MOBILISED.value, GridStatus.CHECKED.value)

# Why a grid missed the deadline, in the order a reviewer asks: was anyone sent, did they
# come late, did they promise and not come, did they say no, or did nobody answer in time?
CAUSES = {
    "nobody_in_reach": "无人可派 Nobody in reach",
    "late_arrival": "到岗迟到 Late arrival",
    "no_show": "确认未到 Acknowledged, never came",
    "declined": "人员拒绝 Declined",
    "late_acknowledgement": "确认迟缓 Late acknowledgement",
}

# Events that are commands (people at command centres, and the milestones they answer to).
COMMANDS = {
    "mobilisation.activated": "启动战时状态 Activated",
    "assignment.reassigned": "人工调派 Reassigned",
    "assignment.pinned": "锁定人员 Pinned",
    "assignment.unpinned": "解除锁定 Unpinned",
    "responder.unavailable": "标记不可用 Marked unavailable",
    "responder.leave": "请假 On leave",
    "responder.back": "销假归队 Back on duty",
    "tasks.dispatched": "下发任务 Tasks dispatched",
    "task.reassigned": "任务改派 Task reassigned",
    "task.cancelled": "任务取消 Task cancelled",
    "task.priority_changed": "任务优先级 Task priority",
    "mobilisation.escalated": "预警上报街道 Escalated to streets",
    "mobilisation.deadline_passed": "到达时限 Deadline passed",
    "mobilisation.stood_down": "转入平时状态 Stood down",
}

BUCKETS = (15, 30, 60, 120, 180)  # minutes: the histogram's upper edges, then "more"


@dataclass
class Distribution:
    """Minutes: how many, and how they spread."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None
    buckets: list[tuple[str, int]]  # ("0-15", n), ..., (">180", n)

    @classmethod
    def of(cls, minutes: Iterable[float]) -> Distribution:
        values = sorted(minutes)
        edges = [0, *BUCKETS]
        labels = [f"{a}-{b}" for a, b in itertools.pairwise(edges)] + [f">{BUCKETS[-1]}"]
        counts = [0] * len(labels)
        for v in values:
            counts[next((i for i, b in enumerate(BUCKETS) if v <= b), len(BUCKETS))] += 1
        if not values:
            return cls(0, None, None, None, None, list(zip(labels, counts, strict=True)))
        return cls(
            count=len(values),
            mean=round(sum(values) / len(values), 1),
            p50=round(percentile(values, 50), 1),
            p90=round(percentile(values, 90), 1),
            max=round(values[-1], 1),
            buckets=list(zip(labels, counts, strict=True)),
        )


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[rank - 1]


@dataclass
class AreaFigures:
    """One street or community."""

    id: int
    code: str
    name: str
    grids: int
    mobilised_by_deadline: int
    missed: int
    time_to_mobilise: Distribution
    time_to_acknowledge: Distribution


@dataclass
class MissedGrid:
    grid_id: int
    code: str
    name: str
    community: str
    street: str
    cause: str
    cause_label: str
    mobilised_minute: float | None  # after the deadline; None: never
    assigned: int  # people ever sent there before the deadline
    declined: int
    acknowledged: int
    arrived_late: int


@dataclass
class UnitForces:
    unit_id: int
    code: str
    name: str
    quota: int  # planned: the pairings' wartime quotas in this mobilisation's communities
    called: int
    acknowledged: int
    arrived_by_deadline: int
    arrived: int
    quota_met: bool  # arrived by the deadline >= quota


@dataclass
class KindForces:
    kind: str
    called: int
    acknowledged: int
    declined: int
    arrived_by_deadline: int
    arrived: int


@dataclass
class Command:
    mseq: int
    at: datetime
    minute: float
    actor: str
    kind: str
    label: str
    payload: dict[str, Any]


@dataclass
class Report:
    mobilisation_id: int
    title: str
    kind: str
    t0: datetime
    deadline: datetime
    target_minutes: float
    stood_down_at: datetime | None
    events: int
    grids: int
    mobilised: int
    mobilised_by_deadline: int
    mobilised_pct_at_deadline: float
    people_called: int
    time_to_acknowledge: Distribution
    time_to_arrive: Distribution
    time_to_mobilise: Distribution
    curve: list[tuple[float, int, float]]  # (minute since T0, grids mobilised, % of grids)
    streets: list[AreaFigures]
    communities: list[AreaFigures]
    missed: list[MissedGrid]
    units: list[UnitForces]
    kinds: list[KindForces]
    timeline: list[Command]
    # Before its deadline (and still running) a mobilisation is in progress: its figures are
    # those so far, as of `as_of`, and no grid has missed anything yet.
    in_progress: bool = False
    as_of: datetime | None = None
    grid_minutes: dict[int, float | None] = field(default_factory=dict)  # for the map


@dataclass
class _Person:
    assigned_at: datetime | None = None
    acknowledged_at: datetime | None = None
    on_site_at: datetime | None = None
    declined: bool = False
    grid: int | None = None  # where they were last sent
    ack_grid: int | None = None  # where they were when they acknowledged


@dataclass
class _GridLog:
    mobilised_at: datetime | None = None
    sent: set[int] = field(default_factory=set)  # people sent there before the deadline
    declined: set[int] = field(default_factory=set)
    acknowledged: set[int] = field(default_factory=set)
    arrived_late: set[int] = field(default_factory=set)


def _minutes(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 60.0


def _read(
    session: Session, mobilisation: Mobilisation
) -> tuple[dict[int, _Person], dict[int, _GridLog], list[Command], int]:
    """One pass over the log's events about people, grids and commands (not the households',
    most of a day's log), and how many events it holds in all."""
    people: dict[int, _Person] = defaultdict(_Person)
    grids: dict[int, _GridLog] = defaultdict(_GridLog)
    commands: list[Command] = []
    deadline = mobilisation.deadline
    count = session.scalar(select(func.count()).where(Event.mobilisation_id == mobilisation.id))
    rows = read_log(
        session,
        mobilisation.id,
        or_(
            Event.kind == GRID_STATUS,
            Event.subject_type == "responder",
            Event.kind.in_(list(COMMANDS)),
        ),
    )
    for mseq, at, actor, kind, subject_type, subject_id, payload in rows:
        payload = payload or {}
        if kind == GRID_STATUS:
            log = grids[payload["grid"]]
            if log.mobilised_at is None and payload["status"] in _MOBILISED:
                log.mobilised_at = at
        elif subject_type == "responder" and "status" in payload:
            rid, status = int(subject_id), payload["status"]
            person = people[rid]
            person.grid = payload.get("grid", person.grid)
            g = person.grid
            if status == "assigned" and person.assigned_at is None:
                person.assigned_at = at
            if g is not None and status != "released" and at <= deadline:
                grids[g].sent.add(rid)
            if kind == "assignment.acknowledged":
                person.acknowledged_at = person.acknowledged_at or at
                person.ack_grid = g
                if g is not None and at <= deadline:
                    grids[g].acknowledged.add(rid)
            elif kind == "assignment.checked_in":
                person.on_site_at = person.on_site_at or at
                if g is not None and at > deadline:
                    grids[g].arrived_late.add(rid)
            elif kind == "assignment.declined":
                person.declined = True
                if g is not None:
                    grids[g].declined.add(rid)
        if kind in COMMANDS:
            commands.append(
                Command(
                    mseq=mseq,
                    at=at,
                    minute=round(_minutes(mobilisation.t0, at), 1),
                    actor=actor,
                    kind=kind,
                    label=COMMANDS[kind],
                    payload=payload,
                )
            )
    return people, grids, commands, count or 0


def _cause(log: _GridLog) -> str:
    if not log.sent:
        return "nobody_in_reach"
    if log.arrived_late:
        return "late_arrival"
    if log.acknowledged:
        return "no_show"
    if log.declined:
        return "declined"
    return "late_acknowledgement"


def build(
    session: Session,
    *,
    mobilisation: Mobilisation,
    street_id: int | None = None,
    community_id: int | None = None,
    now: datetime,
) -> Report:
    """The report for the whole mobilisation, or one street or community of it (served
    through `in_scope`), as it stands `now`."""
    people, logs, commands, count = _read(session, mobilisation)
    t0, deadline = mobilisation.t0, mobilisation.deadline
    in_progress = mobilisation.stood_down_at is None and now < deadline
    target = _minutes(t0, deadline)
    # Which grids: those in the mobilisation (its grid states list them), in scope.
    where = [GridState.mobilisation_id == mobilisation.id]
    if street_id is not None:
        where.append(GridState.street_id == street_id)
    if community_id is not None:
        where.append(GridState.community_id == community_id)
    grid_rows = session.execute(
        select(GridState.grid_id, GridState.community_id, GridState.street_id, Grid.code, Grid.name)
        .join(Grid, Grid.id == GridState.grid_id)
        .where(*where)
        .order_by(Grid.code)
    ).all()
    in_scope = {g.grid_id for g in grid_rows}
    communities = {
        c.id: c
        for c in session.execute(
            select(Community.id, Community.code, Community.name, Community.street_id).where(
                Community.id.in_({g.community_id for g in grid_rows})
            )
        )
    }
    streets = {
        s.id: s
        for s in session.execute(
            select(Street.id, Street.code, Street.name).where(
                Street.id.in_({g.street_id for g in grid_rows})
            )
        )
    }
    minutes = {
        g.grid_id: (
            round(_minutes(t0, mobilised_at), 1)
            if (mobilised_at := logs[g.grid_id].mobilised_at) is not None
            else None
        )
        for g in grid_rows
    }
    on_time = {g for g, m in minutes.items() if m is not None and m <= target}
    # People: those sent to a grid in scope (where they were last sent).
    mine = {rid: p for rid, p in people.items() if p.grid in in_scope}
    ack_minutes = {
        rid: _minutes(p.assigned_at, p.acknowledged_at)
        for rid, p in mine.items()
        if p.assigned_at is not None and p.acknowledged_at is not None
    }
    arrive_minutes = [
        _minutes(p.assigned_at, p.on_site_at)
        for p in mine.values()
        if p.assigned_at is not None and p.on_site_at is not None
    ]

    def area(ids: dict[int, Any], grids_of: dict[int, list[int]]) -> list[AreaFigures]:
        out = []
        for pk, row in sorted(ids.items(), key=lambda kv: kv[1].code):
            gs = grids_of.get(pk, [])
            gset = set(gs)
            out.append(
                AreaFigures(
                    id=pk,
                    code=row.code,
                    name=row.name,
                    grids=len(gs),
                    mobilised_by_deadline=len(gset & on_time),
                    missed=0 if in_progress else len(gset - on_time),
                    time_to_mobilise=Distribution.of(
                        m for g in gs if (m := minutes[g]) is not None
                    ),
                    time_to_acknowledge=Distribution.of(
                        v for rid, v in ack_minutes.items() if mine[rid].ack_grid in gset
                    ),
                )
            )
        return out

    by_street: dict[int, list[int]] = defaultdict(list)
    by_community: dict[int, list[int]] = defaultdict(list)
    for g in grid_rows:
        by_street[g.street_id].append(g.grid_id)
        by_community[g.community_id].append(g.grid_id)
    missed = []
    for g in grid_rows:
        if g.grid_id in on_time or in_progress:
            continue
        log = logs[g.grid_id]
        cause = _cause(log)
        missed.append(
            MissedGrid(
                grid_id=g.grid_id,
                code=g.code,
                name=g.name,
                community=communities[g.community_id].code,
                street=streets[g.street_id].code,
                cause=cause,
                cause_label=CAUSES[cause],
                mobilised_minute=minutes[g.grid_id],
                assigned=len(log.sent),
                declined=len(log.declined),
                acknowledged=len(log.acknowledged),
                arrived_late=len(log.arrived_late),
            )
        )
    units, kinds = _forces(session, mobilisation, mine, set(communities), deadline)
    total = len(grid_rows)
    curve = [
        (m, reached, round(100.0 * reached / total, 2))
        for reached, m in enumerate(sorted(m for m in minutes.values() if m is not None), 1)
    ]
    whole = street_id is None and community_id is None
    timeline = [
        c
        if whole or not c.kind.startswith("mobilisation.")
        else dataclasses.replace(c, payload=shared_payload(c.payload))  # the district's figures
        for c in commands
        if whole
        or c.kind.startswith("mobilisation.")
        or c.payload.get("grid") in in_scope
        or c.payload.get("from") in in_scope
        or c.payload.get("community") in communities
    ]
    return Report(
        mobilisation_id=mobilisation.id,
        title=mobilisation.title,
        kind=mobilisation.kind,
        t0=t0,
        deadline=deadline,
        target_minutes=round(target, 1),
        stood_down_at=mobilisation.stood_down_at,
        events=count,
        grids=total,
        mobilised=sum(m is not None for m in minutes.values()),
        mobilised_by_deadline=len(on_time),
        mobilised_pct_at_deadline=round(100.0 * len(on_time) / total, 2) if total else 0.0,
        people_called=sum(p.assigned_at is not None for p in mine.values()),
        time_to_acknowledge=Distribution.of(ack_minutes.values()),
        time_to_arrive=Distribution.of(arrive_minutes),
        time_to_mobilise=Distribution.of(m for m in minutes.values() if m is not None),
        curve=curve,
        streets=area(streets, by_street),
        communities=area(communities, by_community),
        missed=missed,
        units=units,
        kinds=kinds,
        timeline=timeline,
        in_progress=in_progress,
        as_of=now if in_progress else None,
        grid_minutes=minutes,
    )


def _forces(
    session: Session,
    mobilisation: Mobilisation,
    people: dict[int, _Person],
    communities: set[int],
    deadline: datetime,
) -> tuple[list[UnitForces], list[KindForces]]:
    """Forces planned (pairing quotas) against forces that came, per unit and per kind."""
    active = set(
        session.scalars(
            select(MobilisationArea.community_id).where(
                MobilisationArea.mobilisation_id == mobilisation.id
            )
        )
    )
    quotas: dict[int, int] = defaultdict(int)
    for unit_id, community_id, quota in session.execute(
        select(Pairing.unit_id, Pairing.community_id, Pairing.wartime_quota)
    ):
        if community_id in active and community_id in communities:
            quotas[unit_id] += quota
    who = {
        r.id: r
        for r in session.execute(
            select(Responder.id, Responder.kind, Responder.unit_id).where(
                Responder.id.in_(list(people))
            )
        )
    }
    per_unit: dict[int, list[_Person]] = defaultdict(list)
    per_kind: dict[str, list[_Person]] = defaultdict(list)
    for rid, person in people.items():
        r = who.get(rid)
        if r is None:
            continue
        per_kind[r.kind].append(person)
        if r.unit_id is not None:
            per_unit[r.unit_id].append(person)
    unit_rows = session.execute(
        select(Unit.id, Unit.code, Unit.name)
        .where(Unit.id.in_(set(quotas) | set(per_unit)))
        .order_by(Unit.code)
    ).all()

    def came(ps: list[_Person], by: datetime | None = None) -> int:
        return sum(p.on_site_at is not None and (by is None or p.on_site_at <= by) for p in ps)

    units = []
    for u in unit_rows:
        ps = per_unit.get(u.id, [])
        on_time = came(ps, deadline)
        units.append(
            UnitForces(
                unit_id=u.id,
                code=u.code,
                name=u.name,
                quota=quotas.get(u.id, 0),
                called=len(ps),
                acknowledged=sum(p.acknowledged_at is not None for p in ps),
                arrived_by_deadline=on_time,
                arrived=came(ps),
                quota_met=on_time >= quotas.get(u.id, 0),
            )
        )
    kinds = [
        KindForces(
            kind=k,
            called=len(ps),
            acknowledged=sum(p.acknowledged_at is not None for p in ps),
            declined=sum(p.declined for p in ps),
            arrived_by_deadline=came(ps, deadline),
            arrived=came(ps),
        )
        for k, ps in sorted(per_kind.items())
    ]
    return units, kinds
