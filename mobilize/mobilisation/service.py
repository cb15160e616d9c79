"""The wartime switch and what follows it: activate, stand down, and every change to who
goes where (acknowledge, decline, reassign, pin, unavailable), each recorded as events and
followed by a re-solve of only the communities it touched.

Every function takes the session, the acting user and the clock; it flushes, never commits.
Notifications are outbox rows: the edge dispatches the returned ids after commit."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from mobilize import idempotency, jobs, validation
from mobilize.auth.actor import Actor
from mobilize.auth.scope import person_in_place, visible, visible_mobilisation
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db import transaction
from mobilize.db.bulk import in_chunks, insert_rows
from mobilize.errors import DomainError, Forbidden, InvalidInput, NotFound
from mobilize.events import record_event, record_events
from mobilize.mobilisation import callup, engine
from mobilize.mobilisation.area import AreaScope, resolve_area
from mobilize.mobilisation.hours import record_service
from mobilize.mobilisation.locks import lock_communities, lock_every_community, lock_roster
from mobilize.mobilisation.rules import RULES, StaffingRule
from mobilize.models import (
    FINAL_TASK_STATUSES,
    HOLDING,
    LIVE,
    Assignment,
    AssignmentRole,
    AssignmentSource,
    AssignmentStatus,
    Community,
    Grid,
    GridLevel,
    Mobilisation,
    MobilisationArea,
    MobilisationKind,
    MobilisationStatus,
    PartyOrganisation,
    Responder,
    ResponderKind,
    Role,
    Task,
    TaskStatus,
)
from mobilize.notify import Message
from mobilize.outbox import cancel_pending, enqueue
from mobilize.tasks.service import generate_for_activation, promote_staffed

_HOLDING = [s.value for s in HOLDING]
KIND_NAMES = {
    "epidemic": "疫情",
    "flood": "防汛",
    "earthquake": "地震",
    "fire": "火灾",
    "other": "应急",
}
MODE_NAMES = {"walk": "步行", "cycle": "骑行", "drive": "驾车"}


class AlreadyActive(DomainError):
    code = "ALREADY_ACTIVE"

    def __init__(self, mobilisation: Mobilisation) -> None:
        super().__init__(
            f"该区域已在战时状态 Already in wartime: mobilisation {mobilisation.id} "
            f"“{mobilisation.title}” covers part of this scope"
        )
        self.mobilisation_id = mobilisation.id
        self.title = mobilisation.title


class AlreadyStoodDown(DomainError):
    code = "ALREADY_STOOD_DOWN"

    def __init__(self, mobilisation: Mobilisation) -> None:
        super().__init__(
            f"已转入平时状态 Mobilisation {mobilisation.id} “{mobilisation.title}” was already "
            "stood down"
        )
        self.mobilisation_id = mobilisation.id


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"不能从 {current} 变为 {wanted}: the assignment is {current}")
        self.current = current


@dataclass
class Outcome:
    """What a wartime operation did: the mobilisation, the ids to notify, and whether this is
    the replay of an earlier request with the same client mutation id."""

    mobilisation: Mobilisation
    batches: list[str] = field(default_factory=list)
    replayed: bool = False
    assignment: Assignment | None = None
    jobs: list[str] = field(default_factory=list)  # job runs to start after commit


def rule_for(mobilisation: Mobilisation) -> StaffingRule:
    return StaffingRule.from_dict(mobilisation.rule)


def _reach(mobilisation: Mobilisation, rule: StaffingRule) -> float:
    total = (mobilisation.deadline - mobilisation.t0).total_seconds() / 60.0
    return max(0.0, total - rule.setup_minutes)


# -- the switch ---------------------------------------------------------------------------


def activate(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    scope: AreaScope,
    kind: str,
    title: str,
    target_minutes: int = 180,
    client_mutation_id: str | None = None,
    planner: str = "optimal",
) -> Outcome:
    """Switch the scope to wartime: claim the area now (overlapping a live mobilisation is
    refused, naming it) and queue the solve (`solve_activation`) that calls everyone.
    `planner` "pairing" plans as the manual practice would (drills measure the difference)."""
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=client_mutation_id,
        operation="activateMobilisation",
        clock=clock,
        request={
            "scope": scope.as_dict(),
            "kind": kind,
            "title": title,
            "target_minutes": target_minutes,
        },
    )
    if earlier is not None:
        again = _get(session, earlier["mobilisation_id"])
        run = jobs.run_of(session, "activation", str(again.id))
        return Outcome(again, replayed=True, jobs=[] if run is None else [run.id])
    try:
        chosen_kind = MobilisationKind(kind)
    except ValueError:
        raise InvalidInput(
            "kind", f"{kind!r} is not one of {', '.join(k.value for k in MobilisationKind)}"
        ) from None
    title = validation.text("title", title, max_len=200)
    if not 10 <= target_minutes <= 24 * 60:
        raise InvalidInput("targetMinutes", "must be between 10 and 1440")
    area = resolve_area(session, actor=actor, scope=scope)
    if planner not in engine.PLANNERS:
        raise InvalidInput("planner", f"one of {', '.join(engine.PLANNERS)}")
    rule = replace(RULES[chosen_kind], planner=planner)
    t0 = clock.now()
    mobilisation = Mobilisation(
        district_id=area.district.id,
        kind=chosen_kind.value,
        title=title,
        scope=scope.as_dict(),
        status=MobilisationStatus.ACTIVATING.value,
        t0=t0,
        deadline=t0 + timedelta(minutes=target_minutes),
        rule=rule.as_dict(),
        figures={},
        activated_by=actor.label,
    )
    session.add(mobilisation)
    session.flush()
    try:
        with session.begin_nested():
            session.add_all(
                MobilisationArea(mobilisation_id=mobilisation.id, community_id=c, active=True)
                for c in area.community_ids
            )
    except IntegrityError:
        raise AlreadyActive(_active_over(session, area.community_ids)) from None
    run_id = jobs.queue(session, kind="activation", subject=str(mobilisation.id), clock=clock)
    idempotency.remember(
        session,
        actor=actor.label,
        key=client_mutation_id,
        result={"mobilisation_id": mobilisation.id},
    )
    return Outcome(mobilisation, jobs=[run_id])


def activate_in_process(
    factory: sessionmaker[Session], *, clock: Clock, display_tz: str, worker: str, **kwargs: Any
) -> Outcome:
    """`activate` committed, then its solve run right here as a worker would run it (the
    console, tests, benchmarks); the outcome holds the mobilisation as the solve left it and
    the notification batches to dispatch. A rerun of a finished activation solves nothing."""
    with transaction(factory) as session:
        claimed = activate(session, clock=clock, **kwargs)
    batches: list[str] = []
    for run_id in claimed.jobs:
        batches += jobs.run(factory, run_id, clock=clock, display_tz=display_tz, worker=worker)
    with factory() as session:
        mobilisation = _get(session, claimed.mobilisation.id)
        session.expunge(mobilisation)
    return Outcome(mobilisation, batches=batches, replayed=claimed.replayed, jobs=claimed.jobs)


def solve_activation(session: Session, *, subject: str, clock: Clock, display_tz: str) -> jobs.Done:
    """The activation's job: call everyone in the claimed area, assign them, open temporary
    party organisations, generate tasks, start coverage, then the mobilisation is active. A
    mobilisation stood down before its solve ran is left as it is."""
    mobilisation_id = int(subject)
    lock_every_community(session, mobilisation_id)
    mobilisation = session.get(Mobilisation, mobilisation_id, with_for_update=True)
    if mobilisation is None or mobilisation.status != MobilisationStatus.ACTIVATING.value:
        return jobs.Done(result={"skipped": None if mobilisation is None else mobilisation.status})
    communities = tuple(
        session.scalars(
            select(MobilisationArea.community_id)
            .where(MobilisationArea.mobilisation_id == mobilisation_id)
            .order_by(MobilisationArea.community_id)
        )
    )
    rule = rule_for(mobilisation)
    by = mobilisation.activated_by
    lock_roster(session, mobilisation.district_id)
    metric = callup.metric_for(session, mobilisation.district_id)
    problem = callup.build_problem(
        session,
        mobilisation=mobilisation,
        rule=rule,
        region=communities,
        scope=communities,
        metric=metric,
        with_teams=True,
    )
    plan = engine.PLANNERS[rule.planner](
        problem.grids, problem.people, rule, _reach(mobilisation, rule), problem.teams
    )
    batches = _apply(
        session,
        mobilisation=mobilisation,
        plan=plan,
        by=by,
        clock=clock,
        display_tz=display_tz,
        cause="activation",
    )
    mobilisation.figures = _figures(problem, plan, rule)
    mobilisation.status = MobilisationStatus.ACTIVE.value
    _open_party_organisations(session, mobilisation, communities, by, clock)
    generate_for_activation(session, mobilisation=mobilisation, by=by, clock=clock)
    coverage.start(session, mobilisation=mobilisation, clock=clock)
    record_event(
        session,
        clock=clock,
        actor=by,
        kind="mobilisation.activated",
        subject_type="mobilisation",
        subject_id=str(mobilisation.id),
        mobilisation_id=mobilisation.id,
        payload={
            "kind": mobilisation.kind,
            "title": mobilisation.title,
            "scope": mobilisation.scope,
            "communities": list(communities),
            "t0": mobilisation.t0.isoformat(),
            "deadline": mobilisation.deadline.isoformat(),
            "rule": mobilisation.rule,
            "figures": mobilisation.figures,
        },
    )
    return jobs.Done(
        result={"figures": mobilisation.figures},
        batches=batches,
        bulk_tables=("assignment", "grid_state", "task", "task_assignee"),
    )


def _active_over(session: Session, communities: tuple[int, ...]) -> Mobilisation:
    found = session.scalar(
        select(Mobilisation)
        .join(MobilisationArea)
        .where(MobilisationArea.community_id.in_(communities), MobilisationArea.active.is_(True))
        .order_by(Mobilisation.id)
        .limit(1)
    )
    assert found is not None, "the unique index refused an overlap that is not there"
    return found


def _get(session: Session, mobilisation_id: int) -> Mobilisation:
    found = session.get(Mobilisation, mobilisation_id)
    if found is None:
        raise NotFound(f"没有这次动员 No mobilisation {mobilisation_id}")
    return found


def _figures(problem: callup.Problem, plan: engine.Plan, rule: StaffingRule) -> dict[str, Any]:
    per_grid = Counter(p.grid_id for p in plan.placements)
    held = Counter()
    for g in problem.grids:  # people already there (re-solves): capacity they took
        info = problem.info[g.grid_id]
        need = rule.need(info.households)
        held[g.grid_id] = need - g.open_minimum - g.open_work
    grids_with_min = filled = 0
    for g in problem.grids:
        need = rule.need(problem.info[g.grid_id].households)
        count = per_grid[g.grid_id] + held[g.grid_id]
        grids_with_min += count >= rule.min_on_site
        filled += min(count, need)
    minutes = [p.minutes for p in plan.placements if p.role != "extra"]
    unfilled_min = Counter(plan.open_minimum.values())
    unfilled_work: Counter[str] = Counter()
    for n, reason in plan.open_work.values():
        unfilled_work[reason] += n
    return {
        "grids": len(problem.grids),
        "people_called": len(problem.people) + sum(len(t.members) for t in problem.teams),
        "people_assigned": len(plan.placements),
        "slots": problem.slots,
        "micro_grids_with_minimum": grids_with_min,
        "slots_filled": filled,
        "extra_people": sum(p.role == "extra" for p in plan.placements),
        "total_travel_minutes": round(sum(minutes), 1),  # to fill slots (extras stay local)
        "latest_arrival_minutes": round(rule.setup_minutes + max(minutes, default=0.0), 1),
        "unfilled_minimum": dict(unfilled_min),
        "unfilled_work": dict(unfilled_work),
        "solve_s": round(plan.solve_s, 3),
    }


def _open_party_organisations(
    session: Session,
    mobilisation: Mobilisation,
    communities: tuple[int, ...],
    by: str,
    clock: Clock,
) -> None:
    """临时党组织 per community, led by its secretary, else its most senior sunk cadre."""
    rows = session.scalars(
        select(Community).where(Community.id.in_(communities)).order_by(Community.id)
    ).all()
    secretaries = {
        r.code: r
        for r in session.scalars(
            select(Responder).where(
                Responder.district_id == mobilisation.district_id,
                Responder.code.in_([c.secretary_code for c in rows if c.secretary_code]),
            )
        )
    }
    cadres = session.execute(
        select(Assignment.community_id, Responder.id, Responder.seniority)
        .join(Responder, Responder.id == Assignment.responder_id)
        .where(
            Assignment.mobilisation_id == mobilisation.id,
            Responder.kind == ResponderKind.SUNK_CADRE.value,
        )
    ).all()
    senior: dict[int, tuple[int, int]] = {}
    for community_id, responder_id, seniority in cadres:
        key = (-seniority, responder_id)
        if community_id not in senior or key < senior[community_id]:
            senior[community_id] = key
    events = []
    for c in rows:
        secretary = secretaries.get(c.secretary_code or "")
        if secretary is not None and secretary.available:
            leader, basis = secretary.id, "secretary"
        elif c.id in senior:
            leader, basis = senior[c.id][1], "senior_cadre"
        else:
            leader, basis = None, "none"
        org = PartyOrganisation(
            mobilisation_id=mobilisation.id,
            community_id=c.id,
            name=f"{c.name}临时党支部",
            leader_id=leader,
            leader_basis=basis,
        )
        session.add(org)
        events.append(
            (
                "party_organisation.opened",
                "community",
                c.code,
                {"name": org.name, "leader": leader, "basis": basis},
            )
        )
    session.flush()
    record_events(session, clock=clock, actor=by, events=events, mobilisation_id=mobilisation.id)


# -- applying a plan ------------------------------------------------------------------------


def _message(
    mobilisation: Mobilisation,
    responder: Any,
    grid: Any,
    community: Any,
    placement: engine.Placement,
    display_tz: str,
) -> Message:
    """The assignment message (rows or objects with name, phone, code)."""
    deadline = mobilisation.deadline.astimezone(ZoneInfo(display_tz)).strftime("%H:%M")
    kind = KIND_NAMES.get(mobilisation.kind, "应急")
    minutes = round(placement.minutes)
    text = (
        f"【mobilize】{responder.name}：{kind}动员“{mobilisation.title}”已启动，请于{deadline}前"
        f"到达{community.name}{grid.name}（{grid.code}），{MODE_NAMES.get(placement.mode, '')}"
        f"约{minutes}分钟，请确认。 You are assigned to {grid.code} ({community.code}); "
        f"be there by {deadline}, about {minutes} min by {placement.mode}. Please acknowledge."
    )
    return Message(to=responder.phone, kind="assignment", text=text)


def _apply(
    session: Session,
    *,
    mobilisation: Mobilisation,
    plan: engine.Plan,
    by: str,
    clock: Clock,
    display_tz: str,
    cause: str,
) -> list[str]:
    """Write a plan: new assignments, moves of people not yet committed, releases of people
    the plan no longer needs; one event each, and a message to everyone whose place changed."""
    now = clock.now()
    placed = {p.person_id: p for p in plan.placements}
    # Only the plan's people: a re-plan of one community must not load a district's rows.
    concerned = sorted(set(placed) | set(plan.unplaced))
    current: dict[int, Assignment] = {}
    for chunk in in_chunks(concerned):
        for a in session.scalars(
            select(Assignment).where(
                Assignment.mobilisation_id == mobilisation.id,
                Assignment.responder_id.in_(chunk),
            )
        ):
            current[a.responder_id] = a
    grid_ids = {p.grid_id for p in plan.placements}
    # Names and phones only: loading whole rows (geometry included) costs seconds at scale.
    grids = {
        g.id: g
        for g in session.execute(
            select(Grid.id, Grid.code, Grid.name, Grid.community_id).where(Grid.id.in_(grid_ids))
        )
    }
    communities = {
        c.id: c
        for c in session.execute(
            select(Community.id, Community.code, Community.name).where(
                Community.id.in_({g.community_id for g in grids.values()})
            )
        )
    }
    people = {
        r.id: r
        for r in session.execute(
            select(Responder.id, Responder.name, Responder.phone).where(
                Responder.id.in_(list(placed))
            )
        )
    }

    inserts, events, messages = [], [], []
    left: set[int | None] = set()  # grids people moved away from
    for pid, p in sorted(placed.items()):
        grid = grids[p.grid_id]
        row = current.get(pid)
        fields = {
            "grid_id": p.grid_id,
            "community_id": grid.community_id,
            "role": p.role,
            "travel_minutes": p.minutes,
            "distance_m": p.distance_m,
            "mode": p.mode,
            "updated_at": now,
        }
        if row is None:
            inserts.append(
                {
                    "mobilisation_id": mobilisation.id,
                    "responder_id": pid,
                    "source": AssignmentSource.ENGINE.value,
                    "pinned": False,
                    "status": AssignmentStatus.ASSIGNED.value,
                    "reason": None,
                    **fields,
                }
            )
            events.append(
                (
                    "assignment.created",
                    "responder",
                    str(pid),
                    {
                        "grid": p.grid_id,
                        "community": grid.community_id,
                        "role": p.role,
                        "minutes": p.minutes,
                        "mode": p.mode,
                        "source": "engine",
                        "cause": cause,
                        "status": AssignmentStatus.ASSIGNED.value,
                    },
                )
            )
        elif row.grid_id != p.grid_id or row.role != p.role:
            moved_from = row.grid_id
            left.add(moved_from)
            for key, value in fields.items():
                setattr(row, key, value)
            events.append(
                (
                    "assignment.moved",
                    "responder",
                    str(pid),
                    {
                        "from": moved_from,
                        "grid": p.grid_id,
                        "role": p.role,
                        "minutes": p.minutes,
                        "cause": cause,
                        "status": row.status,
                    },
                )
            )
        else:
            continue
        messages.append(
            _message(mobilisation, people[pid], grid, communities[grid.community_id], p, display_tz)
        )
    for pid in plan.unplaced:
        row = current.get(pid)
        if row is not None and row.status == AssignmentStatus.ASSIGNED.value and not row.pinned:
            row.status = AssignmentStatus.RELEASED.value
            row.reason = "replanned"
            row.updated_at = now
            events.append(
                (
                    "assignment.released",
                    "responder",
                    str(pid),
                    {
                        "grid": row.grid_id,
                        "reason": "replanned",
                        "cause": cause,
                        "status": AssignmentStatus.RELEASED.value,
                    },
                )
            )
    insert_rows(session, Assignment.__table__, inserts)  # type: ignore[arg-type]
    session.flush()
    record_events(session, clock=clock, actor=by, events=events, mobilisation_id=mobilisation.id)
    released = set(plan.unplaced)
    touched = (
        {p.grid_id for p in plan.placements}
        | left
        | {a.grid_id for pid, a in current.items() if pid in released}
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=touched, clock=clock)
    promote_staffed(
        session,
        mobilisation_id=mobilisation.id,
        grid_ids={p.grid_id for p in plan.placements},
        clock=clock,
        by=by,
    )
    return enqueue(session, clock=clock, messages=messages, mobilisation_id=mobilisation.id)


def resolve(
    session: Session,
    *,
    mobilisation: Mobilisation,
    communities: set[int],
    actor: Actor,
    clock: Clock,
    display_tz: str = "Asia/Shanghai",
    cause: str,
) -> list[str]:
    """Re-plan only these communities: committed and pinned people stay, others may move."""
    if mobilisation.status != MobilisationStatus.ACTIVE.value or not communities:
        return []
    lock_roster(session, mobilisation.district_id)
    rule = rule_for(mobilisation)
    scope = tuple(
        session.scalars(
            select(MobilisationArea.community_id).where(
                MobilisationArea.mobilisation_id == mobilisation.id
            )
        )
    )
    region = tuple(sorted(c for c in communities if c in set(scope)))
    metric = callup.metric_for(session, mobilisation.district_id)
    problem = callup.build_problem(
        session,
        mobilisation=mobilisation,
        rule=rule,
        region=region,
        scope=scope,
        metric=metric,
        with_teams=False,
    )
    plan = engine.PLANNERS[rule.planner](
        problem.grids,
        problem.people,
        rule,
        _reach(mobilisation, rule),
        candidates=max(
            rule.candidates_per_person, len(problem.grids) if len(problem.grids) <= 400 else 0
        ),
    )
    return _apply(
        session,
        mobilisation=mobilisation,
        plan=plan,
        by=actor.label,
        clock=clock,
        display_tz=display_tz,
        cause=cause,
    )


# -- stand-down -----------------------------------------------------------------------------


def _may_command(session: Session, actor: Actor, mobilisation: Mobilisation) -> bool:
    """District commanders of its district; street commanders when it lies in their street."""
    for b in actor.bindings:
        if b.role is Role.DISTRICT_COMMANDER and b.scope_id == mobilisation.district_id:
            return True
    streets = {b.scope_id for b in actor.bindings if b.role is Role.STREET_COMMANDER}
    if not streets:
        return False
    outside = session.scalar(
        select(Community.id)
        .join(MobilisationArea, MobilisationArea.community_id == Community.id)
        .where(
            MobilisationArea.mobilisation_id == mobilisation.id, Community.street_id.not_in(streets)
        )
        .limit(1)
    )
    return outside is None


def stand_down(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    mobilisation_id: int,
    client_mutation_id: str | None = None,
) -> Outcome:
    """Back to peacetime: release every assignment, record the final state."""
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=client_mutation_id,
        operation="standDown",
        clock=clock,
        request={"mobilisation_id": mobilisation_id},
    )
    if earlier is not None:
        return Outcome(_get(session, earlier["mobilisation_id"]), replayed=True)
    mobilisation = visible_mobilisation(session, actor, mobilisation_id)
    if not _may_command(session, actor, mobilisation):
        raise Forbidden("standDown")
    lock_every_community(session, mobilisation.id)
    now = clock.now()
    changed = session.execute(
        update(Mobilisation)
        .where(
            Mobilisation.id == mobilisation.id,
            Mobilisation.status.in_(LIVE),
        )
        .values(
            status=MobilisationStatus.STOOD_DOWN.value, stood_down_at=now, stood_down_by=actor.label
        )
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        session.refresh(mobilisation)
        raise AlreadyStoodDown(mobilisation)
    session.refresh(mobilisation)
    rows = session.scalars(
        select(Assignment).where(Assignment.mobilisation_id == mobilisation.id)
    ).all()
    final: dict[str, Any] = {
        "statuses": dict(Counter(a.status for a in rows)),
        "figures": mobilisation.figures,
        "stood_down_at": now.isoformat(),
    }
    holding = [a for a in rows if a.status in _HOLDING]
    was = {a.id: a.status for a in holding}  # the bulk update below rewrites these objects
    phones = dict(
        session.execute(
            select(Responder.id, Responder.phone).where(
                Responder.id.in_([a.responder_id for a in holding])
            )
        ).all()
    )
    session.execute(
        update(MobilisationArea)
        .where(MobilisationArea.mobilisation_id == mobilisation.id)
        .values(active=False)
    )
    session.execute(
        update(Assignment)
        .where(Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(_HOLDING))
        .values(status=AssignmentStatus.RELEASED.value, reason="stood_down", updated_at=now)
    )
    record_service(session, mobilisation=mobilisation, released=holding, now=now)
    # Open tasks end with the mobilisation.
    open_tasks = session.execute(
        update(Task)
        .where(
            Task.mobilisation_id == mobilisation.id,
            Task.status.not_in([s.value for s in FINAL_TASK_STATUSES]),
        )
        .values(status=TaskStatus.CANCELLED.value, reason="stood_down", updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    final["tasks_cancelled"] = open_tasks
    # Calls still waiting would send people to a mobilisation that is over.
    final["messages_cancelled"] = cancel_pending(session, mobilisation_id=mobilisation.id, now=now)
    mobilisation.final_state = final
    session.flush()
    record_events(
        session,
        clock=clock,
        actor=actor.label,
        mobilisation_id=mobilisation.id,
        events=[
            (
                "assignment.released",
                "responder",
                str(a.responder_id),
                {
                    "grid": a.grid_id,
                    "reason": "stood_down",
                    "was": was[a.id],
                    "status": AssignmentStatus.RELEASED.value,
                },
            )
            for a in holding
        ],
    )
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="mobilisation.stood_down",
        subject_type="mobilisation",
        subject_id=str(mobilisation.id),
        mobilisation_id=mobilisation.id,
        payload=final,
    )
    text = (
        f"【mobilize】“{mobilisation.title}”已转入平时状态，感谢您的付出。"
        f"“{mobilisation.title}” has stood down; thank you."
    )
    ids = enqueue(
        session,
        clock=clock,
        mobilisation_id=mobilisation.id,
        messages=[
            Message(to=phones[a.responder_id], kind="stand_down", text=text) for a in holding
        ],
    )
    idempotency.remember(
        session,
        actor=actor.label,
        key=client_mutation_id,
        result={"mobilisation_id": mobilisation.id},
    )
    return Outcome(mobilisation, batches=ids)


# -- changes to one assignment ---------------------------------------------------------------


def _assignment(session: Session, actor: Actor, assignment_id: int) -> Assignment:
    found = session.scalar(
        select(Assignment).where(Assignment.id == assignment_id, visible(actor, Assignment))
    )
    if found is None:
        raise NotFound(f"没有这个任务分配 No assignment {assignment_id}")
    return found


def _locked(session: Session, assignment: Assignment, *others: int) -> None:
    """Lock the assignment's community (and `others`), then re-read it: a commander may have
    moved it to another community meanwhile, whose lock is then taken too."""
    held: set[int] = set()
    while assignment.community_id not in held:
        if not lock_communities(
            session, assignment.mobilisation_id, {assignment.community_id, *others}
        ):
            return  # nothing to wait for (SQLite): the row read in this transaction stands
        held |= {assignment.community_id, *others}
        session.refresh(assignment)


def _active(session: Session, assignment: Assignment) -> Mobilisation:
    mobilisation = _get(session, assignment.mobilisation_id)
    if mobilisation.status != MobilisationStatus.ACTIVE.value:
        raise AlreadyStoodDown(mobilisation)
    return mobilisation


def _own(actor: Actor, assignment: Assignment) -> None:
    mine = {b.scope_id for b in actor.bindings if b.role is Role.RESPONDER}
    if assignment.responder_id not in mine:
        raise Forbidden("only the person assigned may answer for themself")


def _transition(
    session: Session,
    assignment: Assignment,
    allowed_from: tuple[AssignmentStatus, ...],
    to: AssignmentStatus,
    now: Any,
    reason: str | None = None,
) -> None:
    """Move the status if it is still one of `allowed_from` (one conditional UPDATE, so two
    phones racing cannot both win)."""
    changed = session.execute(
        update(Assignment)
        .where(
            Assignment.id == assignment.id, Assignment.status.in_([s.value for s in allowed_from])
        )
        .values(status=to.value, updated_at=now, reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if changed != 1:
        session.refresh(assignment)
        raise InvalidTransition(assignment.status, to.value)
    # The row now says what we wrote (it was current under the lock): mirror it, no re-read.
    for key, value in (("status", to.value), ("updated_at", now), ("reason", reason)):
        set_committed_value(assignment, key, value)


def _assignment_event(
    session: Session,
    *,
    clock: Clock,
    actor: Actor,
    assignment: Assignment,
    kind: str,
    payload: dict[str, Any],
) -> None:
    """The event of a change to one person's assignment, with where it now stands (what
    replay folds)."""
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind=kind,
        subject_type="responder",
        subject_id=str(assignment.responder_id),
        mobilisation_id=assignment.mobilisation_id,
        payload={**payload, "status": assignment.status},
    )


def own_assignment(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    operation: str,
    key: str | None,
    request: dict[str, Any],
) -> tuple[Assignment, Mobilisation, dict[str, Any] | None]:
    """A phone acting on its own assignment: claim the client mutation id, check the
    assignment is the caller's and its mobilisation active; the first result on a retry."""
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=key,
        operation=operation,
        clock=clock,
        request={"assignment": assignment_id, **request},
    )
    assignment = _assignment(session, actor, assignment_id)
    _own(actor, assignment)
    if earlier is None:
        _locked(session, assignment)
    return assignment, _active(session, assignment), earlier


