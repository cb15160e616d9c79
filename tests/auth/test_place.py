"""Acting on a person needs the person to be in the caller's place; errors name only what
the caller may see; what is changed on behalf of one place tells nothing of another. (What
each role may *ask about* is in test_place_reading.py.)

Each expectation is written here from the bundle and the roles, never read from the policy or
the scope code under test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.models import (
    Assignment,
    Community,
    Grid,
    Pairing,
    Responder,
    Street,
    Task,
)
from mobilize.peacetime.availability import is_away
from tests.places import World, ask, world_in

HOLD = ("assigned", "acknowledged", "en_route", "on_site")


@pytest.fixture
def w(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> Iterator[World]:
    yield from world_in(engine, small_bundle, clock)


# -- acting on a person ---------------------------------------------------------------------


def _cross_street_cadre(engine: Engine, street: str) -> tuple[int, int]:
    """(responder, their grid): someone holding a grid outside `street` whose unit is also
    paired with a community of `street`: visible to that street's commander, not theirs."""
    with Session(engine) as session:
        paired_here = (
            select(Pairing.unit_id).join(Community).join(Street).where(Street.code == street)
        )
        row = session.execute(
            select(Responder.id, Assignment.grid_id)
            .join(Assignment, Assignment.responder_id == Responder.id)
            .join(Community, Community.id == Assignment.community_id)
            .join(Street, Street.id == Community.street_id)
            .where(
                Responder.unit_id.in_(paired_here),
                Street.code != street,
                Assignment.status.in_(HOLD),
            )
            .order_by(Responder.id)
            .limit(1)
        ).one_or_none()
    assert row is not None, "the test district needs a unit paired across both streets"
    assert row[1] is not None  # they hold a grid
    return row[0], row[1]


def _holds(engine: Engine, responder_id: int) -> list[int]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Assignment.grid_id).where(
                    Assignment.responder_id == responder_id, Assignment.status.in_(HOLD)
                )
            )
        )


MARK = """mutation($r: ID!) { markUnavailable(responder: $r, reason: "病假 sick") {
  __typename ... on Error { message } } }"""


def test_a_street_commander_cannot_release_someone_working_in_another_street(
    w: World, engine: Engine, clock: ManualClock
) -> None:
    person, grid = _cross_street_cadre(engine, w.people.street)
    body = ask(w, "street_commander", MARK, r=to_global_id("Responder", person))
    result = body["data"]["markUnavailable"]
    assert result["__typename"] in ("ForbiddenError", "NotFoundError"), body
    assert str(grid) not in result["message"]
    assert _holds(engine, person) == [grid]
    with Session(engine) as session:
        assert not is_away(session, person, clock.now())
    # the commander of the street they work in may
    body = ask(w, "other_street_commander", MARK, r=to_global_id("Responder", person))
    assert body["data"]["markUnavailable"]["__typename"] == "Responder", body
    assert _holds(engine, person) == []


def test_a_street_commander_cannot_give_a_task_to_someone_working_in_another_street(
    w: World, engine: Engine
) -> None:
    person, _ = _cross_street_cadre(engine, w.people.street)
    with Session(engine) as session:
        task = session.scalars(
            select(Task.id)
            .join(Community, Community.id == Task.community_id)
            .join(Street)
            .where(Street.code == w.people.street)
            .order_by(Task.id)
        ).first()
        mine = session.scalars(
            select(Assignment.responder_id)
            .join(Community, Community.id == Assignment.community_id)
            .join(Street)
            .where(Street.code == w.people.street, Assignment.status.in_(HOLD))
            .order_by(Assignment.responder_id)
        ).first()
    assert task is not None and mine is not None
    query = """mutation($t: ID!, $r: [ID!]!) { reassignTask(task: $t, responders: $r) {
      __typename ... on Error { message } } }"""
    body = ask(
        w, "street_commander", query, t=to_global_id("Task", task),
        r=[to_global_id("Responder", person)],
    )  # fmt: skip
    assert body["data"]["reassignTask"]["__typename"] != "Task", body
    body = ask(
        w, "street_commander", query, t=to_global_id("Task", task),
        r=[to_global_id("Responder", mine)],
    )  # fmt: skip
    assert body["data"]["reassignTask"]["__typename"] == "Task", body


FIX = """mutation($m: ID!, $g: ID!, $r: ID!, $f: ID) {
  acceptRiskFix(mobilisation: $m, grid: $g, responder: $r, fromGrid: $f) {
    __typename ... on Error { message } } }"""


def test_a_risk_fix_error_never_says_where_someone_outside_your_place_is(
    w: World, engine: Engine
) -> None:
    person, their_grid = _cross_street_cadre(engine, w.people.street)
    with Session(engine) as session:
        my_grid = session.scalars(
            select(Grid.id)
            .join(Community)
            .join(Street)
            .where(Street.code == w.people.street, Grid.level == "micro")
            .order_by(Grid.id)
        ).first()
        nobody = (session.scalar(select(Responder.id).order_by(Responder.id.desc())) or 0) + 1000
    assert my_grid is not None
    answers = {}
    for who in (person, nobody):
        body = ask(
            w, "street_commander", FIX, m=w.mobilisation, g=to_global_id("Grid", my_grid),
            r=to_global_id("Responder", who), f=to_global_id("Grid", my_grid),
        )  # fmt: skip
        result = body["data"]["acceptRiskFix"]
        assert result["__typename"] != "Assignment", body
        assert str(their_grid) not in result["message"]
        answers[who] = (result["__typename"], result["message"].replace(str(who), "N"))
    # someone elsewhere and someone who does not exist get the same answer
    assert answers[person] == answers[nobody]
    assert _holds(engine, person) == [their_grid]


