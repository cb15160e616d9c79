"""The after-action report in the API (the same figures `mobilize report` writes to files)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime

import strawberry
from strawberry import Private
from strawberry.scalars import JSON

from mobilize import errors
from mobilize.api.common import ContextInfo
from mobilize.api.relay import expect_global_id, place_ids
from mobilize.auth.scope import in_scope
from mobilize.review import report as r


@strawberry.type(description="How long something took, in minutes.")
class Distribution:
    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    max: float | None
    buckets: list[Bucket] = strawberry.field(
        description="0-15, 15-30, 30-60, 60-120, 120-180, >180"
    )

    @classmethod
    def of(cls, d: r.Distribution) -> Distribution:
        return cls(
            count=d.count,
            mean=d.mean,
            p50=d.p50,
            p90=d.p90,
            max=d.max,
            buckets=[Bucket(minutes=label, count=n) for label, n in d.buckets],
        )


@strawberry.type
class Bucket:
    minutes: str
    count: int


@strawberry.type(description="One street or community of the report.")
class AreaFigures:
    id: Private[int]
    code: str
    name: str
    grids: int
    mobilised_by_deadline: int
    missed: int
    time_to_mobilise: Distribution
    time_to_acknowledge: Distribution

    @classmethod
    def of(cls, a: r.AreaFigures) -> AreaFigures:
        figures = asdict(a) | {
            "time_to_mobilise": Distribution.of(a.time_to_mobilise),
            "time_to_acknowledge": Distribution.of(a.time_to_acknowledge),
        }
        return cls(**figures)


@strawberry.type(description="A micro-grid not mobilised by the deadline, and why.")
class MissedGrid:
    grid_id: Private[int]
    code: str
    name: str
    community: str
    street: str
    cause: str = strawberry.field(
        description="nobody_in_reach, late_arrival, no_show, declined or late_acknowledgement"
    )
    cause_label: str = strawberry.field(description="The cause in Chinese, then English.")
    mobilised_minute: float | None = strawberry.field(
        description="Minutes after T0 it was mobilised in the end; null: never."
    )
    assigned: int
    declined: int
    acknowledged: int
    arrived_late: int


@strawberry.type(description="A unit's forces: its pairings' quotas against who came.")
class UnitForces:
    unit_id: Private[int]
    code: str
    name: str
    quota: int
    called: int
    acknowledged: int
    arrived_by_deadline: int
    arrived: int
    quota_met: bool


@strawberry.type
class KindForces:
    kind: str
    called: int
    acknowledged: int
    declined: int
    arrived_by_deadline: int
    arrived: int


@strawberry.type(description="A command, as the log recorded it.")
class Command:
    seq: int
    at: datetime
    minute: float = strawberry.field(description="Minutes since T0.")
    actor: str
    kind: str
    label: str
    payload: JSON


@strawberry.type
class ReportCurvePoint:
    minute: float
    mobilised: int
    pct: float


@strawberry.type(description="What happened, how fast, and why grids were late.")
class AfterActionReport:
    title: str
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
    curve: list[ReportCurvePoint]
    streets: list[AreaFigures]
    communities: list[AreaFigures]
    missed: list[MissedGrid]
    units: list[UnitForces]
    kinds: list[KindForces]
    timeline: list[Command]
    in_progress: bool = strawberry.field(
        description="Before its deadline and not stood down: the figures are those so far "
        "(as of `asOf`) and no grid has missed the deadline yet."
    )
    as_of: datetime | None = strawberry.field(description="When an in-progress report stood.")

    @classmethod
    def of(cls, rep: r.Report) -> AfterActionReport:
        shown = {f.name for f in fields(cls)}
        plain = {f.name: getattr(rep, f.name) for f in fields(rep) if f.name in shown}
        nested = {
            "time_to_acknowledge": Distribution.of(rep.time_to_acknowledge),
            "time_to_arrive": Distribution.of(rep.time_to_arrive),
            "time_to_mobilise": Distribution.of(rep.time_to_mobilise),
            "curve": [ReportCurvePoint(minute=a, mobilised=b, pct=c) for a, b, c in rep.curve],
            "streets": [AreaFigures.of(a) for a in rep.streets],
            "communities": [AreaFigures.of(a) for a in rep.communities],
            "missed": [MissedGrid(**asdict(m)) for m in rep.missed],
            "units": [UnitForces(**asdict(u)) for u in rep.units],
            "kinds": [KindForces(**asdict(k)) for k in rep.kinds],
            "timeline": [
                Command(
                    seq=c.mseq,
                    at=c.at,
                    minute=c.minute,
                    actor=c.actor,
                    kind=c.kind,
                    label=c.label,
                    payload=JSON(c.payload),
                )
                for c in rep.timeline
            ],
        }
        return cls(**(plain | nested))


@strawberry.type
class ReportQuery:
    @strawberry.field(
        description="The after-action report of a mobilisation (or a street or community of "
        "it; by default the caller's own place), computed from the event log."
    )
    async def after_action_report(
        self,
        info: ContextInfo,
        mobilisation: strawberry.ID,
        street: strawberry.ID | None = None,
        community: strawberry.ID | None = None,
    ) -> AfterActionReport | None:
        ctx = info.context
        try:
            rep = await ctx.db.run(
                in_scope,
                r.build,
                actor=ctx.actor,
                mobilisation_id=expect_global_id(mobilisation, "Mobilisation", "mobilisation"),
                now=ctx.clock.now(),
                **place_ids(street, community),
            )
        except errors.NotFound:
            return None
        return AfterActionReport.of(rep)
