"""The assignment engine: an exact min-cost max-flow over sparse candidate edges.

Lexicographic goal, exact: (1) the most minimum slots filled (micro-grids with their minimum on
site), (2) the most slots filled in all, (3) the fewest people moved from where they already
are (re-solves only), (4) the least travel cost, where a trip to a minimum slot costs its
minutes squared and a trip to a work slot its minutes: the deadline is decided by the grid
staffed last, so the convex cost spreads long first trips out before it saves total minutes
(min-max in all but name; an explicit bottleneck search gave the same plan on xindu). Each
grid has a minimum and a work outlet, so a person's flow says which slot they fill. Max-flow
fixes (2); by the Mendelsohn–Dulmage theorem some maximum flow also fills the most minimum
slots, so weighting minimum slots by A, keeping by S, with A > S * people + all travel cost
and S > all travel cost, makes the cheapest maximum flow the lexicographic optimum. Teams then
go, whole, to the communities with the largest shortfall.

Pure: numbers in, numbers out, no database. The same input gives the same plan."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from ortools.graph.python import min_cost_flow
from scipy.spatial import cKDTree

from mobilize.mobilisation.rules import StaffingRule

NOBODY_IN_REACH = "nobody_within_reach"
NOT_ENOUGH_PEOPLE = "not_enough_people"


@dataclass(frozen=True)
class GridNeed:
    grid_id: int
    community_id: int
    x: float  # metres, in the district's local plane
    y: float
    open_minimum: int  # minimum slots still to fill
    open_work: int  # further slots still to fill


@dataclass(frozen=True)
class Person:
    person_id: int
    x: float
    y: float
    grids: tuple[int, ...] | None = None  # the only grids allowed; None: any within reach
    current: int | None = None  # grid the person holds now and may keep (re-solves)
    always: bool = False  # goes even with no open slot: to the nearest of `grids`, as extra
    # Grids they may also be sent to when their own do not need them (a micro-grid member's
    # neighbours in the same general grid): the optimiser offers them, the pairing list not.
    nearby: tuple[int, ...] = ()


@dataclass(frozen=True)
class Team:
    team_id: int
    members: tuple[Person, ...]


@dataclass(frozen=True)
class Placement:
    person_id: int
    grid_id: int
    role: str  # minimum | work | team | extra (beyond the grid's need)
    minutes: float
    distance_m: float
    mode: str


@dataclass
class Plan:
    placements: list[Placement] = field(default_factory=list)
    unplaced: list[int] = field(default_factory=list)  # people called but given no slot
    open_minimum: dict[int, str] = field(default_factory=dict)  # grid -> reason
    open_work: dict[int, tuple[int, str]] = field(default_factory=dict)  # grid -> (n, reason)
    solve_s: float = 0.0


def _pairs(
    people: list[Person], index: dict[int, int], gx: np.ndarray, gy: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate (person, grid position, straight-line metres) triples, vectorised: each
    person's allowed grids, or their `k` nearest when free to go anywhere or allowed many;
    a person's current grid is always among theirs."""
    persons: list[int] = []
    positions: list[int] = []
    free: list[int] = []
    for i, person in enumerate(people):
        if person.grids is None:
            free.append(i)
            continue
        allowed = [index[g] for g in (*person.grids, *person.nearby) if g in index]
        persons.extend([i] * len(allowed))
        positions.extend(allowed)
    px = np.fromiter((p.x for p in people), dtype=np.float64, count=len(people))
    py = np.fromiter((p.y for p in people), dtype=np.float64, count=len(people))
    P = np.asarray(persons, dtype=np.int64)
    G = np.asarray(positions, dtype=np.int64)
    if free and len(gx):
        take = min(k, len(gx))
        rows = np.asarray(free, dtype=np.int64)
        # A k-d tree of the grids: every free person against every grid took most of a
        # second on xindu.
        _, nearest = cKDTree(np.column_stack([gx, gy])).query(
            np.column_stack([px[rows], py[rows]]), k=take
        )
        P = np.concatenate([P, np.repeat(rows, take)])
        G = np.concatenate([G, np.asarray(nearest, dtype=np.int64).reshape(-1)])
        current = [
            (i, index[p.current])
            for i, p in enumerate(people)
            if p.grids is None and p.current in index
        ]
        if current:
            P = np.concatenate([P, np.asarray([c[0] for c in current], dtype=np.int64)])
            G = np.concatenate([G, np.asarray([c[1] for c in current], dtype=np.int64)])
    D = np.hypot(gx[G] - px[P], gy[G] - py[P]) if len(P) else np.zeros(0)
    # Keep each person's k nearest (and their current grid), once each.
    order = np.lexsort((G, D, P))
    P, G, D = P[order], G[order], D[order]
    fresh = np.ones(len(P), dtype=bool)
    fresh[1:] = (P[1:] != P[:-1]) | (G[1:] != G[:-1])
    P, G, D = P[fresh], G[fresh], D[fresh]
    starts = np.r_[0, np.flatnonzero(P[1:] != P[:-1]) + 1] if len(P) else np.zeros(0, int)
    rank = np.arange(len(P)) - np.repeat(starts, np.diff(np.r_[starts, len(P)]))
    current_at = np.full(len(people), -1, dtype=np.int64)
    for i, person in enumerate(people):
        if person.current is not None and person.current in index:
            current_at[i] = index[person.current]
    # People bound to a set of grids (their general grid, their paired community: tens of
    # grids) are offered all of it, so the restriction never hides the only way to cover a
    # grid; people free to go anywhere are offered their k nearest.
    bound = np.fromiter(
        (p.grids is not None and len(p.grids) + len(p.nearby) <= _ALL_OF_SET for p in people),
        dtype=bool,
        count=len(people),
    )
    keep = (rank < k) | (current_at[P] == G) | bound[P]
    return P[keep], G[keep], D[keep]


