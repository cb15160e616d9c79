"""Grid states and coverage: where each micro-grid stands, kept as events happen, and the
coverage of any scope read from them.

A change to assignments or household records updates only the grids it touched (`track`);
coverage for any scope is then one grouped query over those states. `coverage.verify` derives
the same figures from the raw rows by code of its own, to check the maintained ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from mobilize.clock import Clock
from mobilize.db import prepared
from mobilize.db.bulk import insert_rows
from mobilize.db.one_of import one_of
from mobilize.db.prepared import Prepared
from mobilize.events import record_events
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import (
    HOLDING_VALUES,
    Assignment,
    AssignmentStatus,
    Community,
    Grid,
    GridLevel,
    GridState,
    GridStatus,
    Household,
    HouseholdRecord,
    Mobilisation,
    MobilisationArea,
    table_of,
)

_ANSWERED = [AssignmentStatus.ACKNOWLEDGED.value, AssignmentStatus.EN_ROUTE.value]

GRID_STATUS = "grid.status"  # the event of a grid's state changing: what replay folds
STATE_FIELDS = ("status", "assigned", "answered", "on_site", "households", "checked")
ACTOR = "system:coverage"  # grid states follow from other events: the system records them


def status_of(
    minimum: int, assigned: int, answered: int, on_site: int, households: int, checked: int
) -> GridStatus:
    if on_site >= minimum:
        return GridStatus.CHECKED if checked >= households else GridStatus.MOBILISED
    if answered or on_site:
        return GridStatus.ARRIVING
    return GridStatus.ASSIGNED if assigned else GridStatus.UNSTAFFED


@dataclass(frozen=True)
class _Counts:
    assigned: int = 0
    answered: int = 0
    on_site: int = 0
    checked: int = 0


def _counts(
    session: Session,
    mobilisation_id: int,
    grid_ids: Iterable[int] | None,
) -> dict[int, _Counts]:
    """People by state per grid, from the source rows; with `grid_ids` None, every grid's,
    and its households checked too (a grid's `checked` is otherwise its state's own count,
    which only `add_checks` raises)."""
    params: dict[str, object] = {"m": mobilisation_id}
    if grid_ids is None:
        counted = session.execute(_PEOPLE, params).all()
    else:
        params["ids"] = list(grid_ids)
        counted = prepared.rows(session, _PEOPLE_IN, params)
    found: dict[int, dict[str, int]] = {}
    for grid_id, assigned, answered, on_site in counted:
        found.setdefault(grid_id, {}).update(
            assigned=assigned, answered=int(answered or 0), on_site=int(on_site or 0)
        )
    if grid_ids is None:
        for grid_id, checked in session.execute(_CHECKS, params).all():
            found.setdefault(grid_id, {})["checked"] = checked
    return {g: _Counts(**c) for g, c in found.items()}


# Built once (every phone's write recounts its grid; building them cost more than running).
_PEOPLE = (
    select(
        Assignment.grid_id,
        func.count(),
        func.sum(case((one_of(Assignment.status, _ANSWERED), 1), else_=0)),
        func.sum(case((Assignment.status == AssignmentStatus.ON_SITE.value, 1), else_=0)),
    )
    .where(
        Assignment.mobilisation_id == bindparam("m"),
        one_of(Assignment.status, HOLDING_VALUES),
    )
    .group_by(Assignment.grid_id)
)
_PEOPLE_IN = Prepared(_PEOPLE.where(one_of(Assignment.grid_id, "ids")))
_CHECKS = (
    select(Household.micro_grid_id, func.count())
    .join(HouseholdRecord, HouseholdRecord.household_id == Household.id)
    .where(HouseholdRecord.mobilisation_id == bindparam("m"), HouseholdRecord.kind == "check")
    .group_by(Household.micro_grid_id)
)
# Rows, not objects (loading objects cost most of a phone's recount); objects of these states
# already in the session are brought up to date by hand (`_mirror`).
_STATE = table_of(GridState).c
_STATES_IN = Prepared(
    select(*_STATE)
    .where(
        _STATE.mobilisation_id == bindparam("m"),
        one_of(_STATE.grid_id, "ids"),
    )
    .order_by(_STATE.grid_id)
    .with_for_update()
)
_ADD_CHECKS = Prepared(
    update(table_of(GridState))
    .where(_STATE.mobilisation_id == bindparam("m"), _STATE.grid_id == bindparam("g"))
    .values(checked=_STATE.checked + bindparam("n"), updated_at=bindparam("now"))
    .returning(*_STATE)
)
_WRITE_STATE = Prepared(
    update(table_of(GridState))
    .where(_STATE.mobilisation_id == bindparam("m"), _STATE.grid_id == bindparam("g"))
    .values(
        {
            name: bindparam(f"v_{name}")
            for name in (
                "status",
                "assigned",
                "answered",
                "on_site",
                "checked",
                "mobilised_at",
                "mobilised_minute",
                "checked_at",
                "updated_at",
            )
        }
    )
)


def start(session: Session, *, mobilisation: Mobilisation, clock: Clock) -> None:
    """Every micro-grid of a new mobilisation, with the state its plan gives it."""
    rule = StaffingRule.from_dict(mobilisation.rule)
    now = clock.now()
    grids = session.execute(
        select(Grid.id, Grid.community_id, Community.street_id, Grid.household_count)
        .join(Community, Community.id == Grid.community_id)
        .join(MobilisationArea, MobilisationArea.community_id == Grid.community_id)
        .where(
            MobilisationArea.mobilisation_id == mobilisation.id,
            Grid.level == GridLevel.MICRO.value,
            Grid.current(),
        )
    ).all()
    counts = _counts(session, mobilisation.id, None)
    rows = []
    for grid_id, community_id, street_id, households in grids:
        c = counts.get(grid_id, _Counts())
        status = status_of(
            rule.min_on_site, c.assigned, c.answered, c.on_site, households, c.checked
        )
        rows.append(
            {
                "mobilisation_id": mobilisation.id,
                "grid_id": grid_id,
                "community_id": community_id,
                "street_id": street_id,
                "status": status.value,
                "assigned": c.assigned,
                "answered": c.answered,
                "on_site": c.on_site,
                "households": households,
                "checked": c.checked,
                "mobilised_at": None,
                "checked_at": None,
                "updated_at": now,
            }
        )
    insert_rows(session, table_of(GridState), rows)
    _record(session, mobilisation, clock, rows)


def _record(
    session: Session,
    mobilisation: TrackedMobilisation,
    clock: Clock,
    states: Iterable[Mapping[str, Any]],
) -> None:
    """One `grid.status` event per grid state given (as its row says now)."""
    record_events(
        session,
        clock=clock,
        actor=ACTOR,
        mobilisation_id=mobilisation.id,
        events=[
            (
                GRID_STATUS,
                "grid",
                str(st["grid_id"]),
                {
                    "grid": st["grid_id"],
                    "community": st["community_id"],
                    "street": st["street_id"],
                    **{key: st[key] for key in STATE_FIELDS},
                },
            )
            for st in states
        ],
    )


class TrackedMobilisation(Protocol):
    """What grid states need of their mobilisation: a `Mobilisation`, or `MobilisationFacts`
    read with the row that changed (a phone's sync reads no object)."""

    @property
    def id(self) -> int: ...
    @property
    def t0(self) -> datetime: ...
    @property
    def rule(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MobilisationFacts:
    id: int
    t0: datetime
    rule: dict[str, Any]


def track(
    session: Session,
    *,
    mobilisation: TrackedMobilisation,
    grid_ids: Iterable[int | None],
    clock: Clock,
) -> None:
    """Bring these grids' states up to date after a change that touched them: their people
    recounted from the source rows. Households checked are the state's own count, which
    only `add_checks` raises, in the same transaction as the records it counts."""
    ids = sorted({g for g in grid_ids if g is not None})
    if not ids:
        return
    # The states first, locked: each count must start from what those who updated the
    # state before it wrote (on PostgreSQL the locked read returns their committed row;
    # SQLite has one writer anyway).
    states = prepared.rows(session, _STATES_IN, {"m": mobilisation.id, "ids": ids})
    people = _counts(session, mobilisation.id, ids)
    changed, writes = [], []
    for state in states:
        counts = replace(people.get(state.grid_id, _Counts()), checked=state.checked)
        new = _next_state(mobilisation, state, counts, clock)
        if new is None:
            _mirror(session, state._mapping)
            continue
        writes.append(_state_write(mobilisation, state.grid_id, new))
        now_is = {**state._mapping, **new}
        _mirror(session, now_is)
        changed.append(now_is)
    if writes:
        prepared.run_many(session, _WRITE_STATE, writes)
    _record(session, mobilisation, clock, changed)


def add_checks(
    session: Session,
    *,
    mobilisation: TrackedMobilisation,
    checks: Mapping[int, int],
    clock: Clock,
) -> None:
    """New household checks per grid, which move no one (their writers take the community's
    lock shared, and anyone moving people takes it alone): each state's count goes up by
    its grid's new checks, in the statement that locks it, and nothing is recounted. A
    check is new only once (the records' unique key), so the increment is exact."""
    now = clock.now()
    changed, writes = [], []
    for grid_id in sorted(checks):
        params = {"m": mobilisation.id, "g": grid_id, "n": checks[grid_id], "now": now}
        found = prepared.rows(session, _ADD_CHECKS, params)
        if not found:
            continue  # a grid with no state in this mobilisation (drawn after it began)
        state = found[0]
        now_is = dict(state._mapping)
        new = _next_state(
            mobilisation,
            state,
            _Counts(state.assigned, state.answered, state.on_site, state.checked),
            clock,
        )
        if new is not None:  # the status moved (and with it when first mobilised or checked)
            writes.append(_state_write(mobilisation, grid_id, new))
            now_is.update(new)
        _mirror(session, now_is)
        changed.append(now_is)
    if writes:
        prepared.run_many(session, _WRITE_STATE, writes)
    _record(session, mobilisation, clock, changed)


def _next_state(
    mobilisation: TrackedMobilisation, state: Any, c: _Counts, clock: Clock
) -> dict[str, Any] | None:
    """What a grid's state row becomes with these counts; None when it would not change."""
    rule = StaffingRule.from_dict(mobilisation.rule)
    status = status_of(
        rule.min_on_site, c.assigned, c.answered, c.on_site, state.households, c.checked
    )
    first_mobilised = status in (GridStatus.MOBILISED, GridStatus.CHECKED) and (
        state.mobilised_at is None
    )
    first_checked = status is GridStatus.CHECKED and state.checked_at is None
    if (state.status, state.assigned, state.answered, state.on_site, state.checked) == (
        status.value,
        c.assigned,
        c.answered,
        c.on_site,
        c.checked,
    ):
        return None
    now = clock.now()
    new = {
        "status": status.value,
        "assigned": c.assigned,
        "answered": c.answered,
        "on_site": c.on_site,
        "checked": c.checked,
        "mobilised_at": state.mobilised_at,
        "mobilised_minute": state.mobilised_minute,
        "checked_at": state.checked_at,
        "updated_at": now,
    }
    if first_mobilised:
        new["mobilised_at"], new["mobilised_minute"] = now, minute_of(mobilisation, now)
    if first_checked:
        new["checked_at"] = now
    return new


def _state_write(
    mobilisation: TrackedMobilisation, grid_id: int, new: dict[str, Any]
) -> dict[str, Any]:
    return {"m": mobilisation.id, "g": grid_id, **{f"v_{k}": v for k, v in new.items()}}


def _mirror(session: Session, row: Mapping[Any, Any]) -> None:
    """Whatever the session holds of this grid state now says what its row says."""
    kept = session.identity_map.get(
        identity_key(GridState, (row["mobilisation_id"], row["grid_id"]))
    )
    if kept is not None:
        for key, value in row.items():
            set_committed_value(kept, key, value)


@dataclass
class Coverage:
    grids: int
    by_status: dict[str, int]
    mobilised_pct: float
    households: int
    households_checked: int
    households_checked_pct: float
    minutes_left: float
    curve: list[tuple[int, int]] = field(default_factory=list)  # (minute since T0, mobilised)

    def figures(self) -> dict[str, Any]:
        """What --verify compares: everything but the clock-dependent time left."""
        return {
            "grids": self.grids,
            "by_status": self.by_status,
            "households_checked": self.households_checked,
            "curve": self.curve,
        }


def scope_states(stmt: Any, street_id: int | None, community_id: int | None) -> Any:
    """`stmt` (which reads `GridState`) narrowed to a street or a community."""
    if street_id is not None:
        stmt = stmt.where(GridState.street_id == street_id)
    if community_id is not None:
        stmt = stmt.where(GridState.community_id == community_id)
    return stmt


def minute_of(mobilisation: TrackedMobilisation, t: datetime) -> int:
    return int((t - mobilisation.t0).total_seconds() // 60)


def curve_of(mobilisation: Mobilisation, times: Iterable[datetime | None]) -> list[tuple[int, int]]:
    return cumulative(Counter(minute_of(mobilisation, t) for t in times if t is not None))


def cumulative(minutes: dict[int, int]) -> list[tuple[int, int]]:
    curve, total = [], 0
    for minute in sorted(minutes):
        total += minutes[minute]
        curve.append((minute, total))
    return curve


def coverage(
    session: Session,
    *,
    mobilisation: Mobilisation,
    now: datetime,
    street_id: int | None = None,
    community_id: int | None = None,
) -> Coverage:
    """Coverage of a scope (the mobilisation, a street or a community) from the grid states."""
    rows = session.execute(
        scope_states(
            select(
                GridState.status,
                func.count(),
                func.sum(GridState.households),
                func.sum(GridState.checked),
            )
            .where(GridState.mobilisation_id == mobilisation.id)
            .group_by(GridState.status),
            street_id,
            community_id,
        )
    ).all()
    by_status = {s.value: 0 for s in GridStatus}
    households = checked = 0
    for status, n, h, c in rows:
        by_status[status] = n
        households += int(h or 0)
        checked += int(c or 0)
    minutes = session.execute(
        scope_states(
            select(GridState.mobilised_minute, func.count())
            .where(
                GridState.mobilisation_id == mobilisation.id,
                GridState.mobilised_minute.is_not(None),
            )
            .group_by(GridState.mobilised_minute),
            street_id,
            community_id,
        )
    ).all()
    end = mobilisation.stood_down_at or now
    curve = cumulative(dict(minutes))
    return figures_to_coverage(mobilisation, end, by_status, households, checked, curve)


def figures_to_coverage(
    mobilisation: Mobilisation,
    end: datetime,
    by_status: dict[str, int],
    households: int,
    checked: int,
    curve: list[tuple[int, int]],
) -> Coverage:
    """`end`: the instant time left is counted from (now, or when it stood down)."""
    grids = sum(by_status.values())
    mobilised = by_status[GridStatus.MOBILISED.value] + by_status[GridStatus.CHECKED.value]
    return Coverage(
        grids=grids,
        by_status=by_status,
        mobilised_pct=round(100.0 * mobilised / grids, 2) if grids else 0.0,
        households=households,
        households_checked=checked,
        households_checked_pct=round(100.0 * checked / households, 2) if households else 0.0,
        minutes_left=round((mobilisation.deadline - end).total_seconds() / 60.0, 1),
        curve=curve,
    )


def grid_states(
    session: Session,
    *,
    mobilisation: Mobilisation,
    street_id: int | None = None,
    community_id: int | None = None,
) -> list[GridState]:
    """Every micro-grid's state in a mobilisation, or a street or community of it, by grid."""
    stmt = select(GridState).where(GridState.mobilisation_id == mobilisation.id)
    return list(
        session.scalars(scope_states(stmt, street_id, community_id).order_by(GridState.grid_id))
    )
