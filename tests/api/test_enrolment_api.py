"""报到/报名 through the API: a cadre proves their phone, reports in to their community, is
approved by its secretary, signs in, and is called at the next activation; bad input and a
second application from the same phone are refused naming what is wrong, changing nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.auth.ratelimit import MemoryCounter, RateLimiter
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.mobilisation.area import AreaScope
from mobilize.models import Assignment, Enrolment, Event, Responder, Role
from mobilize.notify import Notifier
from mobilize.settings import Settings
from tests.api.test_editing_api import call
from tests.auth.test_sign_in import Outbox
from tests.people import make_user
from tests.wartime import activate_now, district_commander

NEWCOMER = "13712345678"
CODE = """mutation($p: String!) { requestEnrolmentCode(phone: $p) {
  __typename ... on SignInCodeSent { message } } }"""
REPORT = """mutation($p: String!, $c: String!, $community: String!, $unit: String,
                    $consent: Boolean!, $kind: EnrolmentKind!) {
  reportIn(phone: $p, code: $c, community: $community, kind: $kind, name: "刘洋",
           address: "桂湖路8号3栋2单元502", unit: $unit, skills: ["first_aid"],
           availability: "工作日晚上、周末", consent: $consent) {
    __typename
    ... on EnrolmentReceived { message }
    ... on Error { message }
    ... on ValidationError { field }
  } }"""
QUEUE = "{ enrolments { edges { node { id name phone kind status community { code } } } } }"
DECIDE = """mutation($e: ID!, $yes: Boolean!, $why: String!) {
  decideEnrolment(enrolment: $e, approve: $yes, reason: $why) {
    __typename ... on Enrolment { status responder { code kind unit { code } } }
    ... on Error { message } } }"""


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def app(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, outbox: Outbox
) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    frozen = RateLimiter(MemoryCounter(), now=lambda: 1_000_000.0)
    application = create_app(
        Settings(), engine=engine, clock=clock, notifier=Notifier([outbox]), limiter=frozen
    )
    with TestClient(application) as client:
        yield client


def public(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    body = client.post("/graphql", json={"query": query, "variables": variables}).json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def test_a_cadre_reports_in_is_approved_and_called_at_the_next_activation(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle, outbox: Outbox
) -> None:
    assert NEWCOMER not in {r.phone for r in tiny_bundle.responders}
    pairing = tiny_bundle.pairings[0]  # their unit is paired with their community
    public(app, CODE, p=NEWCOMER)
    code = outbox.code(1)
    assert outbox.messages[0].to == NEWCOMER and "报到" in outbox.messages[0].text
    base = {"p": NEWCOMER, "community": pairing.community, "kind": "CADRE"}
    # Bad input first: each named, nothing written, the code not spent.
    for variables, field in (
        ({**base, "c": code, "consent": False, "unit": pairing.unit}, "consent"),
        ({**base, "c": code, "consent": True, "unit": None}, "unit"),
        ({**base, "c": code, "consent": True, "unit": "NO-SUCH"}, "unit"),
        ({**base, "c": code, "consent": True, "unit": pairing.unit, "community": "X"}, "community"),
    ):
        refused = public(app, REPORT, **variables)
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
    wrong = public(app, REPORT, **base, c="000000" if code != "000000" else "111111",
                   consent=True, unit=pairing.unit)  # fmt: skip
    assert wrong["__typename"] == "InvalidCodeError"
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Enrolment)) == 0
    received = public(app, REPORT, **base, c=code, consent=True, unit=pairing.unit)
    assert received["__typename"] == "EnrolmentReceived"

    # A second application from the same phone: refused, naming the first.
    public(app, CODE, p=NEWCOMER)
    again = public(app, REPORT, **base, c=outbox.code(2), consent=True, unit=pairing.unit)
    assert again["field"] == "phone" and "applied already" in again["message"]
    assert "刘洋" in again["message"]

    # The secretary's queue, and the approval.
    secretary = make_user(engine, clock, Role.COMMUNITY_SECRETARY, pairing.community)
    [entry] = [e["node"] for e in call(app, secretary, QUEUE)["edges"]]
    assert (entry["name"], entry["phone"], entry["kind"], entry["status"]) == (
        "刘洋", NEWCOMER, "CADRE", "PENDING",
    )  # fmt: skip
    approved = call(app, secretary, DECIDE, e=entry["id"], yes=True, why="")
    assert approved["status"] == "APPROVED"
    assert approved["responder"]["kind"] == "SUNK_CADRE"
    assert approved["responder"]["unit"] == {"code": pairing.unit}
    twice = call(app, secretary, DECIDE, e=entry["id"], yes=False, why="重复")
    assert twice["__typename"] == "ValidationError"
    assert call(app, secretary, QUEUE)["edges"] == []

    # Now on the roster: they sign in with their phone, and the next activation calls them.
    public(app, "mutation($p: String!) { requestSignInCode(phone: $p) { __typename } }", p=NEWCOMER)
    signed = public(
        app,
        "mutation($p: String!, $c: String!) { signInWithCode(phone: $p, code: $c) { __typename } }",
        p=NEWCOMER,
        c=outbox.code(3),
    )
    assert signed["__typename"] == "SignInSuccess"
    m = activate_now(
        engine,
        actor=district_commander(engine),
        clock=clock,
        scope=AreaScope.parse(f"community:{pairing.community}"),
        kind="epidemic",
        title="疫情防控",
    ).mobilisation
    with Session(engine) as session:
        newcomer = session.scalars(select(Responder.id).where(Responder.phone == NEWCOMER)).one()
        called = session.scalars(
            select(Assignment.responder_id).where(Assignment.mobilisation_id == m.id)
        ).all()
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("enrolment.%")).order_by(Event.seq)
        ).all()
    assert newcomer in called
    assert kinds == ["enrolment.submitted", "enrolment.approved"]


def test_a_declined_application_says_why_and_adds_nobody(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle, outbox: Outbox
) -> None:
    community = tiny_bundle.communities[0].code
    public(app, CODE, p=NEWCOMER)
    public(app, REPORT, p=NEWCOMER, c=outbox.code(1), community=community, kind="VOLUNTEER",
           consent=True, unit=None)  # fmt: skip
    secretary = make_user(engine, clock, Role.COMMUNITY_SECRETARY, community)
    [entry] = [e["node"] for e in call(app, secretary, QUEUE)["edges"]]
    silent = call(app, secretary, DECIDE, e=entry["id"], yes=False, why="")
    assert silent["__typename"] == "ValidationError"  # a refusal gives its reason
    declined = call(app, secretary, DECIDE, e=entry["id"], yes=False, why="不在本社区居住")
    assert declined == {"__typename": "Enrolment", "status": "DECLINED", "responder": None}
    with Session(engine) as session:
        assert session.scalars(select(Responder).where(Responder.phone == NEWCOMER)).all() == []
    # Another community's secretary does not see it.
    other = make_user(engine, clock, Role.COMMUNITY_SECRETARY, tiny_bundle.communities[1].code)
    assert call(app, other, "{ enrolments(status: null) { totalCount } }") == {"totalCount": 0}