_ALL_OF_SET = 200


def _own_pairs(
    people: list[Person], index: dict[int, int], P: np.ndarray, G: np.ndarray
) -> np.ndarray:
    """Which pairs lead to one of the person's own grids (not one they may merely help)."""
    helping = [
        i * len(index) + index[g]
        for i, p in enumerate(people)
        for g in p.nearby
        if g in index and g not in (p.grids or ())
    ]
    if not helping:
        return np.ones(len(P), dtype=bool)
    return ~np.isin(P * len(index) + G, np.asarray(helping, dtype=np.int64))


@dataclass(frozen=True)
class FlowNetwork:
    """The min-cost flow `solve` hands to OR-Tools, with what reading its flows back needs:
    node 0 the source, then the people, then per grid a minimum node and a work node, then
    the sink. Arcs: source to each person, each offered (person, grid outlet), each outlet to
    the sink."""

    tails: np.ndarray
    heads: np.ndarray
    capacities: np.ndarray
    unit_costs: np.ndarray
    sink: int
    n_people: int
    ids: np.ndarray  # per grid position: its id, and where it lies
    index: dict[int, int]  # grid id -> position
    gx: np.ndarray
    gy: np.ndarray
    # per pair offered (sorted by person, then distance): person, grid position, metres
    P: np.ndarray
    G: np.ndarray
    D: np.ndarray
    arc_pair: np.ndarray  # the pair each person-to-outlet arc carries
    reached: np.ndarray  # grids someone could reach
    open_min: np.ndarray
    open_work: np.ndarray

    @property
    def n_arcs(self) -> int:
        return len(self.arc_pair)