def acknowledge(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    eta_minutes: int | None = None,
    client_mutation_id: str | None = None,
) -> Outcome:
    """The person confirms they are coming, and when: from now on the engine will not move
    them."""
    if eta_minutes is not None and not 0 <= eta_minutes <= 24 * 60:
        raise InvalidInput("etaMinutes", "between 0 and 1440")
    assignment, mobilisation, replayed = own_assignment(
        session,
        actor=actor,
        clock=clock,
        assignment_id=assignment_id,
        operation="acknowledge",
        key=client_mutation_id,
        request={"eta": eta_minutes},
    )
    if replayed is not None:
        return Outcome(mobilisation, assignment=assignment, replayed=True)
    now = clock.now()
    _transition(
        session,
        assignment,
        (AssignmentStatus.ASSIGNED,),
        AssignmentStatus.ACKNOWLEDGED,
        now,
    )
    assignment.eta_minutes, assignment.acknowledged_at = eta_minutes, now
    session.flush()
    idempotency.remember(
        session, actor=actor.label, key=client_mutation_id, result={"assignment": assignment.id}
    )
    _assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.acknowledged",
        payload={"grid": assignment.grid_id, "eta_minutes": eta_minutes},
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock)
    return Outcome(mobilisation, assignment=assignment)


