"""From the database to the engine: who is called for a set of communities and what each
micro-grid still needs (the engine's problem); `plan.py` writes the engine's answer back.

The same code serves the activation (every community in scope, nobody assigned yet) and a
re-solve (the communities a change touched: committed and pinned people stay put and hold
their slots; people merely assigned may move; people not yet placed are the reserve)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import shapely
from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from geo import LocalMetric
from mobilize.db.one_of import one_of
from mobilize.db.types import parse_all, unparsed
from mobilize.mobilisation.engine import GridNeed, Person, Team
from mobilize.mobilisation.rules import StaffingRule
from mobilize.models import (
    HOLDING,
    Assignment,
    AssignmentStatus,
    Building,
    Community,
    District,
    Grid,
    GridLevel,
    Mobilisation,
    MobilisationStatus,
    Pairing,
    Responder,
    ResponderKind,
    Unit,
)
from mobilize.peacetime.availability import away_at


@dataclass(frozen=True)
class GridInfo:
    grid_id: int
    community_id: int
    parent_id: int
    households: int
    x: float
    y: float


@dataclass
class Problem:
    grids: list[GridNeed]
    people: list[Person]
    teams: list[Team]
    info: dict[int, GridInfo]
    slots: int  # all slots of the region's micro-grids, filled or not


def metric_for(session: Session, district_id: int) -> LocalMetric:
    district = session.get(District, district_id)
    assert district is not None
    return LocalMetric.around(district.geom)


def load_grids(
    session: Session, community_ids: tuple[int, ...] | list[int], metric: LocalMetric
) -> dict[int, GridInfo]:
    rows = session.execute(
        select(
            Grid.id, Grid.community_id, Grid.parent_id, Grid.household_count, unparsed(Grid.centre)
        )
        .where(
            one_of(Grid.community_id, community_ids),
            Grid.level == GridLevel.MICRO.value,
            Grid.current(),
        )
        .order_by(Grid.id)
    ).all()
    if not rows:
        return {}
    coords = shapely.get_coordinates(parse_all([r.centre for r in rows]))
    x, y = metric.xy(coords[:, 0], coords[:, 1])
    return {
        r.id: GridInfo(
            r.id, r.community_id, r.parent_id, r.household_count, float(x[i]), float(y[i])
        )
        for i, r in enumerate(rows)
    }


@dataclass(frozen=True)
class Candidate:
    """A responder who may be called, with where they set off from (metres)."""

    id: int
    kind: str
    unit_id: int | None
    team_id: int | None
    home_grid_id: int | None
    x: float
    y: float
    home: shapely.Point | None
    building_grid_id: int | None = None  # 楼栋长: the micro-grid of the building they lead

    @property
    def home_grid(self) -> int:
        """The grid a grid worker or micro-grid member belongs to (the importer refuses either
        without one)."""
        assert self.home_grid_id is not None, f"responder {self.id} has no home grid"
        return self.home_grid_id


def candidates(
    session: Session,
    *,
    who: Any,
    metric: LocalMetric,
    info: dict[int, GridInfo],
    now: datetime,
) -> list[Candidate]:
    """Responders matching `who` (which names their district) and not on leave `now`, placed
    where they set off from: their own point, else their unit's, else their home grid's. One
    query, one projection."""
    rows = session.execute(
        select(
            Responder.id,
            Responder.kind,
            Responder.unit_id,
            Responder.team_id,
            Responder.home_grid_id,
            unparsed(Responder.geom),
            unparsed(Unit.geom).label("unit_geom"),
            Building.micro_grid_id.label("building_grid_id"),
        )
        .outerjoin(Unit, Unit.id == Responder.unit_id)
        .outerjoin(Building, (Building.id == Responder.leads_building_id) & Building.current())
        .where(~away_at(now), Responder.current(), who)
        .order_by(Responder.id)
    ).all()
    own = parse_all([r.geom for r in rows])
    starts = np.where(shapely.is_missing(own), parse_all([r.unit_geom for r in rows]), own)
    lon, lat = shapely.get_x(starts), shapely.get_y(starts)  # NaN where there is none
    x, y = metric.xy(lon, lat) if len(rows) else (lon, lat)
    found = []
    for i, r in enumerate(rows):
        px, py = float(x[i]), float(y[i])
        if not np.isfinite(px):
            if r.home_grid_id not in info:
                continue  # nowhere to set off from: cannot be planned
            px, py = info[r.home_grid_id].x, info[r.home_grid_id].y
        found.append(
            Candidate(
                r.id,
                r.kind,
                r.unit_id,
                r.team_id,
                r.home_grid_id,
                px,
                py,
                own[i],
                r.building_grid_id,
            )
        )
    return found


def busy_elsewhere(session: Session, mobilisation_id: int) -> set[int]:
    """People holding a slot in another active mobilisation: not free to be called here."""
    # The other mobilisations first: usually there are none, and every re-plan asks.
    others = list(
        session.scalars(
            select(Mobilisation.id).where(
                Mobilisation.status == MobilisationStatus.ACTIVE.value,
                Mobilisation.id != mobilisation_id,
            )
        )
    )
    if not others:
        return set()
    return set(
        session.scalars(
            select(Assignment.responder_id).where(
                one_of(Assignment.mobilisation_id, others),
                Assignment.status.in_(HOLDING),
            )
        )
    )


def called_among(session: Session, mobilisation_id: int, responder_ids: list[int]) -> set[int]:
    """Which of these people hold or held an assignment in the mobilisation."""
    return set(
        session.scalars(
            select(Assignment.responder_id).where(
                Assignment.mobilisation_id == mobilisation_id,
                one_of(Assignment.responder_id, responder_ids),
            )
        )
    )


def _volunteers_inside(session: Session, district_id: int, inside: shapely.Geometry) -> list[int]:
    """The district's volunteers outside any team who live inside the region: the only ones
    a plan of the region calls (the rest are ruled out here in one vectorised test, not each
    loaded and placed on every re-plan of one community)."""
    rows = session.execute(
        select(Responder.id, unparsed(Responder.geom)).where(
            Responder.district_id == district_id,
            Responder.kind == ResponderKind.VOLUNTEER.value,
            Responder.team_id.is_(None),
            Responder.geom.is_not(None),
        )
    ).all()
    if not rows:
        return []
    homes = parse_all([r.geom for r in rows])
    return [r.id for r, covered in zip(rows, shapely.covers(inside, homes), strict=True) if covered]


def build_problem(
    session: Session,
    *,
    mobilisation: Mobilisation,
    rule: StaffingRule,
    region: tuple[int, ...] | list[int],
    scope: tuple[int, ...] | list[int],
    metric: LocalMetric,
    with_teams: bool,
    now: datetime,
) -> Problem:
    """The engine's problem for the `region` communities of a mobilisation over `scope`."""
    info = load_grids(session, region, metric)
    # Only the region's own assignments are loaded whole (a re-plan of one community stays
    # cheap); who else was called is asked of the roster alone, below.
    existing = session.execute(
        select(
            Assignment.responder_id,
            Assignment.grid_id,
            Assignment.community_id,
            Assignment.status,
            Assignment.pinned,
        ).where(
            Assignment.mobilisation_id == mobilisation.id, one_of(Assignment.community_id, region)
        )
    ).all()
    holding_fixed: dict[int, int] = defaultdict(int)
    movable: list[Any] = []
    for a in existing:
        if a.status not in HOLDING or a.grid_id not in info:
            continue
        if a.status == AssignmentStatus.ASSIGNED.value and not a.pinned:
            movable.append(a)
        else:
            holding_fixed[a.grid_id] += 1

    grids = []
    slots = 0
    for g in info.values():
        need = rule.need(g.households)
        slots += need
        held = holding_fixed[g.grid_id]
        open_min = max(0, rule.min_on_site - held)
        open_work = max(0, need - max(rule.min_on_site, held))
        grids.append(GridNeed(g.grid_id, g.community_id, g.x, g.y, open_min, open_work))

    busy = busy_elsewhere(session, mobilisation.id)
    children: dict[int, list[int]] = defaultdict(list)
    by_community: dict[int, list[int]] = defaultdict(list)
    for g in info.values():
        children[g.parent_id].append(g.grid_id)
        by_community[g.community_id].append(g.grid_id)
    pairings = session.scalars(
        select(Pairing)
        .where(one_of(Pairing.community_id, region), Pairing.current())
        .order_by(Pairing.unit_id, Pairing.community_id)
    ).all()
    movable_ids = [a.responder_id for a in movable]
    inside = _area_of(session, region)
    team_scope = (
        _teams_in_scope(
            session,
            mobilisation,
            scope,
            inside if set(scope) == set(region) else _area_of(session, scope),
        )
        if with_teams
        else set()
    )
    # Who may be called, as ids found each by its own index (one condition with OR read
    # every responder of the district, 17 ms of every re-plan on xindu).
    ids = union_all(
        select(Responder.id).where(
            Responder.kind == ResponderKind.MICRO_GRID_MEMBER.value,
            one_of(Responder.home_grid_id, info),
        ),
        select(Responder.id).where(
            Responder.kind == ResponderKind.GRID_WORKER.value,
            one_of(Responder.home_grid_id, children),
        ),
        select(Responder.id).where(
            Responder.kind == ResponderKind.SUNK_CADRE.value,
            one_of(Responder.unit_id, sorted({p.unit_id for p in pairings})),
        ),
        select(Responder.id).where(
            one_of(Responder.id, _volunteers_inside(session, mobilisation.district_id, inside))
        ),
        select(Responder.id).where(one_of(Responder.team_id, sorted(team_scope))),
        select(Responder.id).where(one_of(Responder.id, movable_ids)),
        select(Responder.id)
        .join(Building, Building.id == Responder.leads_building_id)
        .where(one_of(Building.micro_grid_id, info), Building.current()),
    )
    roster = candidates(session, who=Responder.id.in_(ids), metric=metric, info=info, now=now)
    by_id = {c.id: c for c in roster}
    # Everyone already called anywhere in the mobilisation is not called again.
    seen = called_among(session, mobilisation.id, list(by_id))
    fresh = [c for c in roster if c.id not in seen and c.id not in busy]
    # A building's leader goes to their building whatever else they are (1名楼栋长 per
    # building, with the cadres and volunteers the plan sends).
    leaders = [c for c in fresh if c.building_grid_id in info]
    fresh = [c for c in fresh if c.building_grid_id not in info]

    people: list[Person] = []
    for a in sorted(movable, key=lambda a: a.responder_id):
        c = by_id.get(a.responder_id)
        if c is None:
            continue  # marked unavailable meanwhile: their release is recorded elsewhere
        allowed = _allowed(c, info, children, a)
        nearby = _neighbours(c, info, children) if c.building_grid_id not in info else ()
        people.append(
            Person(c.id, c.x, c.y, allowed, a.grid_id, always=allowed is not None, nearby=nearby)
        )
    for c in leaders:
        assert c.building_grid_id is not None
        people.append(Person(c.id, c.x, c.y, (c.building_grid_id,), always=True))
    for c in fresh:
        if c.kind == ResponderKind.MICRO_GRID_MEMBER.value:
            people.append(
                Person(
                    c.id,
                    c.x,
                    c.y,
                    (c.home_grid,),
                    always=True,
                    nearby=_neighbours(c, info, children),
                )
            )
        elif c.kind == ResponderKind.GRID_WORKER.value:
            people.append(
                Person(
                    c.id,
                    c.x,
                    c.y,
                    tuple(children[c.home_grid]),
                    always=True,
                )
            )
    people.extend(_cadres(pairings, info, by_community, fresh, existing, by_id))
    for c in fresh:
        if (
            c.kind == ResponderKind.VOLUNTEER.value
            and c.team_id is None
            and c.home is not None
            and inside.covers(c.home)
        ):
            people.append(Person(c.id, c.x, c.y))

    teams: list[Team] = []
    if with_teams:
        members: dict[int, list[Person]] = defaultdict(list)
        for c in fresh:
            if c.team_id in team_scope:
                members[c.team_id].append(Person(c.id, c.x, c.y))
        teams = [Team(t, tuple(m)) for t, m in sorted(members.items())]
    return Problem(grids=grids, people=people, teams=teams, info=info, slots=slots)