def flow_network(
    grids: list[GridNeed],
    people: list[Person],
    rule: StaffingRule,
    reach_minutes: float,
    candidates: int | None = None,
) -> FlowNetwork:
    """The candidate graph of `solve`, weighted for its lexicographic goal."""
    ids = np.fromiter((g.grid_id for g in grids), dtype=np.int64, count=len(grids))
    index = {g.grid_id: i for i, g in enumerate(grids)}
    gx = np.fromiter((g.x for g in grids), dtype=np.float64, count=len(grids))
    gy = np.fromiter((g.y for g in grids), dtype=np.float64, count=len(grids))
    open_min = np.fromiter((g.open_minimum for g in grids), dtype=np.int64, count=len(grids))
    open_work = np.fromiter((g.open_work for g in grids), dtype=np.int64, count=len(grids))
    reached = np.zeros(len(grids), dtype=bool)
    n_people, n_grids = len(people), len(grids)
    P, G, D = _pairs(people, index, gx, gy, candidates or rule.candidates_per_person)
    minutes = rule.travel_minutes(D)
    # A person with one grid of their own goes there however far (they belong to it).
    only_own = np.fromiter(
        (
            index.get(p.grids[0], -1) if p.grids is not None and len(p.grids) == 1 else -1
            for p in people
        ),
        dtype=np.int64,
        count=n_people,
    )
    current_at = np.fromiter(
        (index.get(p.current, -1) if p.current is not None else -1 for p in people),
        dtype=np.int64,
        count=n_people,
    )
    keeps = current_at[P] == G
    in_reach = (minutes <= reach_minutes) | (only_own[P] == G) | keeps
    reached[G[in_reach]] = True
    ok = in_reach & (open_min[G] + open_work[G] > 0)
    P, G, D, minutes, keeps = P[ok], G[ok], D[ok], minutes[ok], keeps[ok]
    # Each pair may feed its grid's minimum outlet and its work outlet; a person's one unit of
    # flow takes one of them. A minimum slot's trip costs its square: the deadline is decided
    # by the grid staffed last, so one 60-minute first trip weighs more than six of 25.
    to_min = open_min[G] > 0
    to_work = open_work[G] > 0
    arc_pair = np.concatenate([np.flatnonzero(to_min), np.flatnonzero(to_work)])
    arc_is_min = np.arange(len(arc_pair)) < int(to_min.sum())
    arc_minutes = minutes[arc_pair]
    pair_cost = np.round(np.where(arc_is_min, arc_minutes**2, arc_minutes * 10)).astype(np.int64)
    # Lexicographic weights, as small as exactness allows (cost scaling runs faster on them):
    # keeping beats all travel, a minimum slot beats keeping everyone plus all travel.
    all_travel = int(pair_cost.max(initial=0)) * n_people + 1
    keep_weight = all_travel if keeps.any() else 0
    minimum_weight = keep_weight * n_people + all_travel
    grid_index = np.arange(n_grids, dtype=np.int64)
    min_node = 1 + n_people
    work_node = min_node + n_grids
    sink = work_node + n_grids
    n_arcs = len(arc_pair)
    return FlowNetwork(
        tails=np.concatenate(
            [
                np.zeros(n_people, dtype=np.int64),
                1 + P[arc_pair],
                min_node + grid_index,
                work_node + grid_index,
            ]
        ),
        heads=np.concatenate(
            [
                np.arange(1, 1 + n_people, dtype=np.int64),
                np.where(arc_is_min, min_node, work_node) + G[arc_pair],
                np.full(n_grids, sink),
                np.full(n_grids, sink),
            ]
        ),
        capacities=np.concatenate(
            [np.ones(n_people + n_arcs, dtype=np.int64), open_min, open_work]
        ),
        unit_costs=np.concatenate(
            [
                np.zeros(n_people, dtype=np.int64),
                pair_cost - np.where(keeps[arc_pair], keep_weight, 0),
                np.full(n_grids, -minimum_weight, dtype=np.int64),
                np.zeros(n_grids, dtype=np.int64),
            ]
        ),
        sink=sink,
        n_people=n_people,
        ids=ids,
        index=index,
        gx=gx,
        gy=gy,
        P=P,
        G=G,
        D=D,
        arc_pair=arc_pair,
        reached=reached,
        open_min=open_min,
        open_work=open_work,
    )


