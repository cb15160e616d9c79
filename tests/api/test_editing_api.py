"""Editing the district through the API: by the people who own the data, within their place,
checked by the importer's rules, each edit an event, nothing deleted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from geo import geometry_to_geojson
from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.models import Event, Grid, Household, Responder, Role, Unit
from tests.people import make_user
from tests.wartime import activated

HOUSEHOLD = """mutation($h: ID!, $tags: [HouseholdTag!], $size: Int, $address: String) {
  editHousehold(household: $h, tags: $tags, size: $size, address: $address) {
    __typename
    ... on Household { code size tags address }
    ... on Error { message }
    ... on ValidationError { field }
  } }"""
ADD = """mutation($code: String!, $person: PersonInput!) {
  addResponder(code: $code, person: $person) {
    __typename
    ... on Responder { code phone kind homeGrid { code } }
    ... on Error { message }
    ... on ValidationError { field }
  } }"""
REDRAW = """mutation($grids: [GridShapeInput!]!) {
  redrawMicroGrids(grids: $grids) {
    __typename
    ... on RedrawnGrids { grids { code householdCount } movedHouseholds movedBuildings warnings }
    ... on Error { message }
    ... on ValidationError { field }
  } }"""


@pytest.fixture
def app(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        yield client


def call(client: TestClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    body = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert "errors" not in body, body["errors"]
    return next(iter(body["data"].values()))


def ids(engine: Engine, model: Any) -> dict[str, int]:
    with Session(engine) as session:
        return dict(session.execute(select(model.code, model.id)).all())


def events(engine: Engine, kind: str) -> list[dict[str, Any]]:
    with Session(engine) as session:
        return [e.payload for e in session.scalars(select(Event).where(Event.kind == kind))]


def gid(type_name: str, pk: int) -> str:
    return to_global_id(type_name, pk)


def test_a_secretary_keeps_their_communitys_households_and_no_others(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    community = tiny_bundle.communities[0].code
    secretary = make_user(engine, clock, Role.COMMUNITY_SECRETARY, community)
    mine = {g.code for g in tiny_bundle.grids if g.parent == community}
    mine |= {g.code for g in tiny_bundle.grids if g.parent in mine}
    h = tiny_bundle.households
    inside = next(i for i, g in enumerate(h.micro_grid) if g in mine)
    outside = next(i for i, g in enumerate(h.micro_grid) if g not in mine)
    household = ids(engine, Household)
    size = int(h.size[inside]) + 1
    done = call(
        app,
        secretary,
        HOUSEHOLD,
        h=gid("Household", household[h.code[inside]]),
        tags=["ELDERLY", "HARDSHIP"],
        size=size,
        address="桂湖路1号",
    )
    assert done == {
        "__typename": "Household",
        "code": h.code[inside],
        "size": size,
        "tags": ["ELDERLY", "HARDSHIP"],
        "address": "桂湖路1号",
    }
    [edited] = events(engine, "household.edited")
    assert edited["code"] == h.code[inside] and edited["size"] == [size - 1, size]
    assert edited["tags"][1] == ["elderly", "hardship"]
    # Another community's household: not theirs to see, so not found.
    other = call(app, secretary, HOUSEHOLD, h=gid("Household", household[h.code[outside]]), size=9)
    assert other["__typename"] == "NotFoundError"
    # The importer's rules, with the field named; nothing changes.
    for variables, field in (({"size": -1}, "size"), ({"address": "长" * 301}, "address")):
        refused = call(
            app, secretary, HOUSEHOLD, h=gid("Household", household[h.code[inside]]), **variables
        )
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
    with Session(engine) as session:
        row = session.get_one(Household, household[h.code[inside]])
        assert (row.size, row.address) == (size, "桂湖路1号")
    assert len(events(engine, "household.edited")) == 1


def test_people_are_enrolled_changed_and_retired_by_the_importers_rules(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    community = tiny_bundle.communities[0].code
    secretary = make_user(engine, clock, Role.COMMUNITY_SECRETARY, community)
    general = next(g.code for g in tiny_bundle.grids if g.parent == community)
    micro = next(g.code for g in tiny_bundle.grids if g.parent == general)
    elsewhere = next(
        g.code for g in tiny_bundle.grids if g.level == "micro" and not g.code.startswith(community)
    )
    grid = ids(engine, Grid)
    person = {"name": "王芳", "phone": "13800001234", "kind": "MICRO_GRID_MEMBER"}
    added = call(
        app, secretary, ADD, code="R-V1", person={**person, "homeGrid": gid("Grid", grid[micro])}
    )
    assert added == {
        "__typename": "Responder",
        "code": "R-V1",
        "phone": "13800001234",
        "kind": "MICRO_GRID_MEMBER",
        "homeGrid": {"code": micro},
    }
    # The bundle's rules, word for word, naming the field.
    taken = tiny_bundle.responders[0]
    fresh = {**person, "phone": "13800004321"}
    for code, given, field, message in (
        ("R-V1", {**person, "homeGrid": gid("Grid", grid[micro])}, "code", "already used"),
        (
            "R-V6",
            {**person, "phone": taken.phone, "homeGrid": gid("Grid", grid[micro])},
            "phone",
            f"is {taken.name}'s already ({taken.code})",
        ),
        ("R-V2", fresh, "homeGrid", "a micro_grid_member needs their micro grid"),
        ("R-V3", {**fresh, "kind": "SUNK_CADRE"}, "unit", "a sunk cadre needs the unit"),
        (
            "R-V4",
            {**person, "phone": "call me", "homeGrid": gid("Grid", grid[micro])},
            "phone",
            "is not a phone number",
        ),
    ):
        refused = call(app, secretary, ADD, code=code, person=given)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
        assert message in refused["message"]
    # Someone who would belong to another community: not the secretary's to enrol.
    foreign = call(
        app,
        secretary,
        ADD,
        code="R-V5",
        person={**fresh, "homeGrid": gid("Grid", grid[elsewhere])},
    )
    assert foreign["__typename"] in ("ForbiddenError", "NotFoundError")
    people = ids(engine, Responder)
    assert "R-V2" not in people and "R-V5" not in people

    changed = call(
        app,
        secretary,
        """mutation($r: ID!, $person: PersonInput!) { editResponder(responder: $r, person: $person)
        { __typename ... on Responder { phone } } }""",
        r=gid("Responder", people["R-V1"]),
        person={**person, "phone": "13800005678", "homeGrid": gid("Grid", grid[micro])},
    )
    assert changed == {"__typename": "Responder", "phone": "13800005678"}
    retired = call(
        app,
        secretary,
        """mutation($r: ID!) { retireResponder(responder: $r, reason: "搬走了")
        { __typename } }""",
        r=gid("Responder", people["R-V1"]),
    )
    assert retired == {"__typename": "Responder"}
    with Session(engine) as session:
        row = session.get_one(Responder, people["R-V1"])
        assert row.retired_at == clock.now() and row.phone == "13800005678"  # kept
    assert [e["phone"] for e in events(engine, "responder.edited")] == [
        ["13800001234", "13800005678"]
    ]
    assert [e["reason"] for e in events(engine, "responder.retired")] == ["搬走了"]


def test_pairings_and_quotas_are_the_district_commanders(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    street = make_user(engine, clock, Role.STREET_COMMANDER, tiny_bundle.streets[0].code)
    district = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    pairing = tiny_bundle.pairings[0]
    unit = ids(engine, Unit)[pairing.unit]
    from mobilize.models import Community

    community = ids(engine, Community)[pairing.community]
    query = """mutation($u: ID!, $c: ID!, $q: Int!) {
      setPairing(unit: $u, community: $c, wartimeQuota: $q) {
        __typename ... on Pairing { wartimeQuota } ... on ValidationError { field } } }"""
    variables = {"u": gid("Unit", unit), "c": gid("Community", community)}
    body = app.post(
        "/graphql",
        json={"query": query, "variables": {**variables, "q": 9}},
        headers={"Authorization": f"Bearer {street}"},
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert call(app, district, query, **variables, q=9) == {
        "__typename": "Pairing",
        "wartimeQuota": 9,
    }
    assert call(app, district, query, **variables, q=-1) == {
        "__typename": "ValidationError",
        "field": "wartimeQuota",
    }
    [changed] = events(engine, "pairing.edited")
    assert changed["wartime_quota"] == [pairing.wartime_quota, 9]


def _siblings(bundle: Bundle) -> tuple[Any, Any]:
    micro = [g for g in bundle.grids if g.level == "micro"]
    a = micro[0]
    b = next(g for g in micro[1:] if g.parent == a.parent)
    return a, b


def test_two_micro_grids_swap_their_polygons_and_their_households_follow(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    commander = make_user(engine, clock, Role.STREET_COMMANDER, tiny_bundle.streets[0].code)
    a, b = _siblings(tiny_bundle)
    grid = ids(engine, Grid)
    in_a = sorted(
        c
        for c, g in zip(tiny_bundle.households.code, tiny_bundle.households.micro_grid, strict=True)
        if g == a.code
    )
    in_b = sorted(
        c
        for c, g in zip(tiny_bundle.households.code, tiny_bundle.households.micro_grid, strict=True)
        if g == b.code
    )
    done = call(
        app,
        commander,
        REDRAW,
        grids=[
            {"grid": gid("Grid", grid[a.code]), "geometry": geometry_to_geojson(b.geom)},
            {"grid": gid("Grid", grid[b.code]), "geometry": geometry_to_geojson(a.geom)},
        ],
    )
    assert done["__typename"] == "RedrawnGrids" and done["warnings"] == []
    assert done["movedHouseholds"] == sorted(in_a + in_b)
    assert {g["code"]: g["householdCount"] for g in done["grids"]} == {
        a.code: len(in_b),
        b.code: len(in_a),
    }
    with Session(engine) as session:
        now_in_a = session.scalars(
            select(Household.code).where(Household.micro_grid_id == grid[a.code])
        ).all()
    assert sorted(now_in_a) == in_b
    [event] = events(engine, "grid.redrawn")
    assert event["grids"] == [a.code, b.code] and len(event["moved_households"]) == len(in_a + in_b)


def test_a_redraw_is_checked_as_an_import_is_and_waits_for_the_stand_down(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    a, b = _siblings(tiny_bundle)
    grid = ids(engine, Grid)
    parent = next(g for g in tiny_bundle.grids if g.code == a.parent)

    def redraw(shape: shapely.Geometry) -> dict[str, Any]:
        return call(
            app,
            commander,
            REDRAW,
            grids=[{"grid": gid("Grid", grid[a.code]), "geometry": geometry_to_geojson(shape)}],
        )

    overlapping = redraw(shapely.union_all([a.geom, b.geom]))
    assert overlapping["field"] == "grids[0].geometry"
    assert f"{a.code} overlaps {b.code}" in overlapping["message"]
    too_big = redraw(shapely.affinity.scale(parent.geom, 1.5, 1.5))
    assert f"outside general grid {parent.code}" in too_big["message"]
    shrunk = redraw(shapely.affinity.scale(a.geom, 0.05, 0.05))
    assert "would lie in no micro-grid" in shrunk["message"]
    with Session(engine) as session:
        assert session.get_one(Grid, grid[a.code]).geom.equals(a.geom)  # nothing changed
    assert events(engine, "grid.redrawn") == []


def test_a_redraw_in_a_live_area_is_refused_naming_the_mobilisation(
    engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    m = activated(engine, tiny_bundle, clock)
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    a, b = _siblings(tiny_bundle)
    grid = ids(engine, Grid)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        refused = call(
            client,
            commander,
            REDRAW,
            grids=[
                {"grid": gid("Grid", grid[a.code]), "geometry": geometry_to_geojson(b.geom)},
                {"grid": gid("Grid", grid[b.code]), "geometry": geometry_to_geojson(a.geom)},
            ],
        )
    assert refused["__typename"] == "InWartimeError"
    assert f"Mobilisation {m.id}" in refused["message"]
