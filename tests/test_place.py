"""A scope argument narrows the caller's place, never widens it; acting on a person needs the
person to be in the caller's place; errors name only what the caller may see.

Each expectation is written here from the bundle and the roles, never read from the policy or
the scope code under test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
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
from mobilize.notify import LogNotifier
from mobilize.outbox import InProcessDispatcher
from mobilize.settings import Settings
from tests.people import Cast, cast
from tests.wartime import activated

HOLD = ("assigned", "acknowledged", "en_route", "on_site")


@dataclass
class World:
    client: TestClient
    people: Cast
    mobilisation: str
    street: dict[str, str]  # street code -> global id
    community: dict[str, str]  # community code -> global id
    street_of: dict[str, str]  # community code -> street code


@pytest.fixture
def w(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> Iterator[World]:
    mobilisation = activated(engine, small_bundle, clock)
    people = cast(engine, clock)
    with Session(engine) as session:
        streets = {s.code: to_global_id("Street", s.id) for s in session.scalars(select(Street))}
        rows = session.execute(select(Community.code, Community.id, Street.code).join(Street))
        communities, street_of = {}, {}
        for code, pk, street in rows:
            communities[code] = to_global_id("Community", pk)
            street_of[code] = street
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    app = create_app(Settings(), engine=engine, clock=clock, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield World(
            client,
            people,
            to_global_id("Mobilisation", mobilisation.id),
            streets,
            communities,
            street_of,
        )


def ask(w: World, role: str, query: str, **variables: Any) -> dict[str, Any]:
    response = w.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {w.people.token(role)}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def refused(body: dict[str, Any], code: str | None = None) -> bool:
    """No data at all: a FORBIDDEN error, or the null that `node(id:)` gives for what the
    caller cannot see; with `code`, exactly that error."""
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
    values = list((body.get("data") or {}).values())
    if code is not None and codes != {code}:
        return False
    return codes <= {"FORBIDDEN"} and values in ([], [None])


PER_PLACE = {
    "coverage": "query($m: ID!, $s: ID, $c: ID) { coverage(mobilisation: $m, street: $s, "
    "community: $c) { grids } }",
    "gridStates": "query($m: ID!, $s: ID, $c: ID) { gridStates(mobilisation: $m, street: $s, "
    "community: $c) { status } }",
    "risk": "query($m: ID!, $s: ID, $c: ID) { risk(mobilisation: $m, street: $s, "
    "community: $c, all: true) { atRisk } }",
    "stateAt": "query($m: ID!, $s: ID, $c: ID) { stateAt(mobilisation: $m, "
    'at: "2026-07-01T08:30:00+00:00", street: $s, community: $c) { seq grids { status } } }',
    "afterActionReport": "query($m: ID!, $s: ID, $c: ID) { afterActionReport(mobilisation: $m, "
    "street: $s, community: $c) { grids } }",
}


def test_a_secretary_asking_for_their_street_is_refused_and_sees_nothing_of_it(w: World) -> None:
    own_street = w.street_of[w.people.community]
    for name, query in PER_PLACE.items():
        body = ask(w, "community_secretary", query, m=w.mobilisation, s=w.street[own_street])
        assert refused(body, "FORBIDDEN"), (name, body)
        assert "wider than your place" in body["errors"][0]["message"]
        # their own community, asked for by name or by default, is answered
        for asked in ({"c": w.community[w.people.community]}, {}):
            body = ask(w, "community_secretary", query, m=w.mobilisation, **asked)
            assert "errors" not in body and body["data"][name] is not None, (name, asked, body)


def test_a_scope_argument_narrows_within_the_place_and_never_leaves_it(w: World) -> None:
    mine = w.people.street
    theirs = w.people.other_street
    inside = next(c for c, s in sorted(w.street_of.items()) if s == mine)
    outside = next(c for c, s in sorted(w.street_of.items()) if s == theirs)
    for name, query in PER_PLACE.items():
        # narrower than the caller's place: answered
        for role, args in (
            ("street_commander", {"c": w.community[inside]}),
            ("district_commander", {"s": w.street[theirs]}),
            ("reviewer", {"c": w.community[outside]}),
        ):
            body = ask(w, role, query, m=w.mobilisation, **args)
            assert "errors" not in body and body["data"][name] is not None, (name, role, body)
        # beside or above it: refused, no data
        for role, args in (
            ("street_commander", {"s": w.street[theirs]}),
            ("street_commander", {"c": w.community[outside]}),
            ("community_secretary", {"c": w.community[next(
                c for c in sorted(w.street_of) if c != w.people.community)]}),
        ):  # fmt: skip
            body = ask(w, role, query, m=w.mobilisation, **args)
            assert refused(body), (name, role, args, body)


def test_coverage_of_a_narrower_place_counts_only_its_grids(w: World, small_bundle: Bundle) -> None:
    general = {g.code: g.parent for g in small_bundle.grids if g.level == "general"}
    micro_in = {c: 0 for c in w.street_of}
    for g in small_bundle.grids:
        if g.level == "micro":
            micro_in[general[g.parent]] += 1
    street_total = sum(n for c, n in micro_in.items() if w.street_of[c] == w.people.street)
    got = ask(w, "street_commander", PER_PLACE["coverage"], m=w.mobilisation)
    assert got["data"]["coverage"]["grids"] == street_total
    got = ask(
        w, "street_commander", PER_PLACE["coverage"], m=w.mobilisation,
        c=w.community[w.people.community],
    )  # fmt: skip
    assert got["data"]["coverage"]["grids"] == micro_in[w.people.community]


def test_a_secretary_subscribing_to_their_street_gets_one_error_and_no_coverage(w: World) -> None:
    own_street = w.street_of[w.people.community]
    document = """subscription($m: ID!, $s: ID) { coverageChanged(mobilisation: $m,
        street: $s) { grids } }"""
    with w.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json(
            {
                "type": "connection_init",
                "payload": {"Authorization": f"Bearer {w.people.community_secretary}"},
            }
        )
        assert ws.receive_json()["type"] == "connection_ack"
        variables = {"m": w.mobilisation, "s": w.street[own_street]}
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": document, "variables": variables}}
        )
        message = ws.receive_json()
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")


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
    w: World, engine: Engine
) -> None:
    person, grid = _cross_street_cadre(engine, w.people.street)
    body = ask(w, "street_commander", MARK, r=to_global_id("Responder", person))
    result = body["data"]["markUnavailable"]
    assert result["__typename"] in ("ForbiddenError", "NotFoundError"), body
    assert str(grid) not in result["message"]
    assert _holds(engine, person) == [grid]
    with Session(engine) as session:
        assert session.get(Responder, person).available  # type: ignore[union-attr]
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


# -- every scope argument of every per-place query, for every role ----------------------------

ROLES = [
    "admin",
    "district_commander",
    "reviewer",
    "street_commander",
    "other_street_commander",
    "community_secretary",
    "responder",
]


def places_of(w: World) -> dict[str, set[str]]:
    """Each role's place as the communities it covers, written from who the cast are (never
    from the scope code under test)."""
    every = set(w.street_of)
    return {
        "admin": every,
        "district_commander": every,
        "reviewer": every,
        "street_commander": {c for c, s in w.street_of.items() if s == w.people.street},
        "other_street_commander": {c for c, s in w.street_of.items() if s == w.people.other_street},
        "community_secretary": {w.people.community},
        "responder": set(),
    }


def test_every_scope_argument_of_every_query_answers_inside_the_place_only(w: World) -> None:
    place = places_of(w)
    subscription = """subscription($m: ID!, $s: ID, $c: ID) { coverageChanged(mobilisation: $m,
        street: $s, community: $c) { grids } }"""
    asked: list[tuple[str, dict[str, str], set[str]]] = [
        ("s", {"s": w.street[s]}, {c for c, cs in w.street_of.items() if cs == s})
        for s in sorted(w.street)
    ] + [("c", {"c": w.community[c]}, {c}) for c in sorted(w.community)]
    for role in ROLES:
        for _, args, covers in asked:
            allowed = bool(place[role]) and covers <= place[role]
            for name, query in PER_PLACE.items():
                body = ask(w, role, query, m=w.mobilisation, **args)
                if allowed:
                    assert "errors" not in body and body["data"][name] is not None, (
                        name, role, covers, body)  # fmt: skip
                else:
                    assert refused(body), (name, role, covers, body)
            frame = first_frame(w, role, subscription, {"m": w.mobilisation, **args})
            assert (frame["type"] == "next") is allowed, (role, covers, frame)
            if not allowed:
                codes = {e["extensions"]["code"] for e in frame["payload"]}
                assert codes <= {"FORBIDDEN", "NOT_FOUND"}, frame


def first_frame(w: World, role: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    with w.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        token = w.people.token(role)
        ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        assert ws.receive_json()["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        frame: dict[str, Any] = ws.receive_json()
        return frame


def test_filter_arguments_only_narrow_what_each_role_sees(w: World, small_bundle: Bundle) -> None:
    """`communities(street:)`, `grids(community:)` and `pairings(community:)` inside a place
    count the bundle's rows there; outside it, nothing."""
    place = places_of(w)
    grids_in = {c: 0 for c in w.street_of}
    general = {g.code: g.parent for g in small_bundle.grids if g.level == "general"}
    for g in small_bundle.grids:
        grids_in[g.parent if g.level == "general" else general[g.parent]] += 1
    pairings_in = {c: 0 for c in w.street_of}
    for p in small_bundle.pairings:
        pairings_in[p.community] += 1
    for role in ROLES:
        if role == "responder":
            continue  # refused outright: the operation matrix in test_access says so
        for street in w.street:
            got = ask(w, role, "query($s: ID) { communities(street: $s) { totalCount } }",
                      s=w.street[street])["data"]["communities"]["totalCount"]  # fmt: skip
            mine = {c for c, s in w.street_of.items() if s == street} & place[role]
            assert got == len(mine), (role, street)
        for community, gid in w.community.items():
            inside = community in place[role]
            got = ask(w, role, "query($c: ID) { grids(community: $c) { totalCount } }",
                      c=gid)["data"]["grids"]["totalCount"]  # fmt: skip
            assert got == (grids_in[community] if inside else 0), (role, community)
            got = ask(w, role, "query($c: ID) { pairings(community: $c) { totalCount } }",
                      c=gid)["data"]["pairings"]["totalCount"]  # fmt: skip
            assert got == (pairings_in[community] if inside else 0), (role, community)


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
        before = session.scalar(select(func.count()).select_from(Task))
    result = ask(w, "community_secretary", query, m=w.mobilisation, s=own_street)
    assert result["data"]["dispatchTask"]["__typename"] == "ForbiddenError", result
    assert "wider than your place" in result["data"]["dispatchTask"]["message"]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Task)) == before
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


def test_a_streets_report_keeps_the_districts_figures_out_of_its_timeline(w: World) -> None:
    query = """query($m: ID!) { afterActionReport(mobilisation: $m) {
        timeline { kind payload } } }"""
    whole = ask(w, "district_commander", query, m=w.mobilisation)["data"]["afterActionReport"]
    activated = [t for t in whole["timeline"] if t["kind"] == "mobilisation.activated"]
    assert activated and "figures" in activated[0]["payload"]
    mine = ask(w, "street_commander", query, m=w.mobilisation)["data"]["afterActionReport"]
    activated = [t for t in mine["timeline"] if t["kind"] == "mobilisation.activated"]
    assert activated and set(activated[0]["payload"]) <= {
        "kind", "title", "scope", "t0", "deadline", "rule"}  # fmt: skip
