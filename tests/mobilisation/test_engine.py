"""The assignment engine on hand-made problems: exact, lexicographic, stable, deterministic."""

import pytest

from mobilize.mobilisation.engine import (
    NOBODY_IN_REACH,
    NOT_ENOUGH_PEOPLE,
    GridNeed,
    Person,
    Plan,
    Team,
    solve,
    solve_by_pairing,
)
from mobilize.mobilisation.rules import StaffingRule

RULE = StaffingRule()
REACH = 165.0


def grid(gid: int, x: float, community: int = 1, minimum: int = 1, work: int = 0) -> GridNeed:
    return GridNeed(gid, community, x, 0.0, minimum, work)


def where(plan: Plan) -> dict[int, tuple[int, str]]:
    return {p.person_id: (p.grid_id, p.role) for p in plan.placements}


def test_every_grid_covered_where_greedy_nearest_would_leave_one_empty() -> None:
    # Greedy nearest-first sends A to grid 1 (100 m) and B finds grid 1 taken, grid 2 too far
    # for B alone. The optimum sends A to grid 2 so both are covered.
    grids = [grid(1, 0.0), grid(2, 3_000.0)]
    people = [Person(1, 100.0, 0.0), Person(2, 0.0, 50_000.0, grids=(1,))]
    plan = solve(grids, people, RULE, REACH)
    assert where(plan) == {1: (2, "minimum"), 2: (1, "minimum")}
    assert plan.open_minimum == {}


def test_minimum_slots_come_before_work_slots_and_travel_breaks_ties() -> None:
    grids = [grid(1, 0.0, work=2), grid(2, 2_000.0)]
    people = [Person(1, 10.0, 0.0), Person(2, 20.0, 0.0)]
    plan = solve(grids, people, RULE, REACH)
    roles = sorted(role for _, role in where(plan).values())
    assert roles == ["minimum", "minimum"]  # both grids covered before any work slot
    assert where(plan)[1] == (1, "minimum")  # the nearer person takes the nearer grid


def test_unfilled_slots_say_why() -> None:
    far = 200_000.0  # hours away by any mode
    grids = [grid(1, 0.0, work=1), grid(2, far)]
    plan = solve(grids, [Person(1, 0.0, 0.0)], RULE, REACH)
    assert plan.open_minimum == {2: NOBODY_IN_REACH}
    assert plan.open_work == {1: (1, NOT_ENOUGH_PEOPLE)}


def test_restricted_people_stay_in_their_grids_and_go_as_extra_when_full() -> None:
    grids = [grid(1, 0.0), grid(2, 500.0)]
    people = [
        Person(1, 0.0, 0.0, grids=(1,), always=True),
        Person(2, 0.0, 0.0, grids=(1,), always=True),
    ]
    plan = solve(grids, people, RULE, REACH)
    assert sorted(where(plan).values()) == [(1, "extra"), (1, "minimum")]
    assert plan.open_minimum == {2: NOBODY_IN_REACH}  # nobody called may go there


def test_re_solves_keep_people_where_they_are_unless_a_minimum_needs_them() -> None:
    grids = [grid(1, 0.0, work=1), grid(2, 800.0, minimum=0, work=1)]
    # Person 1 holds a work slot in grid 2; moving them to grid 1 would save travel but the
    # keep weight wins because coverage is not at stake.
    people = [Person(1, 0.0, 0.0, current=2), Person(2, 10.0, 0.0)]
    assert where(solve(grids, people, RULE, REACH))[1] == (2, "work")
    # Now grid 1's minimum is open and only person 1 can reach it in time: they move.
    grids = [grid(1, 0.0), grid(2, 800.0, minimum=0, work=1)]
    people = [Person(1, 0.0, 0.0, current=2), Person(2, 900.0, 0.0, grids=(2,))]
    assert where(solve(grids, people, RULE, REACH))[1] == (1, "minimum")


