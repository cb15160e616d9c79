"""The wartime switch over HTTP, as command centres and phones use it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.mobilisation import assignments
from mobilize.models import Assignment, Community, Notification, Responder, Role, Street
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.wartime import grid_of, phone, write

ACTIVATE = """mutation($scope: ScopeInput!, $key: String) {
  activateMobilisation(scope: $scope, kind: EPIDEMIC, title: "演练 drill",
                       clientMutationId: $key) {
    __typename
    ... on Mobilisation { id status deadline
                          figures { grids microGridsWithMinimum slots unfilledMinimum { count } }
                          rule { minOnSite householdsPerWorker } partyOrganisations { name } }
    ... on AlreadyActiveError { mobilisationId message }
    ... on ForbiddenError { message }
  } }"""


@pytest.fixture
def world(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> Iterator[tuple[TestClient, InProcessDispatcher]]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=clock)
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    app = create_app(Settings(), engine=engine, clock=clock, dispatcher=dispatcher)
    with TestClient(app) as client:
        yield client, dispatcher


def run(client: TestClient, token: str, query: str, **variables: Any) -> Any:
    body = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def test_switch_acknowledge_and_stand_down(
    world: tuple[TestClient, InProcessDispatcher],
    engine: Engine,
    clock: ManualClock,
    small_bundle: Bundle,
) -> None:
    client, dispatcher = world
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    rival = make_user(engine, clock, Role.STREET_COMMANDER, "S02")

    refused = run(client, rival, ACTIVATE, scope={"streets": ["S01"]})
    assert refused["__typename"] == "ForbiddenError"
    first = run(client, commander, ACTIVATE, scope={"streets": ["S01"]}, key="k-1")
    assert first["__typename"] == "Mobilisation" and first["status"] == "ACTIVE"
    figures = first["figures"]
    uncovered = sum(r["count"] for r in figures["unfilledMinimum"])
    assert figures["microGridsWithMinimum"] == figures["grids"] - uncovered > 0
    assert first["rule"] == {"minOnSite": 1, "householdsPerWorker": 25}
    assert all(o["name"].endswith("临时党支部") for o in first["partyOrganisations"])
    assert (
        run(client, commander, ACTIVATE, scope={"streets": ["S01"]}, key="k-1")["id"] == first["id"]
    )  # a retry with the same id: the same mobilisation
    overlap = run(client, commander, ACTIVATE, scope={"district": True})
    assert overlap["__typename"] == "AlreadyActiveError"
    assert overlap["mobilisationId"] == first["id"]

    dispatcher.wait()
    with Session(engine) as session:
        assert set(session.scalars(select(Notification.status))) == {"sent"}
        member = session.scalars(
            select(Responder).where(Responder.kind == "micro_grid_member").order_by(Responder.id)
        ).first()
        assert member is not None
    phone = make_user(engine, clock, Role.RESPONDER, member.code)
    mine = run(
        client,
        phone,
        """query($m: ID!) { node(id: $m) { ... on Mobilisation {
        assignments { totalCount edges { node { id status grid { code } responder { code } } } }
        } } }""",
        m=first["id"],
    )
    assert mine["assignments"]["totalCount"] == 1
    assignment = mine["assignments"]["edges"][0]["node"]
    assert assignment["responder"]["code"] == member.code
    acked = run(
        client,
        phone,
        """mutation($a: ID!) { acknowledgeAssignment(id: $a) {
        __typename ... on Assignment { status } } }""",
        a=assignment["id"],
    )
    assert acked == {"__typename": "Assignment", "status": "ACKNOWLEDGED"}
    commanders_view = run(
        client, rival, """query($m: ID!) { node(id: $m) { id } }""", m=first["id"]
    )
    assert commanders_view is None  # S02's commander does not see S01's mobilisation

    down = run(
        client,
        commander,
        """mutation($m: ID!) { standDown(id: $m) { __typename
        ... on Mobilisation { status stoodDownAt } } }""",
        m=first["id"],
    )
    assert down["status"] == "STOOD_DOWN"
    again = run(
        client,
        commander,
        """mutation($m: ID!) { standDown(id: $m) { __typename
        ... on AlreadyStoodDownError { mobilisationId } } }""",
        m=first["id"],
    )
    assert again == {"__typename": "AlreadyStoodDownError", "mobilisationId": first["id"]}


def test_staffing_rules_are_data(
    world: tuple[TestClient, InProcessDispatcher],
    engine: Engine,
    clock: ManualClock,
    small_bundle: Bundle,
) -> None:
    client, _ = world
    reviewer = make_user(engine, clock, Role.REVIEWER, small_bundle.district_code)
    rules = run(
        client,
        reviewer,
        """{ staffingRules { kind rule { minOnSite
        householdsPerWorker modes { name upToMetres speedKmh } } } }""",
    )
    by_kind = {r["kind"]: r["rule"] for r in rules}
    assert by_kind["EPIDEMIC"]["minOnSite"] == 1 and by_kind["FLOOD"]["minOnSite"] == 2
    assert by_kind["EPIDEMIC"]["modes"][-1] == {
        "name": "drive",
        "upToMetres": None,
        "speedKmh": 25.0,
    }


def test_coverage_over_http_by_scope(
    world: tuple[TestClient, InProcessDispatcher],
    engine: Engine,
    clock: ManualClock,
    small_bundle: Bundle,
) -> None:
    client, _ = world
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    street = make_user(engine, clock, Role.STREET_COMMANDER, "S01")
    first = run(client, commander, ACTIVATE, scope={"district": True})
    query = """query($m: ID!) { coverage(mobilisation: $m) { grids mobilisedPct minutesLeft
        byStatus { status count } curve { minute mobilised } } }"""
    whole = run(client, commander, query, m=first["id"])
    mine = run(client, street, query, m=first["id"])
    assert whole["grids"] == first["figures"]["grids"] == 240
    assert 0 < mine["grids"] < whole["grids"]  # the street commander sees their street
    assert whole["minutesLeft"] == 180.0 and whole["mobilisedPct"] == 0.0
    assert sum(s["count"] for s in whole["byStatus"]) == whole["grids"]


RISK = """query($m: ID!, $all: Boolean) { risk(mobilisation: $m, all: $all, first: 500) {
  atRisk reasons reasonLabels reasonLabelsEn minutesLate projectedArrival status
  grid { id code community { street { code } } }
  suggestion { responder { id } fromGrid { id } travelMinutes arrivesAt } } }"""


def test_risk_is_scoped_and_its_fix_is_one_mutation(
    world: tuple[TestClient, InProcessDispatcher],
    engine: Engine,
    clock: ManualClock,
    small_bundle: Bundle,
) -> None:
    from datetime import timedelta

    client, _ = world
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    street = make_user(engine, clock, Role.STREET_COMMANDER, "S02")
    mobilisation = run(client, commander, ACTIVATE, scope={"district": True})["id"]
    everything = run(client, commander, RISK, m=mobilisation, all=True)
    assert len(everything) == 240  # every micro-grid, with its projection
    assert {g["grid"]["community"]["street"]["code"] for g in everything} == {"S01", "S02"}
    mine = run(client, street, RISK, m=mobilisation, all=True)
    assert mine and {g["grid"]["community"]["street"]["code"] for g in mine} == {"S02"}

    silent = mine[-1]["grid"]
    with Session(engine) as session:  # everyone in S02 answers, but those sent to `silent`
        answering = session.scalars(
            select(Assignment)
            .join(Community, Community.id == Assignment.community_id)
            .join(Street, Street.id == Community.street_id)
            .where(Street.code == "S02", Assignment.status == "assigned")
        ).all()
    for a in answering:
        if to_global_id("Grid", grid_of(a)) != silent["id"]:
            write(engine, assignments.acknowledge, actor=phone(a), clock=clock, assignment_id=a.id,
                  eta_minutes=40)  # fmt: skip
    clock.advance(timedelta(minutes=31))
    late = run(client, street, RISK, m=mobilisation)
    fixable = next(g for g in late if g["grid"]["id"] == silent["id"])
    assert fixable["reasons"] == ["NOBODY_ACKNOWLEDGED"] and fixable["projectedArrival"] is None
    assert fixable["reasonLabels"] == ["无人确认"]
    assert fixable["reasonLabelsEn"] == ["nobody acknowledged"]
    fix = fixable["suggestion"]
    accepted = run(
        client,
        street,
        """mutation($m: ID!, $g: ID!, $r: ID!, $f: ID) {
          acceptRiskFix(mobilisation: $m, grid: $g, responder: $r, fromGrid: $f) {
            __typename ... on Assignment { pinned grid { id } } ... on ConflictError { message }
          } }""",
        m=mobilisation,
        g=fixable["grid"]["id"],
        r=fix["responder"]["id"],
        f=fix["fromGrid"]["id"] if fix["fromGrid"] else None,
    )
    assert accepted == {"__typename": "Assignment", "pinned": True, "grid": {"id": silent["id"]}}
    after = {g["grid"]["id"]: g for g in run(client, street, RISK, m=mobilisation, all=True)}
    assert not after[fixable["grid"]["id"]]["atRisk"]  # just called: counted on again
    # the other street's grids are not this commander's to staff
    other = next(g for g in everything if g["grid"]["community"]["street"]["code"] == "S01")
    refused = run(
        client,
        street,
        """mutation($m: ID!, $g: ID!, $r: ID!) {
          acceptRiskFix(mobilisation: $m, grid: $g, responder: $r) { __typename } }""",
        m=mobilisation,
        g=other["grid"]["id"],
        r=fix["responder"]["id"],
    )
    assert refused["__typename"] in ("ForbiddenError", "ValidationError")


def test_each_mobilisation_shows_its_activation_run(
    world: tuple[TestClient, InProcessDispatcher],
    engine: Engine,
    clock: ManualClock,
    small_bundle: Bundle,
) -> None:
    """Two streets activated: the list shows each one's solve, done on its first attempt, and
    a street commander sees only their own."""
    client, dispatcher = world
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, small_bundle.district_code)
    for street in ("S01", "S02"):
        done = run(client, commander, ACTIVATE, scope={"streets": [street]}, key=street)
        assert done["status"] == "ACTIVE"
    dispatcher.wait()
    listing = """{ mobilisations { edges { node { status
      activation { status attempts startedAt finishedAt error } } } } }"""
    nodes = [e["node"] for e in run(client, commander, listing)["edges"]]
    assert len(nodes) == 2
    for node in nodes:
        job = node["activation"]
        assert (job["status"], job["attempts"], job["error"]) == ("DONE", 1, None)
        assert job["startedAt"] <= job["finishedAt"]
    rival = make_user(engine, clock, Role.STREET_COMMANDER, "S02")
    assert len(run(client, rival, listing)["edges"]) == 1
