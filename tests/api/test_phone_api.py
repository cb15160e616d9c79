"""The phone over HTTP: my assignment, acknowledge, check in, record, retry, my hours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from geo import wgs84_to
from geo.crs import to_wgs84
from mobilize.api.app import create_app
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.mobilisation import switch
from mobilize.models import Assignment, Grid, Responder, Role
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.statements import statements
from tests.wartime import activated, district_commander

MINE = """{ myAssignment { minutesLeft deadline assignment { id status role }
  grid { code centre } households { household { code tags } checked { result } }
  teammates { name phone role } leader { name phone } }
  myTasks { id kind status households { household { id code } } } }"""


@pytest.fixture
def setup(engine: Engine, small_bundle: Bundle, clock: ManualClock) -> Iterator[Any]:
    m = activated(engine, small_bundle, clock, scope="street:S01")
    with Session(engine) as session:
        a = session.scalars(
            select(Assignment).where(Assignment.role == "minimum").order_by(Assignment.id)
        ).first()
        assert a is not None
        who = session.get_one(Responder, a.responder_id)
        grid = session.get(Grid, a.grid_id)
    token = make_user(engine, clock, Role.RESPONDER, who.code)
    app = create_app(
        Settings(),
        engine=engine,
        clock=clock,
        dispatcher=InProcessDispatcher(engine, LogNotifier(), clock),
    )
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, m, grid


def run(client: TestClient, query: str, **variables: Any) -> Any:
    body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    assert "errors" not in body, body
    return body["data"]


def test_a_day_on_the_phone(setup: Any, engine: Engine, clock: ManualClock) -> None:
    client, mobilisation, grid = setup
    view = run(client, MINE)
    mine = view["myAssignment"]
    assert mine["grid"]["code"] == grid.code and mine["minutesLeft"] == 180.0
    assert mine["grid"]["centre"]["type"] == "Point"
    assert mine["households"] and mine["leader"]["phone"]
    assignment = mine["assignment"]["id"]

    ack = """mutation($a: ID!, $k: String) { acknowledgeAssignment(id: $a, etaMinutes: 12,
        clientMutationId: $k) { __typename ... on Assignment { status } } }"""
    assert (
        run(client, ack, a=assignment, k="ack-1")["acknowledgeAssignment"]["status"]
        == "ACKNOWLEDGED"
    )
    assert (
        run(client, ack, a=assignment, k="ack-1")["acknowledgeAssignment"]["status"]
        == "ACKNOWLEDGED"
    )  # a retry: the first result, nothing changed

    check_in = """mutation($a: ID!, $lon: Float!, $lat: Float!, $crs: String!, $k: String) {
        checkIn(assignment: $a, location: {lon: $lon, lat: $lat, crs: $crs},
                clientMutationId: $k) { __typename ... on Assignment { status }
                ... on OutOfAreaError { distanceMetres message } } }"""
    glon, glat = wgs84_to([grid.centre.x], [grid.centre.y], "gcj02")
    wrong = run(
        client,
        check_in,
        a=assignment,
        lon=float(glon[0]),
        lat=float(glat[0]),
        crs="wgs84",
        k="in-1",
    )["checkIn"]
    assert wrong["__typename"] == "OutOfAreaError" and 150 < wrong["distanceMetres"] < 700
    right = run(
        client,
        check_in,
        a=assignment,
        lon=float(glon[0]),
        lat=float(glat[0]),
        crs="gcj02",
        k="in-2",
    )["checkIn"]
    assert right == {"__typename": "Assignment", "status": "ON_SITE"}

    [task] = [t for t in view["myTasks"] if t["kind"] == "HOUSEHOLD_CHECK"]
    household = task["households"][0]["household"]["id"]
    record = """mutation($t: ID!, $h: ID!, $r: CheckResult!, $k: String) {
        recordHouseholdCheck(task: $t, household: $h, result: $r, note: "独居",
                             clientMutationId: $k)
        { __typename ... on HouseholdRecord { id result recordedBy }
          ... on ValidationError { field message } } }"""
    first = run(client, record, t=task["id"], h=household, r="NEEDS_HELP", k="rec-1")
    again = run(client, record, t=task["id"], h=household, r="NEEDS_HELP", k="rec-1")
    assert first == again and first["recordHouseholdCheck"]["result"] == "needs_help"
    reused = run(client, record, t=task["id"], h=household, r="OK", k="rec-1")
    assert reused["recordHouseholdCheck"]["field"] == "clientMutationId"
    checked = run(client, MINE)["myAssignment"]["households"]
    assert {"result": "needs_help"} in [h["checked"] for h in checked]

    problem = run(
        client,
        """mutation($a: ID!, $t: String!) { reportProblem(assignment: $a, text: $t) {
        __typename ... on ProblemReport { status text } } }""",
        a=assignment,
        t="需要药品 medicine needed\r\n3号楼 2单元\n\n老人独居 ",
    )
    assert problem["reportProblem"] == {
        "__typename": "ProblemReport",
        "status": "escalated",
        "text": "需要药品 medicine needed\n3号楼 2单元\n\n老人独居",  # lines kept, ends trimmed
    }

    clock.advance(timedelta(hours=1))
    with transaction(make_sessionmaker(engine)) as session:
        switch.stand_down(
            session, actor=district_commander(engine), clock=clock, mobilisation_id=mobilisation.id
        )
    hours = run(
        client,
        "{ myService { hours points entries { title } } myAssignment { minutesLeft } }",
    )
    assert hours["myService"]["hours"] == 1.0 and hours["myService"]["points"] == 7.0
    assert hours["myAssignment"] is None  # peacetime again


def test_street_dispatch_over_http(setup: Any, engine: Engine, clock: ManualClock) -> None:
    client, mobilisation, grid = setup
    commander = make_user(engine, clock, Role.STREET_COMMANDER, "S01")
    from mobilize.api.relay import to_global_id

    body = client.post(
        "/graphql",
        headers={"Authorization": f"Bearer {commander}"},
        json={
            "query": """mutation($m: ID!, $c: ID!) { dispatchTask(mobilisation: $m,
            kind: ORDER_KEEPING, area: {everyMicroGridOfCommunities: [$c]}, priority: 1,
            title: "卡口值守") { __typename ... on DispatchedTasks { count tasks { status
            priority title } } } }""",
            "variables": {
                "m": to_global_id("Mobilisation", mobilisation.id),
                "c": to_global_id("Community", grid.community_id),
            },
        },
    ).json()
    result = body["data"]["dispatchTask"]
    assert result["__typename"] == "DispatchedTasks" and result["count"] > 0
    assert {t["priority"] for t in result["tasks"]} == {1}
    assert {t["title"] for t in result["tasks"]} == {"卡口值守"}


def test_the_home_screens_poll_reads_no_households(setup: Any, engine: Engine) -> None:
    """Phones poll their assignment's deadline and status all morning; the household list
    (fifty homes with their locations and records) is read only when a screen asks for it."""
    client, _, _ = setup
    with statements(engine) as polled:
        poll = run(client, "{ myAssignment { minutesLeft deadline assignment { status } } }")
    with statements(engine) as listed:
        full = run(client, "{ myAssignment { households { household { code } } } }")
    assert poll["myAssignment"]["minutesLeft"] == 180.0
    assert full["myAssignment"]["households"]
    households = re.compile(r"\bfrom household\b|\bhousehold_record\b", re.IGNORECASE)
    assert not [s for s in polled if households.search(s)]
    assert [s for s in listed if households.search(s)]  # the pattern does match


def test_directions_open_each_map_app_at_the_grid_in_its_own_coordinates(setup: Any) -> None:
    client, _, grid = setup
    mine = run(client, "{ myAssignment { grid { centre } directions { app label url } } }")
    lon, lat = mine["myAssignment"]["grid"]["centre"]["coordinates"]
    links = {d["app"]: d for d in mine["myAssignment"]["directions"]}
    assert set(links) == {"amap", "baidu"}
    assert links["amap"]["label"].startswith("高德")
    amap = re.search(r"to=([\d.]+),([\d.]+),", links["amap"]["url"])
    baidu = re.search(r"destination=latlng:([\d.]+),([\d.]+)\|", links["baidu"]["url"])
    assert amap and baidu
    g_lon, g_lat = float(amap[1]), float(amap[2])
    b_lat, b_lon = float(baidu[1]), float(baidu[2])
    # Each app's point is offset from the stored one, as that app's system is (hundreds of m)...
    assert 0.001 < abs(g_lon - lon) + abs(g_lat - lat) < 0.02
    assert 0.004 < abs(b_lon - lon) + abs(b_lat - lat) < 0.03
    # ...and converted back (the inverse, a separate calculation) lands on the grid's point.
    back = to_wgs84([g_lon], [g_lat], "gcj02"), to_wgs84([b_lon], [b_lat], "bd09")
    for x, y in back:
        assert abs(float(x[0]) - lon) < 2e-6 and abs(float(y[0]) - lat) < 2e-6
    assert "coord_type=bd09ll" in links["baidu"]["url"]
    assert quote(grid.code) in links["amap"]["url"]