def test_teams_go_whole_to_the_community_with_the_largest_shortfall() -> None:
    grids = [
        grid(1, 0.0, community=10, work=1),
        grid(2, 100.0, community=10),
        grid(3, 900.0, community=20, work=3),
        grid(4, 950.0, community=20, work=3),
    ]
    team = Team(7, tuple(Person(100 + i, 0.0, 0.0) for i in range(3)))
    plan = solve(grids, [], RULE, REACH, teams=[team])
    placed = where(plan)
    assert {placed[100 + i][0] for i in range(3)} <= {3, 4}  # community 20: 8 open vs 3
    assert all(role == "team" for _, role in placed.values())


def test_the_same_problem_gives_the_same_plan() -> None:
    grids = [grid(i, i * 300.0, community=i % 3, work=1) for i in range(30)]
    people = [Person(i, (i * 7919) % 9000 * 1.0, 0.0) for i in range(40)]
    first = solve(grids, people, RULE, REACH)
    second = solve(grids, people, RULE, REACH)
    assert first.placements == second.placements


def test_the_pairing_baseline_follows_the_list_not_the_map() -> None:
    """The manual practice: a paired cadre takes the first grid of their community's list
    with an open slot, however far; a member goes home; a free volunteer to the nearest grid.
    The optimiser, on the same problem, sends each to the near grid."""
    grids = [grid(1, 9_000.0), grid(2, 0.0), grid(3, 100.0)]
    people = [
        Person(1, 50.0, 0.0, grids=(3, 2, 1)),  # a cadre of a unit paired with all three
        Person(2, 0.0, 0.0, grids=(3,), always=True),  # grid 3's member
        Person(3, 9_100.0, 0.0),  # a volunteer who lives by grid 1
    ]
    plan = solve_by_pairing(grids, people, RULE, REACH)
    assert where(plan) == {1: (1, "minimum"), 2: (3, "minimum"), 3: (1, "extra")}
    assert plan.open_minimum == {2: NOBODY_IN_REACH}  # the grid next to the cadre: empty
    assert where(solve(grids, people, RULE, REACH))[1] == (2, "minimum")


def test_the_grid_staffed_last_comes_before_total_travel() -> None:
    """Two grids 7 km apart, two people. Least total travel sends the one beside grid 1 there
    (0.9 min) and the other to grid 2 (39.9 min): 40.8 minutes, the last grid at 39.9. Each to
    the other's grid costs 21.7 + 25.0 = 46.7 minutes, and every grid is staffed by 25.0: the
    deadline is decided by the grid staffed last."""
    grids = [grid(1, 0.0), grid(2, 7_000.0)]
    people = [
        Person(1, 50.0, 0.0),  # 50 m from grid 1, 6,950 m from grid 2
        Person(2, -3_631.0, 7_127.0),  # 8.0 km from grid 1, 12.8 km from grid 2
    ]
    plan = solve(grids, people, RULE, REACH)
    assert where(plan) == {1: (2, "minimum"), 2: (1, "minimum")}
    # Driving beyond 5 km at 25 km/h, roads 1.3 x the straight line: 8 km is 24.96 min.
    assert max(p.minutes for p in plan.placements) == pytest.approx(24.96, abs=0.01)


def test_a_member_helps_a_neighbour_only_when_their_own_grid_is_staffed() -> None:
    grids = [grid(1, 0.0), grid(2, 600.0), grid(3, 1_200.0)]
    people = [
        # Two members of grid 1; grids 2 and 3 are their general grid's others.
        Person(1, 0.0, 0.0, grids=(1,), always=True, nearby=(2, 3)),
        Person(2, 10.0, 0.0, grids=(1,), always=True, nearby=(2, 3)),
    ]
    plan = solve(grids, people, RULE, REACH)
    # One stays home (grid 1 keeps its minimum); the other goes to the nearer neighbour.
    assert sorted(where(plan).values()) == [(1, "minimum"), (2, "minimum")]
    assert plan.open_minimum == {3: NOT_ENOUGH_PEOPLE}
    # The pairing practice knows no neighbours: both stay home.
    assert sorted(where(solve_by_pairing(grids, people, RULE, REACH)).values()) == [
        (1, "extra"),
        (1, "minimum"),
    ]
