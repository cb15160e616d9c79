"""Buildings, units and doors in the API: shown, searched by address, and scoped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mobilize.api.app import create_app
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.models import Role
from tests.api.test_api import gql
from tests.people import make_user


@pytest.fixture
def app(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        yield client


def signed_in(
    client: TestClient, engine: Engine, clock: ManualClock, role: Role, scope: str
) -> TestClient:
    client.headers["Authorization"] = f"Bearer {make_user(engine, clock, role, scope)}"
    return client


def test_households_are_found_by_address_and_listed_door_by_door_in_their_building(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    client = signed_in(app, engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    h = tiny_bundle.households
    wanted = "2单元50"  # every second-unit household on the fifth floor
    expected = sorted(c for c, a in zip(h.code, h.address, strict=True) if wanted in a)
    assert 0 < len(expected) < len(h)
    found = gql(
        client,
        "query($q: String) { households(search: $q, first: 500) { totalCount "
        "edges { node { code buildingUnit door address building { code name } } } } }",
        q=wanted,
    )["households"]
    assert sorted(e["node"]["code"] for e in found["edges"]) == expected
    node = found["edges"][0]["node"]
    assert node["buildingUnit"] == "2" and node["door"].startswith("5")
    assert node["building"]["name"] in node["address"]
    # A building by a piece of its address, with its leader and its doors in order.
    building = tiny_bundle.buildings[0]
    leader = next(r.code for r in tiny_bundle.responders if r.leads_building == building.code)
    listed = gql(
        client,
        "query($q: String) { buildings(search: $q) { edges { node { code floors "
        "leader { code } microGrid { code } households { buildingUnit door } } } } }",
        q=building.address,
    )["buildings"]["edges"]
    assert [e["node"]["code"] for e in listed] == [building.code]
    node = listed[0]["node"]
    assert node["leader"] == {"code": leader} and node["microGrid"]["code"] == building.micro_grid
    doors = [(int(d["buildingUnit"]), int(d["door"])) for d in node["households"]]
    assert doors == sorted(doors) and len(doors) == h.building.count(building.code)


def test_a_search_never_reaches_past_the_callers_place(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    community = tiny_bundle.communities[0]
    client = signed_in(app, engine, clock, Role.COMMUNITY_SECRETARY, community.code)
    mine = {g.code for g in tiny_bundle.grids if g.parent == community.code}
    mine |= {g.code for g in tiny_bundle.grids if g.parent in mine}
    everything = "栋"  # in every building's address
    listed = gql(
        client,
        "query($q: String) { buildings(search: $q, first: 500) { edges { node { code } } } }",
        q=everything,
    )["buildings"]["edges"]
    expected = sorted(b.code for b in tiny_bundle.buildings if b.micro_grid in mine)
    assert 0 < len(expected) < len(tiny_bundle.buildings)
    assert sorted(e["node"]["code"] for e in listed) == expected
