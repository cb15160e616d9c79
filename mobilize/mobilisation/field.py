"""What phones do in the field: check in on site (within the grid, in any of China's map
coordinate systems) and raise a problem for the street command centre."""

from __future__ import annotations

import shapely
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from geo import LocalMetric, to_wgs84
from mobilize import idempotency, validation
from mobilize.auth.actor import Actor
from mobilize.clock import Clock
from mobilize.coverage import service as coverage
from mobilize.db import prepared
from mobilize.db.prepared import Prepared
from mobilize.errors import DomainError, InvalidInput
from mobilize.events import record_event
from mobilize.mobilisation.assignments import assignment_event, own_assignment, transition
from mobilize.mobilisation.outcome import Outcome
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import (
    AssignmentStatus,
    Community,
    Grid,
    ProblemReport,
    Street,
)
from mobilize.notify import Message
from mobilize.outbox import enqueue

# The grid's outline alone (every arrival measures the distance to it), not the whole row.
_GRID_AREA = Prepared(select(Grid.geom).where(Grid.id == bindparam("g")))


class OutOfArea(DomainError):
    code = "OUT_OF_AREA"

    def __init__(self, distance_m: float, radius_m: float) -> None:
        super().__init__(
            f"您距离网格约{distance_m:,.0f}米，未能签到 You are {distance_m:,.0f} m from your "
            f"micro-grid; check-in counts within {radius_m:,.0f} m"
        )
        self.distance_m = distance_m


def check_in(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    client_mutation_id: str | None = None,
) -> Outcome:
    """On site: accepted inside the micro-grid buffered by the rule's radius, in WGS-84 after
    converting from the phone's coordinate system; refused with the distance otherwise."""
    validation.point("location", lon, lat)
    if crs not in ("wgs84", "gcj02", "bd09"):
        raise InvalidInput("crs", "one of wgs84, gcj02, bd09")
    assignment, mobilisation, replayed = own_assignment(
        session,
        actor=actor,
        clock=clock,
        assignment_id=assignment_id,
        operation="checkIn",
        key=client_mutation_id,
        request={"lon": lon, "lat": lat, "crs": crs},
    )
    if replayed is not None:
        return Outcome(mobilisation, assignment=assignment, replayed=True)
    rule = StaffingRule.from_dict(mobilisation.rule)
    (area,) = prepared.rows(session, _GRID_AREA, {"g": assignment.grid_id})[0]
    x, y = to_wgs84([lon], [lat], crs)
    here = shapely.Point(float(x[0]), float(y[0]))
    metric = LocalMetric.near(area)
    distance = metric.distance_m(here, area)
    if distance > rule.check_in_radius_m:
        raise OutOfArea(distance, rule.check_in_radius_m)
    now = clock.now()
    transition(
        session,
        assignment,
        (AssignmentStatus.ASSIGNED, AssignmentStatus.ACKNOWLEDGED, AssignmentStatus.EN_ROUTE),
        AssignmentStatus.ON_SITE,
        now,
        checked_in_at=now,
    )
    assignment_event(
        session,
        clock=clock,
        actor=actor,
        assignment=assignment,
        kind="assignment.checked_in",
        payload={
            "grid": assignment.grid_id,
            "lon": here.x,
            "lat": here.y,
            "crs": crs,
            "distance_m": round(distance, 1),
        },
    )
    coverage.track(session, mobilisation=mobilisation, grid_ids=[assignment.grid_id], clock=clock)
    idempotency.remember(
        session, actor=actor.label, key=client_mutation_id, result={"assignment": assignment.id}
    )
    return Outcome(mobilisation, assignment=assignment)


def report_problem(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    assignment_id: int,
    text: str,
    client_mutation_id: str | None = None,
) -> tuple[ProblemReport, list[str]]:
    """A problem from the grid, escalated at once to the street command centre."""
    text = validation.text("text", text, max_len=1000, multiline=True)
    assignment, mobilisation, earlier = own_assignment(
        session,
        actor=actor,
        clock=clock,
        assignment_id=assignment_id,
        operation="reportProblem",
        key=client_mutation_id,
        request={"text": text},
    )
    if earlier is not None:
        found = session.get(ProblemReport, earlier["report"])
        assert found is not None
        return found, []
    report = ProblemReport(
        mobilisation_id=mobilisation.id,
        responder_id=assignment.responder_id,
        grid_id=assignment.grid_id,
        community_id=assignment.community_id,
        text=text,
        created_at=clock.now(),
        status="escalated",
    )
    session.add(report)
    session.flush()
    street = session.execute(
        select(Street.code, Street.name, Community.name, Grid.code)
        .join(Community, Community.street_id == Street.id)
        .join(Grid, Grid.community_id == Community.id)
        .where(Grid.id == assignment.grid_id)
    ).one()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="problem.reported",
        subject_type="responder",
        subject_id=str(assignment.responder_id),
        mobilisation_id=mobilisation.id,
        payload={
            "report": report.id,
            "grid": assignment.grid_id,
            "street": street[0],
            "text": text,
        },
    )
    batches = enqueue(
        session,
        clock=clock,
        mobilisation_id=mobilisation.id,
        messages=[
            Message(
                to=f"street:{street[0]}",
                kind="problem",
                text=f"【mobilize】{street[2]}{street[3]}报告问题：{text} "
                f"— problem reported in {street[3]}",
            )
        ],
    )
    idempotency.remember(
        session, actor=actor.label, key=client_mutation_id, result={"report": report.id}
    )
    return report, batches