def decline(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    reason: str,
    display_tz: str = "Asia/Shanghai",
    client_mutation_id: str | None = None,
) -> Outcome:
    """The person cannot come: free their slot and re-plan their community."""
    reason = validation.text("reason", reason, max_len=500)
    assignment, mobilisation, replayed = own_assignment(
        session,
        actor=actor,
        clock=clock,
        assignment_id=assignment_id,
        operation="decline",
        key=client_mutation_id,
        request={"reason": reason},
    )
    if replayed is not None:
        return Outcome(mobilisation, assignment=assignment, replayed=True)
    _transition(
        session,
        assignment,
        (AssignmentStatus.ASSIGNED, AssignmentStatus.ACKNOWLEDGED),
        AssignmentStatus.DECLINED,
        clock.now(),
        reason,
    )
    _assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.declined",
        payload={"grid": assignment.grid_id, "reason": reason},
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock)
    ids = resolve(
        session,
        mobilisation=mobilisation,
        communities={assignment.community_id},
        actor=actor,
        clock=clock,
        display_tz=display_tz,
        cause="decline",
    )
    idempotency.remember(
        session, actor=actor.label, key=client_mutation_id, result={"assignment": assignment.id}
    )
    return Outcome(mobilisation, batches=ids, assignment=assignment)


