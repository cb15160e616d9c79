"""What happens on the clock, not on a click: escalation of at-risk grids to their street
command centre at T0 + `escalate_after_minutes`, the record of grids that missed the
deadline, and the system's own reactions (`mobilisation.reactions`: standbys sent and
released). `run_due` does whatever is due by the injected clock, so Celery beat, the embedded
scheduler and a drill on simulated time all call the same thing; each milestone is done once
whoever calls it, however many callers race."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mobilize.clock import Clock
from mobilize.coverage import risk
from mobilize.db.bulk import insert_if_absent
from mobilize.events import record_event, record_events
from mobilize.mobilisation import reactions
from mobilize.mobilisation.locks import lock_every_community
from mobilize.mobilisation.messages import clock_time
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import (
    District,
    Grid,
    GridState,
    GridStatus,
    Milestone,
    MilestoneKind,
    Mobilisation,
    MobilisationStatus,
    Street,
    table_of,
)
from mobilize.notify import Message
from mobilize.outbox import enqueue
from mobilize.settings import DISPLAY_TIMEZONE

SYSTEM = "system:scheduler"
_LISTED = 10  # grid codes named in one message; the rest are counted


def due_times(mobilisation: Mobilisation) -> dict[MilestoneKind, datetime]:
    rule = StaffingRule.from_dict(mobilisation.rule)
    return {
        MilestoneKind.ESCALATION: mobilisation.t0 + timedelta(minutes=rule.escalate_after_minutes),
        MilestoneKind.DEADLINE: mobilisation.deadline,
    }


def run_due(session: Session, *, clock: Clock, display_tz: str = DISPLAY_TIMEZONE) -> list[str]:
    """Do every milestone due by now on every active mobilisation; the outbox batches."""
    now = clock.now()
    batches: list[str] = []
    for mobilisation in session.scalars(
        select(Mobilisation)
        .where(Mobilisation.status == MobilisationStatus.ACTIVE.value)
        .order_by(Mobilisation.id)
    ):
        for kind, due in sorted(due_times(mobilisation).items(), key=lambda kv: kv[1]):
            if now < due or not _claim(session, mobilisation, kind, due, now):
                continue
            lock_every_community(session, mobilisation.id)
            step = _escalate if kind is MilestoneKind.ESCALATION else _close
            batches += step(session, mobilisation, due, clock, display_tz)
    # Then what the system does by itself between the command centres' rounds.
    return batches + reactions.react(session, clock=clock, display_tz=display_tz)


def _claim(
    session: Session, mobilisation: Mobilisation, kind: MilestoneKind, due: datetime, now: datetime
) -> bool:
    """The milestone row, or False when another scheduler has it already."""
    return (
        insert_if_absent(
            session,
            table_of(Milestone),
            {
                "mobilisation_id": mobilisation.id,
                "kind": kind.value,
                "due_at": due,
                "done_at": now,
                "figures": {},
            },
        )
        is not None
    )


def _names(session: Session, grid_ids: list[int]) -> dict[int, str]:
    return dict(session.execute(select(Grid.id, Grid.code).where(Grid.id.in_(grid_ids))).all())


def _street_codes(session: Session, street_ids: set[int]) -> dict[int, str]:
    return dict(
        session.execute(select(Street.id, Street.code).where(Street.id.in_(street_ids))).all()
    )


def _listing(risks: list[risk.GridRisk], codes: dict[int, str]) -> str:
    shown = "；".join(
        f"{codes[r.grid_id]}（{'、'.join(risk.REASON_NAMES[x] for x in r.reasons)}）"
        for r in risks[:_LISTED]
    )
    more = len(risks) - _LISTED
    return shown + (f" 等{len(risks)}个 and {more} more" if more > 0 else "")


def _mark(
    session: Session,
    mobilisation: Mobilisation,
    risks: list[risk.GridRisk],
    *,
    kind: str,
    column: str,
    value: datetime,
    due: datetime,
    clock: Clock,
) -> None:
    """Set `column` on these grids' states and record one `kind` event per grid, with why."""
    if risks:
        session.execute(
            update(GridState)
            .where(
                GridState.mobilisation_id == mobilisation.id,
                GridState.grid_id.in_([r.grid_id for r in risks]),
            )
            .values({column: value})
        )
    record_events(
        session,
        clock=clock,
        actor=SYSTEM,
        mobilisation_id=mobilisation.id,
        events=[
            (
                kind,
                "grid",
                str(r.grid_id),
                {
                    "street": r.street_id,
                    "community": r.community_id,
                    "status": r.status,
                    "reasons": [x.value for x in r.reasons],
                    "projected": r.projected.isoformat() if r.projected else None,
                    "due_at": due.isoformat(),
                },
            )
            for r in risks
        ],
    )