def district_problem(
    session: Session, *, district_id: int, rule: StaffingRule, now: datetime
) -> Problem:
    """The call-up an activation of the whole district would make now, before anyone is
    called (a probe mobilisation holds nobody): what a lower bound or a baseline plans on."""
    communities = tuple(
        session.scalars(
            select(Community.id)
            .where(Community.district_id == district_id, Community.current())
            .order_by(Community.id)
        )
    )
    return build_problem(
        session,
        mobilisation=Mobilisation(id=-1, district_id=district_id),
        rule=rule,
        region=communities,
        scope=communities,
        metric=metric_for(session, district_id),
        with_teams=True,
        now=now,
    )


def _allowed(
    c: Candidate, info: dict[int, GridInfo], children: dict[int, list[int]], a: Any
) -> tuple[int, ...] | None:
    """Where an already-assigned person may be moved: the same rules as when first called."""
    if c.building_grid_id in info:
        return (c.building_grid_id,)
    if c.kind == ResponderKind.MICRO_GRID_MEMBER.value:
        return (c.home_grid,)
    if c.kind == ResponderKind.GRID_WORKER.value:
        return tuple(children.get(c.home_grid, ()))
    if c.kind == ResponderKind.SUNK_CADRE.value or c.team_id is not None:
        return tuple(g for g, i in info.items() if i.community_id == a.community_id)
    return None