def _commanded_assignment(session: Session, actor: Actor, assignment_id: int) -> Assignment:
    assignment = _assignment(session, actor, assignment_id)
    if not ({Role.DISTRICT_COMMANDER, Role.STREET_COMMANDER} & actor.roles):
        raise Forbidden("only command centres change assignments")
    return assignment


def reassign(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    grid_id: int,
    from_grid_id: int | None,
    pin: bool = True,
    display_tz: str = "Asia/Shanghai",
    cause: str = "reassign",
) -> Outcome:
    """A commander sends a person to another micro-grid in the same mobilisation; the person
    is pinned there unless told otherwise, and both communities are re-planned.

    `from_grid_id` is where the commander saw them: if they have been moved since (another
    commander, a risk fix), nothing changes and the commander is told, instead of the last
    click silently undoing the first."""
    assignment = _commanded_assignment(session, actor, assignment_id)
    mobilisation = _active(session, assignment)
    grid = _grid_in(session, actor, mobilisation, grid_id)
    _locked(session, assignment, grid.community_id)
    if assignment.grid_id != from_grid_id:
        raise Conflict(
            f"人员已被调整 Assignment {assignment.id} is no longer at grid {from_grid_id}: "
            "look again before moving them"
        )
    if assignment.status not in _HOLDING:
        raise InvalidTransition(assignment.status, "assigned")
    before, now = (assignment.grid_id, assignment.community_id), clock.now()
    responder = session.get(Responder, assignment.responder_id)
    assert responder is not None
    minutes, distance, mode = _travel(session, mobilisation, responder, grid)
    assignment.grid_id, assignment.community_id = grid.id, grid.community_id
    assignment.source, assignment.pinned = AssignmentSource.MANUAL.value, pin
    assignment.travel_minutes, assignment.distance_m, assignment.mode = minutes, distance, mode
    assignment.role = AssignmentRole.WORK.value
    assignment.updated_at = now
    if assignment.status != AssignmentStatus.ASSIGNED.value:
        # Committed already: they set off again now, and are expected after the trip.
        if assignment.status == AssignmentStatus.ON_SITE.value:
            assignment.status = AssignmentStatus.EN_ROUTE.value
            assignment.checked_in_at = None
        assignment.acknowledged_at, assignment.eta_minutes = now, math.ceil(minutes)
    session.flush()
    _assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.reassigned",
        payload={
            "from": before[0],
            "grid": grid.id,
            "pinned": pin,
            "minutes": minutes,
            "cause": cause,
        },
    )
    ids = _tell_sent(
        session, mobilisation, responder, grid, (minutes, distance, mode), clock, display_tz
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[before[0], grid.id], clock=clock)
    promote_staffed(
        session, mobilisation_id=mobilisation.id, grid_ids=[grid.id], clock=clock, by=actor.label
    )
    ids += resolve(
        session,
        mobilisation=mobilisation,
        communities={before[1], grid.community_id},
        actor=actor,
        clock=clock,
        display_tz=display_tz,
        cause=cause,
    )
    return Outcome(mobilisation, batches=ids, assignment=assignment)