def _finish(
    session: Session,
    mobilisation: Mobilisation,
    milestone: MilestoneKind,
    *,
    kind: str,
    figures: dict[str, object],
    due: datetime,
    clock: Clock,
) -> None:
    """Keep the milestone's figures and record the mobilisation's event for it."""
    session.execute(
        update(Milestone)
        .where(Milestone.mobilisation_id == mobilisation.id, Milestone.kind == milestone.value)
        .values(figures=figures)
    )
    record_event(
        session,
        clock=clock,
        actor=SYSTEM,
        kind=kind,
        subject_type="mobilisation",
        subject_id=str(mobilisation.id),
        mobilisation_id=mobilisation.id,
        payload={**figures, "due_at": due.isoformat()},
    )


def _escalate(
    session: Session,
    mobilisation: Mobilisation,
    due: datetime,
    clock: Clock,
    display_tz: str,
) -> list[str]:
    """Grids still at risk go to their street command centre: marked, recorded, notified."""
    now = clock.now()
    at_risk = [r for r in risk.assess(session, mobilisation=mobilisation, now=now) if r.at_risk]
    _mark(
        session,
        mobilisation,
        at_risk,
        kind="grid.escalated",
        column="escalated_at",
        value=now,
        due=due,
        clock=clock,
    )
    by_street: dict[int, list[risk.GridRisk]] = defaultdict(list)
    for r in at_risk:
        by_street[r.street_id].append(r)
    codes = _names(session, [r.grid_id for r in at_risk])
    streets = _street_codes(session, set(by_street))
    deadline = clock_time(mobilisation.deadline, display_tz)
    messages = [
        Message(
            to=f"street:{streets[street_id]}",
            kind="escalation",
            text=(
                f"【mobilize 预警】“{mobilisation.title}”：{streets[street_id]} 有{len(risks)}个"
                f"微网格预计{deadline}前无法到岗：{_listing(risks, codes)}。请立即调度。 "
                f"Escalation: {len(risks)} micro-grids in {streets[street_id]} are projected to "
                f"miss the {deadline} deadline; act now."
            ),
        )
        for street_id, risks in sorted(by_street.items())
    ]
    figures = {
        "grids": len(at_risk),
        "streets": {streets[s]: len(v) for s, v in sorted(by_street.items())},
    }
    _finish(
        session,
        mobilisation,
        MilestoneKind.ESCALATION,
        kind="mobilisation.escalated",
        figures=figures,
        due=due,
        clock=clock,
    )
    return enqueue(session, clock=clock, messages=messages, mobilisation_id=mobilisation.id)


def _close(
    session: Session,
    mobilisation: Mobilisation,
    due: datetime,
    clock: Clock,
    display_tz: str,
) -> list[str]:
    """The deadline: every grid not mobilised is recorded as missed, with why."""
    every = risk.assess(session, mobilisation=mobilisation, now=clock.now())
    missed = [
        r for r in every if r.status not in (GridStatus.MOBILISED.value, GridStatus.CHECKED.value)
    ]
    _mark(
        session,
        mobilisation,
        missed,
        kind="grid.missed",
        column="missed_at",
        value=due,
        due=due,
        clock=clock,
    )
    grids = len(every)
    figures: dict[str, object] = {
        "grids": grids,
        "missed": len(missed),
        "mobilised": grids - len(missed),
    }
    _finish(
        session,
        mobilisation,
        MilestoneKind.DEADLINE,
        kind="mobilisation.deadline_passed",
        figures=figures,
        due=due,
        clock=clock,
    )
    district = session.get(District, mobilisation.district_id)
    assert district is not None
    codes = _names(session, [r.grid_id for r in missed])
    text = (
        f"【mobilize】“{mobilisation.title}”三小时时限已到：{grids}个微网格中"
        f"{grids - len(missed)}个已到岗，{len(missed)}个未按时到岗"
        + (f"：{_listing(missed, codes)}" if missed else "")
        + f"。 Deadline passed: {grids - len(missed)} of {grids} micro-grids mobilised, "
        f"{len(missed)} missed."
    )
    return enqueue(
        session,
        clock=clock,
        messages=[Message(to=f"district:{district.code}", kind="deadline", text=text)],
        mobilisation_id=mobilisation.id,
    )