def test_a_street_commanders_suggested_fixes_are_people_of_their_street_and_can_be_accepted(
    w: World, engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    """Two and a half hours in, nobody answered: every suggested person either works in the
    commander's street now or, free, belongs to it (home grid there or, with none, a unit
    paired there), so accepting any suggestion is never refused as out of place."""
    from datetime import timedelta

    from mobilize.coverage import risk
    from tests.wartime import check_in_at_centre, street_commander

    with Session(engine) as session:  # half the grids are staffed: they can spare extras
        answering = session.scalars(
            select(Assignment).where(Assignment.status == "assigned", Assignment.grid_id % 2 == 0)
        ).all()
    for a in answering:
        check_in_at_centre(engine, a, clock)
    clock.advance(timedelta(minutes=150))
    street = w.people.street
    general = {g.code: g.parent for g in small_bundle.grids if g.level == "general"}
    street_of_grid = {
        g.code: w.street_of[general[g.parent]] for g in small_bundle.grids if g.level == "micro"
    }
    paired_streets: dict[str, set[str]] = {}
    for p in small_bundle.pairings:
        paired_streets.setdefault(p.unit, set()).add(w.street_of[p.community])
    record = {r.code: r for r in small_bundle.responders}
    commander = street_commander(engine, street)
    with Session(engine) as session:
        _, risks = risk.risk_for(
            session, actor=commander, mobilisation_id=int(mobilisation_pk(w)), now=clock.now(),
        )  # fmt: skip
        codes = dict(session.execute(select(Responder.id, Responder.code)).all())
        grid_codes = dict(session.execute(select(Grid.id, Grid.code)).all())
    suggestions = [r.suggestion for r in risks if r.suggestion is not None]
    assert suggestions, "the scenario should leave grids at risk with fixes"
    for fix in suggestions:
        if fix.from_grid_id is not None:
            assert street_of_grid[grid_codes[fix.from_grid_id]] == street
            continue
        person = record[codes[fix.responder_id]]
        if person.home_grid is not None:
            assert street_of_grid[person.home_grid] == street, person
        else:
            assert person.unit is not None and street in paired_streets[person.unit], person
    for r in risks:
        if r.suggestion is None:
            continue
        source = r.suggestion.from_grid_id
        body = ask(
            w, "street_commander", FIX, m=w.mobilisation, g=to_global_id("Grid", r.grid_id),
            r=to_global_id("Responder", r.suggestion.responder_id),
            f=to_global_id("Grid", source) if source else None,
        )  # fmt: skip
        assert body["data"]["acceptRiskFix"]["__typename"] == "Assignment", body


def mobilisation_pk(w: World) -> int:
    import base64

    return int(base64.urlsafe_b64decode(w.mobilisation).decode().split(":")[1])


def test_dispatching_to_a_street_wider_than_your_place_is_refused(w: World, engine: Engine) -> None:
    query = """mutation($m: ID!, $s: ID!) { dispatchTask(mobilisation: $m, kind: PUBLICITY,
      area: {everyMicroGridOfStreets: [$s]}) { __typename ... on DispatchedTasks { count }
      ... on Error { message } } }"""
    own_street = w.street[w.street_of[w.people.community]]
    with Session(engine) as session:
        before = session.execute(select(func.count()).select_from(Task)).scalar_one()
    result = ask(w, "community_secretary", query, m=w.mobilisation, s=own_street)
    assert result["data"]["dispatchTask"]["__typename"] == "ForbiddenError", result
    assert "wider than your place" in result["data"]["dispatchTask"]["message"]
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(Task)).scalar_one() == before
    # the street's commander may, every micro-grid of it
    result = ask(w, "street_commander", query, m=w.mobilisation, s=own_street)
    assert result["data"]["dispatchTask"]["count"] > 0, result


def test_the_mobilisations_own_events_tell_an_area_role_nothing_of_other_places(
    w: World, engine: Engine
) -> None:
    """The activation's figures and community list, and tasks dispatched in another street,
    are the district's: a secretary's event feed carries the title and times only."""
    other = w.street[w.people.other_street]
    dispatched = ask(
        w, "other_street_commander",
        """mutation($m: ID!, $s: ID!) { dispatchTask(mobilisation: $m, kind: PUBLICITY,
        area: {everyMicroGridOfStreets: [$s]}) { __typename } }""",
        m=w.mobilisation, s=other,
    )  # fmt: skip
    assert dispatched["data"]["dispatchTask"]["__typename"] == "DispatchedTasks"
    query = """query($m: ID!) { events(mobilisation: $m, first: 500,
        kinds: ["mobilisation.activated", "tasks.dispatched"]) { events { kind payload } } }"""

    def feed(role: str) -> list[dict[str, Any]]:
        body = ask(w, role, query, m=w.mobilisation)
        assert "errors" not in body, body
        found: list[dict[str, Any]] = body["data"]["events"]["events"]
        return found

    whole = feed("district_commander")
    assert [e["kind"] for e in whole] == ["mobilisation.activated", "tasks.dispatched"]
    assert whole[0]["payload"]["figures"]["grids"] > 0 and whole[0]["payload"]["communities"]
    mine = feed("community_secretary")
    assert [e["kind"] for e in mine] == ["mobilisation.activated"]
    assert set(mine[0]["payload"]) == {"kind", "title", "scope", "t0", "deadline", "rule"}