def _tell_sent(
    session: Session,
    mobilisation: Mobilisation,
    responder: Responder,
    grid: Grid,
    trip: tuple[float, float, str],
    clock: Clock,
    display_tz: str,
) -> list[str]:
    """Queue the message telling a person a commander sent them to `grid` (minutes,
    metres, mode)."""
    community = session.get(Community, grid.community_id)
    assert community is not None
    placement = engine.Placement(responder.id, grid.id, "work", *trip)
    return enqueue(
        session,
        clock=clock,
        mobilisation_id=mobilisation.id,
        messages=[_message(mobilisation, responder, grid, community, placement, display_tz)],
    )


def _grid_in(session: Session, actor: Actor, mobilisation: Mobilisation, grid_id: int) -> Grid:
    """A micro-grid of this mobilisation that the actor may see, or a clear refusal."""
    grid = session.scalar(
        select(Grid).where(Grid.id == grid_id, Grid.level == GridLevel.MICRO, visible(actor, Grid))
    )
    in_area = grid is not None and session.scalar(
        select(MobilisationArea.id).where(
            MobilisationArea.mobilisation_id == mobilisation.id,
            MobilisationArea.community_id == grid.community_id,
        )
    )
    if grid is None or not in_area:
        raise InvalidInput("gridId", "not a micro-grid of this mobilisation in your scope")
    return grid


