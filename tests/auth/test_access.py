"""Who sees what, over HTTP against the live schema, on both backends."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from graphql import GraphQLObjectType, IntrospectionQuery
from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.api.schema import build_schema
from mobilize.auth.policy import POLICY
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from tests.people import Cast, cast


@pytest.fixture
def world(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> Iterator[tuple[TestClient, Cast]]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=small_bundle, actor="test", clock=clock)
    people = cast(engine, clock)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        yield client, people


def ask(client: TestClient, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def data(client: TestClient, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
    body = ask(client, token, query, **variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def test_every_root_field_of_the_schema_has_a_policy() -> None:
    schema = build_schema()._schema
    fields = set()
    for root in (schema.query_type, schema.mutation_type, schema.subscription_type):
        if isinstance(root, GraphQLObjectType):
            fields |= {f"{root.name}.{name}" for name in root.fields}
    assert fields - set(POLICY) == set(), "add these operations to mobilize.auth.policy.POLICY"
    assert set(POLICY) - fields == set(), "POLICY names operations the schema does not have"


def _grids_in(bundle: Bundle, street: str | None = None, community: str | None = None) -> int:
    in_street = {c.code for c in bundle.communities if street is None or c.street == street}
    general = {g.code: g.parent for g in bundle.grids if g.level == "general"}
    count = 0
    for g in bundle.grids:
        owner = g.parent if g.level == "general" else general[g.parent]
        if owner in in_street and (community is None or owner == community):
            count += 1
    return count


GRID_COUNT = "{ grids(first: 1) { totalCount } }"


def test_each_role_lists_exactly_the_grids_of_its_place(
    world: tuple[TestClient, Cast], small_bundle: Bundle
) -> None:
    client, people = world
    everything = len(small_bundle.grids)
    expected = {
        "admin": everything,
        "district_commander": everything,
        "reviewer": everything,
        "street_commander": _grids_in(small_bundle, street=people.street),
        "other_street_commander": _grids_in(small_bundle, street=people.other_street),
        "community_secretary": _grids_in(small_bundle, community=people.community),
        "responder": 0,  # a team volunteer has no home grid and, before wartime, no assignment
    }
    assert 0 < expected["community_secretary"] < expected["street_commander"] < everything
    for role, count in expected.items():
        got = data(client, people.token(role), GRID_COUNT)["grids"]["totalCount"]
        assert got == count, role


def test_street_commander_sees_only_their_street_in_every_list(
    world: tuple[TestClient, Cast],
) -> None:
    client, people = world
    token = people.street_commander
    streets = data(client, token, "{ streets { edges { node { code } } } }")["streets"]["edges"]
    assert [e["node"]["code"] for e in streets] == [people.street]
    responders = data(
        client,
        token,
        """{ responders(first: 500) { edges { node {
        homeGrid { community { street { code } } }
        unit { pairings { community { code } } } } } } }""",
    )
    for edge in responders["responders"]["edges"]:
        node = edge["node"]
        if node["homeGrid"] is not None:
            assert node["homeGrid"]["community"]["street"]["code"] == people.street
        else:  # a sunk cadre of a unit paired here; pairings elsewhere stay hidden
            assert node["unit"]["pairings"]
    households = data(
        client,
        token,
        """{ households(first: 200) { edges { node {
        microGrid { community { street { code } } } } } } }""",
    )
    assert {
        e["node"]["microGrid"]["community"]["street"]["code"]
        for e in households["households"]["edges"]
    } == {people.street}


def test_objects_outside_your_scope_do_not_exist(world: tuple[TestClient, Cast]) -> None:
    client, people = world
    theirs = data(
        client,
        people.other_street_commander,
        "{ grids(level: MICRO, first: 1) { edges { node { id community { id } } } } }",
    )
    grid = theirs["grids"]["edges"][0]["node"]
    query = "query($id: ID!) { node(id: $id) { id } }"
    assert data(client, people.street_commander, query, id=grid["id"])["node"] is None
    assert data(client, people.other_street_commander, query, id=grid["id"])["node"] is not None
    filtered = data(
        client,
        people.street_commander,
        "query($c: ID!) { grids(community: $c) { totalCount } }",
        c=grid["community"]["id"],
    )
    assert filtered["grids"]["totalCount"] == 0
    # An id that does not exist at all answers exactly the same way.
    assert (
        data(client, people.street_commander, query, id=to_global_id("Grid", 10**9))["node"] is None
    )


def test_a_responder_sees_themself_and_their_teammates_only(
    world: tuple[TestClient, Cast], small_bundle: Bundle
) -> None:
    client, people = world
    me = next(r for r in small_bundle.responders if r.code == people.responder_code)
    team = {r.code for r in small_bundle.responders if r.team == me.team}
    seen = data(
        client,
        people.responder,
        "{ responders(first: 500) { edges { node { code name phone } } } }",
    )
    assert {e["node"]["code"] for e in seen["responders"]["edges"]} == team
    for query in (
        "{ streets { totalCount } }",
        "{ units { totalCount } }",
        "{ district { code } }",
        "{ pairings { totalCount } }",
    ):
        assert codes(ask(client, people.responder, query)) == ["FORBIDDEN"], query


def test_signed_out_callers_are_told_to_sign_in(world: tuple[TestClient, Cast]) -> None:
    client, _ = world
    body = ask(client, None, GRID_COUNT)
    assert codes(body) == ["UNAUTHENTICATED"]
    assert "Sign in first" in body["errors"][0]["message"]


def test_me_names_the_roles(world: tuple[TestClient, Cast]) -> None:
    client, people = world
    viewer = data(
        client,
        people.community_secretary,
        "{ me { name roles { role scopeCode } tokenExpiresAt } }",
    )["me"]
    assert viewer["roles"] == [{"role": "community_secretary", "scopeCode": people.community}]
    assert viewer["tokenExpiresAt"] is not None


# One small request per root operation; the matrix test runs each as every role. Ids name
# nothing that exists: a caller let through gets NOT_FOUND or an empty answer, never FORBIDDEN.
M = "TW9iaWxpc2F0aW9uOjk5OTk="  # Mobilisation:9999
A = "QWN0aXZpdHk6OTk5OQ=="  # Activity:9999
OPERATIONS = {
    "Query.me": "{ me { name } }",
    "Query.node": '{ node(id: "R3JpZDox") { id } }',
    "Query.district": "{ district { code } }",
    "Query.streets": "{ streets { totalCount } }",
    "Query.communities": "{ communities { totalCount } }",
    "Query.grids": "{ grids { totalCount } }",
    "Query.households": "{ households { totalCount } }",
    "Query.buildings": "{ buildings { totalCount } }",
    "Query.units": "{ units { totalCount } }",
    "Query.pairings": "{ pairings { totalCount } }",
    "Query.teams": "{ teams { totalCount } }",
    "Query.responders": "{ responders { totalCount } }",
    "Mutation.requestSignInCode": 'mutation { requestSignInCode(phone: "13000000001") '
    "{ __typename } }",
    "Mutation.signInWithCode": 'mutation { signInWithCode(phone: "13000000001", code: "000000")'
    " { __typename } }",
    "Mutation.revokeToken": 'mutation { revokeToken(tokenId: "VG9rZW46OTk5OTk5") { __typename } }',
    "Mutation.signOut": "mutation { signOut { __typename } }",
    "Query.mobilisations": "{ mobilisations { totalCount } }",
    "Query.staffingRules": "{ staffingRules { kind rule { minOnSite } } }",
    "Mutation.activateMobilisation": "mutation { activateMobilisation(scope: {communities: "
    '["NO-SUCH"]}, kind: FLOOD, title: "x") { __typename } }',
    "Mutation.standDown": f'mutation {{ standDown(id: "{M}") {{ __typename }} }}',
    "Mutation.reassign": 'mutation { reassign(assignment: "QXNzaWdubWVudDo5OTk5", '
    'grid: "R3JpZDox", fromGrid: "R3JpZDoy") { __typename } }',
    "Mutation.pinAssignment": 'mutation { pinAssignment(id: "QXNzaWdubWVudDo5OTk5") '
    "{ __typename } }",
    "Mutation.unpinAssignment": 'mutation { unpinAssignment(id: "QXNzaWdubWVudDo5OTk5") '
    "{ __typename } }",
    "Mutation.markUnavailable": 'mutation { markUnavailable(responder: "UmVzcG9uZGVyOjk5OTk5",'
    ' reason: "x") { __typename } }',
    "Mutation.acknowledgeAssignment": "mutation { acknowledgeAssignment(id: "
    '"QXNzaWdubWVudDo5OTk5") { __typename } }',
    "Query.coverage": f'{{ coverage(mobilisation: "{M}") {{ grids }} }}',
    "Query.risk": f'{{ risk(mobilisation: "{M}") {{ atRisk }} }}',
    "Mutation.acceptRiskFix": f'mutation {{ acceptRiskFix(mobilisation: "{M}",'
    ' grid: "R3JpZDox", responder: "UmVzcG9uZGVyOjk5OTk5") { __typename } }',
    "Subscription.coverageChanged": f'subscription {{ coverageChanged(mobilisation: "{M}") '
    "{ grids } }",
    "Subscription.mobilisationEvents": "subscription { mobilisationEvents(mobilisation: "
    f'"{M}") {{ seq }} }}',
    "Subscription.playback": f'subscription {{ playback(mobilisation: "{M}", '
    'start: "2026-07-01T08:00:00+00:00") { at } }',
    "Query.events": f'{{ events(mobilisation: "{M}") {{ lastSeq }} }}',
    "Query.gridStates": f'{{ gridStates(mobilisation: "{M}") {{ status }} }}',
    "Query.stateAt": f'{{ stateAt(mobilisation: "{M}", at: "2026-07-01T08:00:00+00:00") '
    "{ seq } }",
    "Query.afterActionReport": f'{{ afterActionReport(mobilisation: "{M}") {{ grids }} }}',
    "Query.myAssignment": "{ myAssignment { minutesLeft } }",
    "Query.myTasks": "{ myTasks { id } }",
    "Query.myService": "{ myService { hours points } }",
    "Query.myProfile": "{ myProfile { onLeave } }",
    "Query.tasks": f'{{ tasks(mobilisation: "{M}") {{ totalCount }} }}',
    "Mutation.dispatchTask": f'mutation {{ dispatchTask(mobilisation: "{M}",'
    ' kind: PUBLICITY, area: {communities: ["Q29tbXVuaXR5OjE="]}) { __typename } }',
    "Mutation.reassignTask": 'mutation { reassignTask(task: "VGFzazo5OTk5", responders: []) '
    "{ __typename } }",
    "Mutation.cancelTask": 'mutation { cancelTask(task: "VGFzazo5OTk5", reason: "x") '
    "{ __typename } }",
    "Mutation.setTaskPriority": 'mutation { setTaskPriority(task: "VGFzazo5OTk5", priority: 1) '
    "{ __typename } }",
    "Mutation.updateTask": 'mutation { updateTask(task: "VGFzazo5OTk5", to: DONE) { __typename } }',
    "Mutation.recordHouseholdCheck": 'mutation { recordHouseholdCheck(task: "VGFzazo5OTk5", '
    'household: "SG91c2Vob2xkOjk5OTk=", result: OK) { __typename } }',
    "Mutation.recordDelivery": 'mutation { recordDelivery(task: "VGFzazo5OTk5", '
    'household: "SG91c2Vob2xkOjk5OTk=") { __typename } }',
    "Mutation.checkIn": 'mutation { checkIn(assignment: "QXNzaWdubWVudDo5OTk5", '
    "location: {lon: 104.1, lat: 30.8}) { __typename } }",
    "Mutation.reportProblem": 'mutation { reportProblem(assignment: "QXNzaWdubWVudDo5OTk5", '
    'text: "x") { __typename } }',
    "Mutation.declineAssignment": 'mutation { declineAssignment(id: "QXNzaWdubWVudDo5OTk5", '
    'reason: "x") { __typename } }',
    "Mutation.editHousehold": 'mutation { editHousehold(household: "SG91c2Vob2xkOjk5OTk=", '
    "size: 1) { __typename } }",
    "Mutation.addResponder": 'mutation { addResponder(code: "X", person: {name: "x", '
    'phone: "13000000009", kind: VOLUNTEER, unit: "VW5pdDo5OTk5"}) { __typename } }',
    "Mutation.editResponder": 'mutation { editResponder(responder: "UmVzcG9uZGVyOjk5OTk5", '
    'person: {name: "x", phone: "13000000009", kind: VOLUNTEER}) { __typename } }',
    "Mutation.retireResponder": 'mutation { retireResponder(responder: "UmVzcG9uZGVyOjk5OTk5",'
    ' reason: "x") { __typename } }',
    "Mutation.setPairing": 'mutation { setPairing(unit: "VW5pdDo5OTk5", community: '
    '"Q29tbXVuaXR5Ojk5OTk=", wartimeQuota: 1) { __typename } }',
    "Mutation.retirePairing": 'mutation { retirePairing(pairing: "UGFpcmluZzo5OTk5") '
    "{ __typename } }",
    "Mutation.saveTeam": 'mutation { saveTeam(code: "X", name: "x", kind: SHOCK_TEAM, '
    'unit: "VW5pdDo5OTk5") { __typename } }',
    "Mutation.setTeamMembers": 'mutation { setTeamMembers(team: "VGVhbTo5OTk5") { __typename } }',
    "Mutation.redrawMicroGrids": 'mutation { redrawMicroGrids(grids: [{grid: "R3JpZDo5OTk5", '
    'geometry: {type: "Point", coordinates: [0, 0]}}]) { __typename } }',
    "Mutation.recordLeave": 'mutation { recordLeave(responder: "UmVzcG9uZGVyOjk5OTk5", '
    "reason: ILL) { __typename } }",
    "Mutation.backOnDuty": 'mutation { backOnDuty(responder: "UmVzcG9uZGVyOjk5OTk5") '
    "{ __typename } }",
    "Mutation.recordCommitment": "mutation { recordCommitment(responder: "
    '"UmVzcG9uZGVyOjk5OTk5", year: 2026, promise: "x") { __typename } }',
    "Mutation.recordFulfilment": "mutation { recordFulfilment(commitment: "
    '"Q29tbWl0bWVudDo5OTk5", fulfilment: "x") { __typename } }',
    "Query.activities": "{ activities { totalCount } }",
    "Query.enrolments": "{ enrolments { totalCount } }",
    "Query.unitRoster": '{ unitRoster(unit: "VW5pdDo5OTk5") { quota } }',
    "Mutation.requestEnrolmentCode": 'mutation { requestEnrolmentCode(phone: "13000000002") '
    "{ __typename } }",
    "Mutation.reportIn": 'mutation { reportIn(phone: "13000000002", code: "000000", '
    'community: "NO-SUCH", kind: VOLUNTEER, name: "x", address: "x", consent: true) '
    "{ __typename } }",
    "Mutation.decideEnrolment": 'mutation { decideEnrolment(enrolment: "RW5yb2xtZW50Ojk5OTk=", '
    "approve: true) { __typename } }",
    "Query.serviceLedger": "{ serviceLedger { points } }",
    "Query.pointsRule": "{ pointsRule { pointsPerHour } }",
    "Mutation.scheduleActivity": 'mutation { scheduleActivity(community: "Q29tbXVuaXR5Ojk5OTk=",'
    ' kind: PATROL, title: "x", startsAt: "2026-07-01T08:00:00+00:00", '
    'endsAt: "2026-07-01T09:00:00+00:00") { __typename } }',
    "Mutation.signUp": f'mutation {{ signUp(activity: "{A}") {{ __typename }} }}',
    "Mutation.namePeople": f'mutation {{ namePeople(activity: "{A}", people: []) '
    "{ __typename } }",
    "Mutation.recordAttendance": f'mutation {{ recordAttendance(activity: "{A}", attended: '
    "[]) { __typename } }",
    "Mutation.checkActivity": f'mutation {{ checkActivity(activity: "{A}") {{ __typename }} }}',
    "Mutation.cancelActivity": f'mutation {{ cancelActivity(activity: "{A}", reason: "x") '
    "{ __typename } }",
    "Mutation.setPointsRule": "mutation { setPointsRule(pointsPerHour: 2, pointsPerActivity: 5,"
    ' district: "NO-SUCH") { __typename } }',
    "Mutation.redeemPoints": 'mutation { redeemPoints(responder: "UmVzcG9uZGVyOjk5OTk5", '
    'points: 1, what: "x") { __typename } }',
}
ROLES = [
    "admin",
    "district_commander",
    "street_commander",
    "community_secretary",
    "reviewer",
    "responder",
    "unit_organiser",
    None,
]

# Who may call each operation, written out by hand from what each role is for, never read
# from mobilize/auth/policy.py: a wrong entry there (say, responders let to activate) fails
# here. "everyone": even signed out; "signed in": every role.
AREA = {"admin", "district_commander", "street_commander", "community_secretary", "reviewer"}
COMMAND = {"district_commander", "street_commander"}
DISPATCH = COMMAND | {"community_secretary"}
PHONE = {"responder"}
UNIT = {"unit_organiser"}
SIGNED_IN = AREA | PHONE | UNIT
EXPECTED = {
    "Query.me": SIGNED_IN,
    "Query.node": SIGNED_IN,
    "Query.district": AREA | UNIT,
    "Query.streets": AREA,
    "Query.communities": AREA | UNIT,
    "Query.grids": AREA | PHONE,
    "Query.households": AREA | PHONE,
    "Query.buildings": AREA | PHONE,
    "Query.units": AREA | UNIT,
    "Query.pairings": AREA | UNIT,
    "Query.teams": SIGNED_IN,
    "Query.responders": SIGNED_IN,
    "Query.mobilisations": AREA | PHONE,
    "Query.staffingRules": SIGNED_IN,
    "Mutation.activateMobilisation": COMMAND,
    "Mutation.standDown": COMMAND,
    "Mutation.reassign": COMMAND,
    "Mutation.pinAssignment": COMMAND,
    "Mutation.unpinAssignment": COMMAND,
    "Mutation.markUnavailable": COMMAND,
    "Mutation.acknowledgeAssignment": PHONE,
    "Mutation.declineAssignment": PHONE,
    "Query.coverage": AREA,
    "Query.risk": AREA,
    "Mutation.acceptRiskFix": COMMAND,
    "Subscription.coverageChanged": AREA,
    "Subscription.mobilisationEvents": AREA,
    "Subscription.playback": AREA,
    "Query.events": AREA,
    "Query.gridStates": AREA,
    "Query.stateAt": AREA,
    "Query.afterActionReport": AREA,
    "Query.myAssignment": PHONE,
    "Query.myTasks": PHONE,
    "Query.myService": PHONE,
    "Query.myProfile": PHONE,
    "Query.tasks": AREA | PHONE,
    "Mutation.dispatchTask": DISPATCH,
    "Mutation.reassignTask": DISPATCH,
    "Mutation.cancelTask": DISPATCH,
    "Mutation.setTaskPriority": DISPATCH,
    "Mutation.updateTask": PHONE,
    "Mutation.recordHouseholdCheck": PHONE,
    "Mutation.recordDelivery": PHONE,
    "Mutation.checkIn": PHONE,
    "Mutation.reportProblem": PHONE,
    # Keeping the district: households and people by whoever keeps the place; teams by the
    # command centres; pairings and quotas by the district alone.
    "Mutation.editHousehold": DISPATCH,
    "Mutation.addResponder": DISPATCH | UNIT,
    "Mutation.editResponder": DISPATCH | UNIT,
    "Mutation.retireResponder": DISPATCH | UNIT,
    "Mutation.saveTeam": COMMAND,
    "Mutation.setTeamMembers": COMMAND,
    "Mutation.setPairing": {"district_commander"},
    "Mutation.retirePairing": {"district_commander"},
    "Mutation.redrawMicroGrids": COMMAND,
    # Leave and commitments: the person themself, or whoever keeps their place.
    "Mutation.recordLeave": DISPATCH | PHONE | UNIT,
    "Mutation.backOnDuty": DISPATCH | PHONE | UNIT,
    "Mutation.recordCommitment": DISPATCH | PHONE | UNIT,
    "Mutation.recordFulfilment": DISPATCH | PHONE | UNIT,
    # Activities and points: kept by the community's keepers; a responder signs themself up;
    # the rule is the district's.
    "Query.activities": AREA | PHONE,
    "Query.enrolments": AREA,
    "Query.unitRoster": {"district_commander", "unit_organiser"},
    "Mutation.requestEnrolmentCode": "everyone",
    "Mutation.reportIn": "everyone",
    "Mutation.decideEnrolment": DISPATCH,
    "Query.serviceLedger": AREA,
    "Query.pointsRule": AREA,
    "Mutation.scheduleActivity": DISPATCH,
    "Mutation.signUp": PHONE,
    "Mutation.namePeople": DISPATCH,
    "Mutation.recordAttendance": DISPATCH,
    "Mutation.checkActivity": DISPATCH,
    "Mutation.cancelActivity": DISPATCH,
    "Mutation.setPointsRule": {"district_commander"},
    "Mutation.redeemPoints": DISPATCH,
    "Mutation.requestSignInCode": "everyone",
    "Mutation.signInWithCode": "everyone",
    "Mutation.revokeToken": SIGNED_IN,
    "Mutation.signOut": SIGNED_IN,  # last: it ends each role's session
}


def refusal_codes(client: TestClient, token: str | None, operation: str) -> set[str]:
    """The access refusals (FORBIDDEN, UNAUTHENTICATED) one call meets; none when let in."""
    query = OPERATIONS[operation]
    if operation.startswith("Subscription."):
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            init = {"Authorization": f"Bearer {token}"} if token else {}
            ws.send_json({"type": "connection_init", "payload": init})
            assert ws.receive_json()["type"] == "connection_ack"
            ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
            frame = ws.receive_json()
        errors = frame["payload"] if frame["type"] == "error" else []
    else:
        errors = ask(client, token, query).get("errors", [])
    found = {e.get("extensions", {}).get("code") for e in errors}
    return found & {"FORBIDDEN", "UNAUTHENTICATED"}


def test_the_role_by_operation_matrix_holds_over_http(world: tuple[TestClient, Cast]) -> None:
    client, people = world
    assert set(OPERATIONS) == set(EXPECTED) == set(POLICY)
    for operation, allowed in EXPECTED.items():
        for role in ROLES:
            token = people.token(role) if role else None
            got = refusal_codes(client, token, operation)
            if allowed == "everyone" or (role is not None and role in allowed):
                assert got == set(), (operation, role)
            else:
                assert got == {"UNAUTHENTICATED" if role is None else "FORBIDDEN"}, (
                    operation,
                    role,
                )


# -- what legitimate users must be able to read ----------------------------------------------


def _community_of(bundle: Bundle) -> dict[str, str]:
    """grid code -> the name of the community it lies in, from the bundle itself."""
    names = {c.code: c.name for c in bundle.communities}
    general = {g.code: g.parent for g in bundle.grids if g.level == "general"}
    return {
        g.code: names[g.parent if g.level == "general" else general[g.parent]] for g in bundle.grids
    }


def test_a_responder_reads_the_names_of_the_places_they_are_sent_to(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from mobilize.models import Assignment, Grid, Responder, Role
    from tests.people import make_user
    from tests.wartime import activated

    activated(engine, small_bundle, clock)
    with Session(engine) as session:
        code, grid_id, grid_code = session.execute(
            select(Responder.code, Grid.id, Grid.code)
            .join(Assignment, Assignment.responder_id == Responder.id)
            .join(Grid, Grid.id == Assignment.grid_id)
            .where(Responder.home_grid_id.is_not(None), Assignment.status == "assigned")
            .order_by(Assignment.id)
            .limit(1)
        ).one()
    token = make_user(engine, clock, Role.RESPONDER, code)
    expected = _community_of(small_bundle)[grid_code]
    place = "community { name street { name district { name } } }"
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        got = data(
            client,
            token,
            f"""query($g: ID!) {{ myAssignment {{ grid {{ code {place} }} }}
            myTasks {{ grid {{ community {{ name }} }} }}
            node(id: $g) {{ ... on Grid {{ community {{ name }} }} }}
            grids(first: 10) {{ edges {{ node {{ code community {{ name }} }} }} }} }}""",
            g=to_global_id("Grid", grid_id),
        )
    assigned = got["myAssignment"]["grid"]
    assert assigned["community"]["name"] == expected
    assert assigned["community"]["street"]["district"]["name"] == small_bundle.district_name
    assert {t["grid"]["community"]["name"] for t in got["myTasks"] if t["grid"]} == {expected}
    assert got["node"]["community"]["name"] == expected
    for edge in got["grids"]["edges"]:
        grid = edge["node"]
        assert grid["community"]["name"] == _community_of(small_bundle)[grid["code"]]


def test_the_communities_of_a_mobilisation_are_those_of_the_callers_place(
    engine: Engine, small_bundle: Bundle, clock: ManualClock
) -> None:
    from tests.wartime import activated

    m = activated(engine, small_bundle, clock)
    people = cast(engine, clock)
    query = """query($m: ID!) { node(id: $m) { ... on Mobilisation {
        communities { code } } } }"""
    every = {c.code for c in small_bundle.communities}
    expected = {
        "district_commander": every,
        "reviewer": every,
        "admin": every,
        "street_commander": {c.code for c in small_bundle.communities if c.street == people.street},
        "community_secretary": {people.community},
    }
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        for role, codes in expected.items():
            got = data(client, people.token(role), query, m=to_global_id("Mobilisation", m.id))
            assert {c["code"] for c in got["node"]["communities"]} == codes, role


def test_typename_and_introspection_answer_in_development(
    world: tuple[TestClient, Cast],
) -> None:
    from graphql import build_client_schema, get_introspection_query

    client, people = world
    for role in [*ROLES]:
        token = people.token(role) if role else None
        assert data(client, token, "{ __typename }") == {"__typename": "Query"}, role
    introspection = data(client, None, get_introspection_query(descriptions=True))
    schema = build_client_schema(typing.cast(IntrospectionQuery, introspection))
    assert (
        schema.query_type is not None and "coverage" in schema.query_type.fields
    )  # what GraphiQL's docs and gql need


def test_an_admin_is_bound_to_a_district_and_reads_only_its_people(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """Two districts in one database: each admin reads its own district's phone numbers, and
    an admin with no place cannot be made."""
    import dataclasses

    from mobilize.auth.users import resolve_place
    from mobilize.errors import InvalidInput
    from mobilize.models import Role
    from tests.people import make_user

    other = dataclasses.replace(tiny_bundle, district_code="OTHER", district_name="另一个区")
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
        import_district(session, bundle=other, actor="test", clock=clock)
    mine = make_user(engine, clock, Role.ADMIN, tiny_bundle.district_code)
    theirs = make_user(engine, clock, Role.ADMIN, "OTHER")
    query = "{ district { code } responders(first: 500) { totalCount edges { node { phone } } } }"
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        for token, code in ((mine, tiny_bundle.district_code), (theirs, "OTHER")):
            got = data(client, token, query)
            assert got["district"]["code"] == code
            assert got["responders"]["totalCount"] == len(tiny_bundle.responders)  # not twice
    with (
        transaction(make_sessionmaker(engine)) as session,
        pytest.raises(InvalidInput, match="needs a district code"),
    ):
        resolve_place(session, role=Role.ADMIN, scope=None)