def _neighbours(
    c: Candidate, info: dict[int, GridInfo], children: dict[int, list[int]]
) -> tuple[int, ...]:
    """The other micro-grids of a member's general grid, which they may help when their own
    is staffed (网格内互助): a far grid's minimum need not wait for a cadre across town."""
    if c.kind != ResponderKind.MICRO_GRID_MEMBER.value or c.home_grid_id not in info:
        return ()
    return tuple(g for g in children[info[c.home_grid_id].parent_id] if g != c.home_grid_id)


def _cadres(
    pairings: Sequence[Pairing],
    info: dict[int, GridInfo],
    by_community: dict[int, list[int]],
    fresh: list[Candidate],
    existing: Sequence[Any],
    by_id: dict[int, Candidate],
) -> list[Person]:
    """Sunk cadres of units paired with the region's communities, up to each pairing's quota
    (less those of the unit already holding a slot there), nearest to the community first."""
    holding: Counter[tuple[int, int]] = Counter()
    for a in existing:
        c = by_id.get(a.responder_id)
        if (
            a.status in HOLDING
            and c is not None
            and c.kind == ResponderKind.SUNK_CADRE.value
            and c.unit_id is not None
        ):
            holding[(c.unit_id, a.community_id)] += 1
    pool: dict[int, list[Candidate]] = defaultdict(list)
    for c in fresh:
        if c.kind == ResponderKind.SUNK_CADRE.value and c.unit_id is not None:
            pool[c.unit_id].append(c)
    people: list[Person] = []
    taken: set[int] = set()
    for pairing in pairings:
        grid_ids = by_community.get(pairing.community_id, [])
        if not grid_ids:
            continue
        cx = float(np.mean([info[g].x for g in grid_ids]))
        cy = float(np.mean([info[g].y for g in grid_ids]))
        wanted = max(0, pairing.wartime_quota - holding[(pairing.unit_id, pairing.community_id)])
        nearest = sorted(
            (c for c in pool[pairing.unit_id] if c.id not in taken),
            key=lambda c: (np.hypot(c.x - cx, c.y - cy), c.id),
        )[:wanted]
        for c in nearest:
            taken.add(c.id)
            people.append(Person(c.id, c.x, c.y, tuple(grid_ids), always=True))
    return people