def _travel(
    session: Session, mobilisation: Mobilisation, responder: Responder, grid: Grid
) -> tuple[float, float, str]:
    metric = callup.metric_for(session, mobilisation.district_id)
    info = callup.load_grids(session, [grid.community_id], metric)
    target = info[grid.id]
    start = responder.geom or grid.centre
    x, y = metric.xy([start.x], [start.y])
    distance = float(((x[0] - target.x) ** 2 + (y[0] - target.y) ** 2) ** 0.5)
    minutes, mode = rule_for(mobilisation).travel(distance)
    return round(minutes, 2), round(distance, 1), mode


def set_pinned(
    session: Session, *, actor: Actor, clock: Clock, assignment_id: int, pinned: bool
) -> Outcome:
    """Pin an assignment so re-plans never move it, or unpin it."""
    assignment = _commanded_assignment(session, actor, assignment_id)
    mobilisation = _active(session, assignment)
    if assignment.pinned != pinned:
        assignment.pinned = pinned
        assignment.updated_at = clock.now()
        session.flush()
        _assignment_event(
            session,
            clock=clock,
            actor=actor,
            assignment=assignment,
            kind="assignment.pinned" if pinned else "assignment.unpinned",
            payload={"grid": assignment.grid_id},
        )
    return Outcome(mobilisation, assignment=assignment)