def solve(
    grids: list[GridNeed],
    people: list[Person],
    rule: StaffingRule,
    reach_minutes: float,
    teams: Sequence[Team] = (),
    candidates: int | None = None,
) -> Plan:
    """Fill the grids' open slots with the people given; teams after individuals.

    Each person is offered their `candidates` nearest allowed grids (the rule's number by
    default); a small re-solve offers every grid, so no slot is out of sight."""
    started = time.perf_counter()
    plan = Plan()
    net = flow_network(grids, people, rule, reach_minutes, candidates)
    P, G, D, n_people, n_arcs = net.P, net.G, net.D, net.n_people, net.n_arcs
    n_grids = len(grids)
    flows = np.zeros(len(net.tails), dtype=np.int64)
    if n_arcs:
        flow = min_cost_flow.SimpleMinCostFlow()
        arcs = flow.add_arcs_with_capacity_and_unit_cost(
            net.tails, net.heads, net.capacities, net.unit_costs
        )
        flow.set_node_supply(0, n_people)  # everyone may go; max-flow decides how many can
        flow.set_node_supply(net.sink, -n_people)
        status = flow.solve_max_flow_with_min_cost()
        if status != flow.OPTIMAL:
            raise RuntimeError(f"min-cost flow did not solve: status {status}")
        flows = flow.flows(arcs)

    ids = net.ids
    used = net.arc_pair[np.flatnonzero(flows[n_people : n_people + n_arcs] > 0)]
    filled_min = flows[n_people + n_arcs : n_people + n_arcs + n_grids].copy()
    filled_work = flows[n_people + n_arcs + n_grids :].copy()
    # Within a grid, the nearest people take its minimum slots.
    minimum_left = filled_min.copy()
    placed = np.zeros(n_people, dtype=bool)
    for arc in used[np.lexsort((D[used], G[used]))]:
        i, g = int(P[arc]), int(G[arc])
        role = "minimum" if minimum_left[g] > 0 else "work"
        minimum_left[g] -= role == "minimum"
        minutes_i, mode = rule.travel(float(D[arc]))
        plan.placements.append(
            Placement(
                people[i].person_id,
                int(ids[g]),
                role,
                round(minutes_i, 2),
                round(float(D[arc]), 1),
                mode,
            )
        )
        placed[i] = True
    # Each person's nearest own pair: their first (pairs are sorted by distance within a
    # person), found for everyone at once.
    own = np.flatnonzero(_own_pairs(people, net.index, P, G))
    person_of, first = np.unique(P[own], return_index=True)
    nearest_of = dict(zip(person_of.tolist(), own[first].tolist(), strict=True))
    for left in np.flatnonzero(~placed):
        person = people[left]
        if person.always and person.grids and int(left) in nearest_of:
            nearest = nearest_of[int(left)]
            minutes_i, mode = rule.travel(float(D[nearest]))
            plan.placements.append(
                Placement(
                    person.person_id,
                    int(ids[G[nearest]]),
                    "extra",
                    round(minutes_i, 2),
                    round(float(D[nearest]), 1),
                    mode,
                )
            )
            placed[left] = True
    plan.unplaced = [p.person_id for p, done in zip(people, placed, strict=True) if not done]
    left_min = net.open_min - filled_min
    left_work = net.open_work - filled_work
    reached = net.reached.copy()  # teams reach further grids
    _place_teams(
        plan, teams, grids, net.gx, net.gy, left_min, left_work, reached, rule, reach_minutes
    )
    return _finish(plan, ids, left_min, left_work, reached, started)


def _finish(
    plan: Plan,
    ids: np.ndarray,
    left_min: np.ndarray,
    left_work: np.ndarray,
    reached: np.ndarray,
    started: float,
) -> Plan:
    """Say why each slot left open is open; placements in person order."""
    for g in np.flatnonzero(left_min > 0):
        plan.open_minimum[int(ids[g])] = NOT_ENOUGH_PEOPLE if reached[g] else NOBODY_IN_REACH
    for g in np.flatnonzero(left_work > 0):
        reason = NOT_ENOUGH_PEOPLE if reached[g] else NOBODY_IN_REACH
        plan.open_work[int(ids[g])] = (int(left_work[g]), reason)
    plan.placements.sort(key=lambda p: p.person_id)
    plan.solve_s = time.perf_counter() - started
    return plan


