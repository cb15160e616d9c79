"""The wartime switch: `activate` claims the area and queues the solve, `solve_activation`
(a background job) calls everyone in it, `stand_down` returns it to peacetime.

Every function takes the session, the acting user and the clock; it flushes, never commits.
Notifications are outbox rows: the edge dispatches the returned batches after commit."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from mobilize import idempotency, jobs, validation
from mobilize.auth.actor import Actor
from mobilize.auth.scope import (
    commands_mobilisation,
    visible_mobilisation,
)
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db import transaction
from mobilize.db.one_of import one_of
from mobilize.db.session import rowcount
from mobilize.errors import Forbidden, InvalidInput
from mobilize.events import record_event, record_events
from mobilize.mobilisation import callup, engine
from mobilize.mobilisation.area import AreaScope, resolve_area
from mobilize.mobilisation.hours import record_service
from mobilize.mobilisation.locks import lock_every_community, lock_roster
from mobilize.mobilisation.outcome import AlreadyActive, AlreadyStoodDown, Outcome, get_mobilisation
from mobilize.mobilisation.plan import apply_plan
from mobilize.mobilisation.rules import RULES, StaffingRule, reach_minutes, rule_for
from mobilize.models import (
    FINAL_TASK_STATUSES,
    HOLDING,
    LIVE,
    Assignment,
    AssignmentStatus,
    Community,
    Mobilisation,
    MobilisationArea,
    MobilisationKind,
    MobilisationStatus,
    PartyOrganisation,
    Responder,
    ResponderKind,
    Task,
    TaskStatus,
)
from mobilize.notify import Message
from mobilize.outbox import cancel_pending, enqueue
from mobilize.peacetime.availability import away_at
from mobilize.peacetime.ledger import rule_of
from mobilize.tasks.dispatch import generate_for_activation

ACTIVATION = "activation"  # the job kind of an activation's solve


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
    auto_dispatch: bool = True,
) -> Outcome:
    """Switch the scope to wartime: claim the area now (overlapping a live mobilisation is
    refused, naming it) and queue the solve (`solve_activation`) that calls everyone.
    `planner` "pairing" plans as the manual practice would, and without `auto_dispatch` the
    system does nothing by itself between clicks (drills measure the difference)."""
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
        again = get_mobilisation(session, earlier["mobilisation_id"])
        run = jobs.run_of(session, ACTIVATION, str(again.id))
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
    # Points as the district's rule says on the day (kept with the mobilisation after).
    points = rule_of(session, area.district.id)
    rule = replace(
        RULES[chosen_kind],
        planner=planner,
        auto_dispatch=auto_dispatch,
        points_per_hour=points["points_per_hour"],
        points_per_activity=points["points_per_activity"],
    )
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
    run_id = jobs.queue(session, kind=ACTIVATION, subject=str(mobilisation.id), clock=clock)
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
        batches += jobs.run(
            factory, run_id, kinds=JOBS, clock=clock, display_tz=display_tz, worker=worker
        )
    with factory() as session:
        mobilisation = get_mobilisation(session, claimed.mobilisation.id)
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
        now=clock.now(),
    )
    plan = engine.PLANNERS[rule.planner](
        problem.grids, problem.people, rule, reach_minutes(mobilisation, rule), problem.teams
    )
    batches = apply_plan(
        session,
        mobilisation=mobilisation,
        plan=plan,
        by=by,
        clock=clock,
        display_tz=display_tz,
        cause="activation",
    )
    mobilisation.figures = plan_figures(problem, plan, rule)
    mobilisation.status = MobilisationStatus.ACTIVE
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
        .where(
            one_of(MobilisationArea.community_id, communities),
            MobilisationArea.active.is_(True),
        )
        .order_by(Mobilisation.id)
        .limit(1)
    )
    assert found is not None, "the unique index refused an overlap that is not there"
    return found


def plan_figures(problem: callup.Problem, plan: engine.Plan, rule: StaffingRule) -> dict[str, Any]:
    per_grid = Counter(p.grid_id for p in plan.placements)
    held: Counter[int] = Counter()
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
        select(Community).where(one_of(Community.id, communities)).order_by(Community.id)
    ).all()
    secretaries = {
        r.code: r
        for r in session.scalars(
            select(Responder).where(
                Responder.district_id == mobilisation.district_id,
                one_of(Responder.code, [c.secretary_code for c in rows if c.secretary_code]),
                Responder.current(),
            )
        )
    }
    away = set(
        session.scalars(
            select(Responder.id).where(
                one_of(Responder.id, [r.id for r in secretaries.values()]), away_at(clock.now())
            )
        )
    )
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
        if secretary is not None and secretary.id not in away:
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
        return Outcome(get_mobilisation(session, earlier["mobilisation_id"]), replayed=True)
    mobilisation = visible_mobilisation(session, actor, mobilisation_id)
    if not commands_mobilisation(session, actor, mobilisation):
        raise Forbidden("standDown")
    lock_every_community(session, mobilisation.id)
    now = clock.now()
    changed = rowcount(
        session.execute(
            update(Mobilisation)
            .where(
                Mobilisation.id == mobilisation.id,
                Mobilisation.status.in_(LIVE),
            )
            .values(
                status=MobilisationStatus.STOOD_DOWN.value,
                stood_down_at=now,
                stood_down_by=actor.label,
            )
        )
    )
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
    holding = [a for a in rows if a.status in HOLDING]
    was = {a.id: a.status for a in holding}  # the bulk update below rewrites these objects
    phones = dict(
        session.execute(
            select(Responder.id, Responder.phone).where(
                one_of(Responder.id, [a.responder_id for a in holding])
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
        .where(Assignment.mobilisation_id == mobilisation.id, Assignment.status.in_(HOLDING))
        .values(status=AssignmentStatus.RELEASED.value, reason="stood_down", updated_at=now)
    )
    record_service(session, mobilisation=mobilisation, released=holding, now=now)
    # Open tasks end with the mobilisation.
    open_tasks = rowcount(
        session.execute(
            update(Task)
            .where(
                Task.mobilisation_id == mobilisation.id,
                Task.status.not_in([s.value for s in FINAL_TASK_STATUSES]),
            )
            .values(status=TaskStatus.CANCELLED.value, reason="stood_down", updated_at=now)
        )
    )
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


JOBS: Mapping[str, jobs.Work] = {ACTIVATION: solve_activation}  # registered by the edges