def mark_unavailable(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    responder_id: int,
    reason: str,
    display_tz: str = "Asia/Shanghai",
) -> list[str]:
    """Take a person out of every call-up; free any slot they hold and re-plan around it."""
    reason = validation.text("reason", reason, max_len=500)
    if not ({Role.DISTRICT_COMMANDER, Role.STREET_COMMANDER} & actor.roles):
        raise Forbidden("only command centres mark people unavailable")
    responder = session.scalar(
        select(Responder).where(Responder.id == responder_id, visible(actor, Responder))
    )
    if responder is None:
        raise NotFound(f"没有这个人员 No responder {responder_id}")
    if not person_in_place(session, actor, responder.id):
        raise Forbidden(
            "markUnavailable: 此人在您的范围以外工作 this person works outside your place"
        )
    responder.available = False
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="responder.unavailable",
        subject_type="responder",
        subject_id=str(responder.id),
        payload={"reason": reason},
    )
    ids: list[str] = []
    for assignment in session.scalars(
        select(Assignment)
        .join(Mobilisation)
        .where(
            Assignment.responder_id == responder.id,
            Assignment.status.in_(_HOLDING),
            Mobilisation.status == MobilisationStatus.ACTIVE.value,
        )
    ).all():
        mobilisation = _get(session, assignment.mobilisation_id)
        _locked(session, assignment)
        if assignment.status not in _HOLDING:
            continue  # they answered for themselves meanwhile
        assignment.status = AssignmentStatus.RELEASED.value
        assignment.reason = f"unavailable: {reason}"
        assignment.updated_at = clock.now()
        session.flush()
        record_service(
            session, mobilisation=mobilisation, released=[assignment], now=assignment.updated_at
        )
        _assignment_event(
            session,
            clock=clock,
            actor=actor,
            assignment=assignment,
            kind="assignment.released",
            payload={"grid": assignment.grid_id, "reason": "unavailable"},
        )
        coverage.track(
            session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock
        )
        ids += resolve(
            session,
            mobilisation=mobilisation,
            communities={assignment.community_id},
            actor=actor,
            clock=clock,
            display_tz=display_tz,
            cause="unavailable",
        )
    session.flush()
    return ids


class Conflict(DomainError):
    """Someone else changed what the request was based on; look again and retry."""

    code = "CONFLICT"