def _place_teams(
    plan: Plan,
    teams: Sequence[Team],
    grids: list[GridNeed],
    gx: np.ndarray,
    gy: np.ndarray,
    left_min: np.ndarray,
    left_work: np.ndarray,
    reached: np.ndarray,
    rule: StaffingRule,
    reach_minutes: float,
) -> None:
    """Each team, largest first, to the community within its reach with the most micro-grids
    still lacking their minimum, then the largest remaining shortfall; its members take that
    community's open slots nearest to them, minimum slots first."""
    community_ids = np.fromiter((g.community_id for g in grids), dtype=np.int64, count=len(grids))
    communities, grid_community = np.unique(community_ids, return_inverse=True)
    if len(communities) == 0:
        plan.unplaced.extend(m.person_id for t in teams for m in t.members)
        return
    counts = np.bincount(grid_community, minlength=len(communities))
    cx = np.bincount(grid_community, weights=gx, minlength=len(communities)) / counts
    cy = np.bincount(grid_community, weights=gy, minlength=len(communities)) / counts
    uncovered = np.bincount(grid_community, weights=left_min, minlength=len(communities))
    shortfall = uncovered + np.bincount(
        grid_community, weights=left_work, minlength=len(communities)
    )
    for team in sorted(teams, key=lambda t: (-len(t.members), t.team_id)):
        if not team.members:
            continue
        tx = float(np.mean([m.x for m in team.members]))
        ty = float(np.mean([m.y for m in team.members]))
        distance = np.hypot(cx - tx, cy - ty)
        eligible = (shortfall > 0) & (rule.travel_minutes(distance) <= reach_minutes)
        if not eligible.any():
            plan.unplaced.extend(m.person_id for m in team.members)
            continue
        candidates = np.flatnonzero(eligible)
        order = np.lexsort(
            (
                communities[candidates],
                distance[candidates],
                -shortfall[candidates],
                -uncovered[candidates],
            )
        )
        chosen = int(candidates[order[0]])
        pool = np.flatnonzero(grid_community == chosen)
        reached[pool] = True
        for member in sorted(team.members, key=lambda m: m.person_id):
            dist = np.hypot(gx[pool] - member.x, gy[pool] - member.y)
            order = np.argsort(dist, kind="stable")
            target = next((k for k in order if left_min[pool[k]] > 0), None)
            if target is None:
                target = next((k for k in order if left_work[pool[k]] > 0), int(order[0]))
            g = int(pool[target])
            if left_min[g] > 0:
                left_min[g] -= 1
                uncovered[chosen] -= 1
                shortfall[chosen] -= 1
            elif left_work[g] > 0:
                left_work[g] -= 1
                shortfall[chosen] -= 1
            minutes, mode = rule.travel(float(dist[target]))
            plan.placements.append(
                Placement(
                    member.person_id,
                    grids[g].grid_id,
                    "team",
                    round(minutes, 2),
                    round(float(dist[target]), 1),
                    mode,
                )
            )


def solve_by_pairing(
    grids: list[GridNeed],
    people: list[Person],
    rule: StaffingRule,
    reach_minutes: float,
    teams: Sequence[Team] = (),
    candidates: int | None = None,
) -> Plan:
    """The manual practice, kept to measure what `solve` buys: nobody weighs distances.
    Whoever has grids of their own (a member's home grid, a grid worker's general grid, a
    sunk cadre's paired community) takes the first of them in the list (by grid id) with a
    minimum slot open, else a work slot, else goes to the first as an extra hand; a volunteer
    free to go anywhere goes to the nearest grid. Teams go as in `solve`."""
    del candidates  # the list decides, not the neighbourhood
    started = time.perf_counter()
    plan = Plan()
    index = {g.grid_id: i for i, g in enumerate(grids)}
    gx = np.fromiter((g.x for g in grids), dtype=np.float64, count=len(grids))
    gy = np.fromiter((g.y for g in grids), dtype=np.float64, count=len(grids))
    left_min = np.fromiter((g.open_minimum for g in grids), dtype=np.int64, count=len(grids))
    left_work = np.fromiter((g.open_work for g in grids), dtype=np.int64, count=len(grids))
    reached = np.zeros(len(grids), dtype=bool)
    for person in sorted(people, key=lambda p: p.person_id):
        if person.grids is None:
            if not len(grids):
                plan.unplaced.append(person.person_id)
                continue
            own = [int(np.argmin(np.hypot(gx - person.x, gy - person.y)))]
        else:
            own = sorted(index[g] for g in person.grids if g in index)
        if person.current is not None and person.current in index:
            own = [index[person.current]]  # a re-plan keeps people where they are
        target = next((g for g in own if left_min[g] > 0), None)
        role = "minimum"
        if target is None:
            target, role = next((g for g in own if left_work[g] > 0), None), "work"
        if target is None:
            if not own:
                plan.unplaced.append(person.person_id)
                continue
            target, role = own[0], "extra"
        if role == "minimum":
            left_min[target] -= 1
        elif role == "work":
            left_work[target] -= 1
        distance = float(np.hypot(gx[target] - person.x, gy[target] - person.y))
        minutes, mode = rule.travel(distance)
        reached[target] = True
        plan.placements.append(
            Placement(
                person.person_id, grids[target].grid_id, role, round(minutes, 2),
                round(distance, 1), mode,
            )
        )  # fmt: skip
    _place_teams(plan, teams, grids, gx, gy, left_min, left_work, reached, rule, reach_minutes)
    ids = np.fromiter((g.grid_id for g in grids), dtype=np.int64, count=len(grids))
    return _finish(plan, ids, left_min, left_work, reached, started)


PLANNERS = {"optimal": solve, "pairing": solve_by_pairing}
