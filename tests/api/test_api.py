"""The read API: Relay IDs and connections, GeoJSON, DataLoaders without N+1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mobilize.api.app import create_app
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.models import Role
from tests.people import make_user
from tests.statements import statements


@pytest.fixture
def client(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> Iterator[TestClient]:
    """A client signed in as a district commander: the whole district in view."""
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=clock)
    token = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    with TestClient(create_app(engine=engine, clock=clock)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {token}"
        yield test_client


def gql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


def gql_errors(client: TestClient, query: str, **variables: Any) -> list[str]:
    body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    return [e["message"] for e in body.get("errors", [])]


def test_district_tree_with_geometry(client: TestClient, small_bundle: Bundle) -> None:
    data = gql(
        client,
        """{ district { code name sourceCrs importedAt geometry
        streets { code communities { code kind grids { code level householdCount } } } } }""",
    )
    district = data["district"]
    assert district["code"] == small_bundle.district_code
    assert district["importedAt"].endswith("+00:00")  # timezone-aware, UTC
    assert district["geometry"]["type"] == "MultiPolygon"
    ring = district["geometry"]["coordinates"][0][0]
    assert shapely.LinearRing(ring).is_ccw  # RFC 7946 winding
    streets = district["streets"]
    assert [s["code"] for s in streets] == [s.code for s in small_bundle.streets]
    general_codes = {g["code"] for s in streets for c in s["communities"] for g in c["grids"]}
    assert general_codes == {g.code for g in small_bundle.grids if g.level == "general"}


def test_grids_page_through_with_cursors(client: TestClient, small_bundle: Bundle) -> None:
    query = """query($after: String) { grids(level: MICRO, first: 100, after: $after) {
        totalCount pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { code } } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = gql(client, query, after=after)["grids"]
        seen += [e["node"]["code"] for e in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    micro = [g.code for g in small_bundle.grids if g.level == "micro"]
    assert page["totalCount"] == len(micro)
    assert sorted(seen) == sorted(micro) and len(seen) == len(set(seen))


def test_node_round_trip_and_bad_ids(client: TestClient) -> None:
    grid = gql(client, "{ grids(level: MICRO, first: 1) { edges { node { id code } } } }")
    node = grid["grids"]["edges"][0]["node"]
    again = gql(
        client, "query($id: ID!) { node(id: $id) { id ... on Grid { code } } }", id=node["id"]
    )
    assert again["node"] == node
    errors = gql_errors(
        client, "query($id: ID!) { grids(community: $id) { totalCount } }", id=node["id"]
    )
    assert errors == ["argument 'community' expects a Community ID, got a Grid ID"]
    assert gql_errors(client, '{ node(id: "%%%") { id } }') == ["malformed ID '%%%'"]
    missing = gql(client, '{ node(id: "R3JpZDo5OTk5OTk=") { id } }')  # Grid:999999
    assert missing["node"] is None


def test_households_filtered_by_micro_grid_and_tag(
    client: TestClient, small_bundle: Bundle
) -> None:
    micro = gql(
        client,
        "{ grids(level: MICRO, first: 1) { edges { node { id code "
        "householdCount households { code tags } } } } }",
    )
    grid = micro["grids"]["edges"][0]["node"]
    page = gql(
        client,
        "query($g: ID!) { households(microGrid: $g, tag: ELDERLY, first: 500) "
        "{ totalCount edges { node { code tags location microGrid { code } } } } }",
        g=grid["id"],
    )
    elderly = [h for h in grid["households"] if "ELDERLY" in h["tags"]]
    assert page["households"]["totalCount"] == len(elderly)
    assert all(e["node"]["microGrid"]["code"] == grid["code"] for e in page["households"]["edges"])
    assert len(grid["households"]) == grid["householdCount"]
    # Each household's point, loaded apart from the list, is where the bundle put it.
    table = small_bundle.households
    source = {c: (table.lon[i], table.lat[i]) for i, c in enumerate(table.code)}
    for edge in page["households"]["edges"]:
        point = edge["node"]["location"]
        assert point["type"] == "Point"
        assert point["coordinates"] == pytest.approx(source[edge["node"]["code"]], abs=1e-6)


def _statements(engine: Engine, client: TestClient, query: str) -> int:
    with statements(engine) as said:
        gql(client, query)
    return len(said)


def test_relationships_do_not_cost_a_query_per_grid(client: TestClient, engine: Engine) -> None:
    gql(client, "{ me { name } }")  # signs in: later requests reuse the checked token
    query = """{ grids(level: %s, first: %d) { edges { node { code
        parent { code children { code } } community { code street { code } }
        children { code } } } } }"""
    few = _statements(engine, client, query % ("MICRO", 20))
    many = _statements(engine, client, query % ("MICRO", 200))
    assert many == few
    assert many <= 10
    assert _statements(engine, client, query % ("GENERAL", 5)) == _statements(
        engine, client, query % ("GENERAL", 30)
    )
    points = "{ grids(level: MICRO, first: %d) { edges { node { households { location } } } } }"
    assert _statements(engine, client, points % 2) == _statements(engine, client, points % 20)