def _area_of(session: Session, community_ids: Sequence[int]) -> shapely.Geometry:
    """The communities' outlines as one area, prepared for many point tests."""
    area = shapely.union_all(
        session.scalars(select(Community.geom).where(one_of(Community.id, community_ids))).all()
    )
    shapely.prepare(area)
    return area


def _teams_in_scope(
    session: Session, mobilisation: Mobilisation, scope: Sequence[int], inside: shapely.Geometry
) -> set[int]:
    """Teams called: those whose unit is paired inside the scope, and those most of whose
    members live inside it (`inside`: the scope's area; volunteer teams of the
    neighbourhood)."""
    from mobilize.models import Team as TeamRow

    paired_units = set(
        session.scalars(
            select(Pairing.unit_id).where(one_of(Pairing.community_id, scope), Pairing.current())
        )
    )
    homes: dict[int, list[shapely.Point]] = defaultdict(list)
    for team_id, home in session.execute(
        select(Responder.team_id, Responder.geom)
        .join(TeamRow, TeamRow.id == Responder.team_id)
        .where(
            TeamRow.district_id == mobilisation.district_id,
            TeamRow.current(),
            Responder.current(),
            Responder.geom.is_not(None),
        )
    ).all():
        homes[team_id].append(home)
    chosen = set()
    for team_id, unit_id in session.execute(
        select(TeamRow.id, TeamRow.unit_id).where(
            TeamRow.district_id == mobilisation.district_id, TeamRow.current()
        )
    ).all():
        points = homes.get(team_id, [])
        at_home = (
            int(shapely.covers(inside, np.asarray(points, dtype=object)).sum()) if points else 0
        )
        if unit_id in paired_units or (points and at_home * 2 > len(points)):
            chosen.add(team_id)
    return chosen
