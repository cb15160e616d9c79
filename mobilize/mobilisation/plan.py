"""Applying a plan: write the engine's placements as assignments (`apply_plan`), and re-plan
only the communities a change touched (`resolve`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db.bulk import insert_rows
from mobilize.db.one_of import one_of
from mobilize.events import record_events
from mobilize.mobilisation import callup, engine
from mobilize.mobilisation.locks import lock_roster
from mobilize.mobilisation.messages import assignment_message
from mobilize.mobilisation.rules import reach_minutes, rule_for
from mobilize.models import (
    Assignment,
    AssignmentSource,
    AssignmentStatus,
    Community,
    Grid,
    Mobilisation,
    MobilisationArea,
    MobilisationStatus,
    Responder,
    table_of,
)
from mobilize.outbox import enqueue
from mobilize.settings import DISPLAY_TIMEZONE
from mobilize.tasks.dispatch import promote_staffed


def apply_plan(
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
    current = {
        a.responder_id: a
        for a in session.scalars(
            select(Assignment).where(
                Assignment.mobilisation_id == mobilisation.id,
                one_of(Assignment.responder_id, concerned),
            )
        )
    }
    grid_ids = {p.grid_id for p in plan.placements}
    # Names and phones only: loading whole rows (geometry included) costs seconds at scale.
    grids = {
        g.id: g
        for g in session.execute(
            select(Grid.id, Grid.code, Grid.name, Grid.community_id).where(
                one_of(Grid.id, sorted(grid_ids))
            )
        )
    }
    communities = {
        c.id: c
        for c in session.execute(
            select(Community.id, Community.code, Community.name).where(
                one_of(Community.id, sorted({g.community_id for g in grids.values()}))
            )
        )
    }
    people = {
        r.id: r
        for r in session.execute(
            select(Responder.id, Responder.name, Responder.phone).where(
                one_of(Responder.id, placed)
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
            assignment_message(
                mobilisation, people[pid], grid, communities[grid.community_id], p, display_tz
            )
        )
    for pid in plan.unplaced:
        row = current.get(pid)
        if row is not None and row.status == AssignmentStatus.ASSIGNED.value and not row.pinned:
            row.status = AssignmentStatus.RELEASED
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
    insert_rows(session, table_of(Assignment), inserts)
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
    display_tz: str = DISPLAY_TIMEZONE,
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
        now=clock.now(),
    )
    plan = engine.PLANNERS[rule.planner](
        problem.grids,
        problem.people,
        rule,
        reach_minutes(mobilisation, rule),
        candidates=max(
            rule.candidates_per_person, len(problem.grids) if len(problem.grids) <= 400 else 0
        ),
    )
    return apply_plan(
        session,
        mobilisation=mobilisation,
        plan=plan,
        by=actor.label,
        clock=clock,
        display_tz=display_tz,
        cause=cause,
    )