def send_to_grid(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    mobilisation_id: int,
    grid_id: int,
    responder_id: int,
    from_grid_id: int | None,
    display_tz: str = "Asia/Shanghai",
    client_mutation_id: str | None = None,
) -> Outcome:
    """Accept a suggested fix: send this person to this grid, pinned. `from_grid_id` is where
    the suggestion saw them (None: free); if they have moved since, the fix is refused rather
    than silently undoing another commander's change."""
    earlier = idempotency.claim(
        session,
        actor=actor.label,
        key=client_mutation_id,
        operation="acceptRiskFix",
        clock=clock,
        request={"m": mobilisation_id, "g": grid_id, "r": responder_id, "f": from_grid_id},
    )
    mobilisation = visible_mobilisation(session, actor, mobilisation_id)
    if earlier is not None:
        found = session.get(Assignment, earlier["assignment"])
        return Outcome(mobilisation, assignment=found, replayed=True)
    if not (_may_command(session, actor, mobilisation) or _commands_grid(session, actor, grid_id)):
        raise Forbidden("only the command centres over this grid send people to it")
    if mobilisation.status != MobilisationStatus.ACTIVE.value:
        raise AlreadyStoodDown(mobilisation)
    if not person_in_place(session, actor, responder_id, mobilisation.id):
        # The same answer for someone elsewhere and someone who does not exist: an error
        # names nothing outside the caller's place.
        raise NotFound(
            f"您的范围内没有这个人员 No responder {responder_id} in your place: refresh the list"
        )
    grids = [g for g in (grid_id, from_grid_id) if g is not None]
    lock_communities(
        session,
        mobilisation.id,
        session.scalars(select(Grid.community_id).where(Grid.id.in_(grids))),
    )
    current = session.scalar(
        select(Assignment)
        .where(
            Assignment.mobilisation_id == mobilisation.id, Assignment.responder_id == responder_id
        )
        .with_for_update()
    )
    if current is not None and current.status in _HOLDING:
        if current.grid_id != from_grid_id:
            raise Conflict(
                f"人员已被调整 Responder {responder_id} is now at grid {current.grid_id}, not "
                f"{from_grid_id}: refresh the risk list"
            )
        outcome = reassign(
            session,
            actor=actor,
            clock=clock,
            assignment_id=current.id,
            grid_id=grid_id,
            from_grid_id=from_grid_id,
            pin=True,
            display_tz=display_tz,
            cause="risk_fix",
        )
    else:
        if from_grid_id is not None:
            raise Conflict(
                f"人员已被调整 Responder {responder_id} no longer holds grid {from_grid_id}: "
                "refresh the risk list"
            )
        outcome = _call_up(
            session,
            actor=actor,
            clock=clock,
            mobilisation=mobilisation,
            current=current,
            responder_id=responder_id,
            grid_id=grid_id,
            display_tz=display_tz,
        )
    assert outcome.assignment is not None
    idempotency.remember(
        session,
        actor=actor.label,
        key=client_mutation_id,
        result={"assignment": outcome.assignment.id},
    )
    return outcome


def _commands_grid(session: Session, actor: Actor, grid_id: int) -> bool:
    """A street commander commands the grids of their street."""
    streets = {b.scope_id for b in actor.bindings if b.role is Role.STREET_COMMANDER}
    street = session.scalar(
        select(Community.street_id)
        .join(Grid, Grid.community_id == Community.id)
        .where(Grid.id == grid_id)
    )
    return street is not None and street in streets


def _call_up(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    mobilisation: Mobilisation,
    current: Assignment | None,
    responder_id: int,
    grid_id: int,
    display_tz: str,
) -> Outcome:
    """Assign a free person (never assigned here, or released) to a grid, pinned."""
    if current is not None and current.status != AssignmentStatus.RELEASED.value:
        raise InvalidInput("responderId", f"this person has {current.status} in this mobilisation")
    responder = session.scalar(
        select(Responder).where(Responder.id == responder_id, visible(actor, Responder))
    )
    if responder is None or responder.district_id != mobilisation.district_id:
        raise NotFound(f"没有这个人员 No responder {responder_id}")
    if not responder.available:
        raise InvalidInput("responderId", "this person is marked unavailable")
    lock_roster(session, mobilisation.district_id)
    if responder.id in callup.busy_elsewhere(session, mobilisation.id):
        raise InvalidInput("responderId", "this person holds a slot in another mobilisation")
    grid = _grid_in(session, actor, mobilisation, grid_id)
    minutes, distance, mode = _travel(session, mobilisation, responder, grid)
    now = clock.now()
    fields = {
        "grid_id": grid.id,
        "community_id": grid.community_id,
        "role": AssignmentRole.WORK.value,
        "source": AssignmentSource.MANUAL.value,
        "pinned": True,
        "status": AssignmentStatus.ASSIGNED.value,
        "travel_minutes": minutes,
        "distance_m": distance,
        "mode": mode,
        "updated_at": now,
        "reason": None,
        "eta_minutes": None,
        "acknowledged_at": None,
        "checked_in_at": None,
    }
    if current is None:
        current = Assignment(mobilisation_id=mobilisation.id, responder_id=responder.id, **fields)
        try:
            with session.begin_nested():
                session.add(current)
        except IntegrityError:  # another commander sent them somewhere at the same moment
            raise Conflict(
                f"人员已被调整 Responder {responder_id} was just sent elsewhere: refresh the "
                "risk list"
            ) from None
    else:
        for key, value in fields.items():
            setattr(current, key, value)
    session.flush()
    _assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=current,
        kind="assignment.created",
        payload={
            "grid": grid.id,
            "community": grid.community_id,
            "role": AssignmentRole.WORK.value,
            "minutes": minutes,
            "mode": mode,
            "source": "manual",
            "cause": "risk_fix",
        },
    )
    ids = _tell_sent(
        session, mobilisation, responder, grid, (minutes, distance, mode), clock, display_tz
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[grid.id], clock=clock)
    promote_staffed(
        session, mobilisation_id=mobilisation.id, grid_ids=[grid.id], clock=clock, by=actor.label
    )
    return Outcome(mobilisation, batches=ids, assignment=current)
