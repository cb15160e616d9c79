"""请假/销假 through the API: a person on leave is left out of a call-up exactly while the leave
covers the moment, and called again after it, by itself (on the injected clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
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
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import Assignment, Event, Responder, Role
from tests.api.test_editing_api import call
from tests.people import make_user
from tests.wartime import activate_now, district_commander, write

LEAVE = """mutation($r: ID!, $reason: LeaveReason!, $ends: DateTime, $starts: DateTime) {
  recordLeave(responder: $r, reason: $reason, endsAt: $ends, startsAt: $starts) {
    __typename
    ... on Leave { reason startsAt endsAt }
    ... on Error { message }
    ... on ValidationError { field }
  } }"""
BACK = """mutation($r: ID!) { backOnDuty(responder: $r) {
  __typename ... on Responder { onLeave } ... on Error { message } } }"""
ON_LEAVE = """query($r: ID!) { node(id: $r) { ... on Responder { onLeave leaves { reason } } } }"""


@pytest.fixture
def app(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        yield client


def a_member(engine: Engine, bundle: Bundle) -> tuple[int, str]:
    """A micro-grid member (always called, to their own grid), and their code."""
    code = next(r.code for r in bundle.responders if r.kind == "micro_grid_member")
    with Session(engine) as session:
        return session.scalars(select(Responder.id).where(Responder.code == code)).one(), code


def called(engine: Engine, clock: ManualClock) -> set[int]:
    """Activate the whole district now; who was called. Then stand it down."""
    m = activate_now(
        engine,
        actor=district_commander(engine),
        clock=clock,
        scope=AreaScope.parse("district"),
        kind="epidemic",
        title="演练",
    ).mobilisation
    with Session(engine) as session:
        ids = set(
            session.scalars(
                select(Assignment.responder_id).where(Assignment.mobilisation_id == m.id)
            )
        )
    write(engine, switch.stand_down, actor=district_commander(engine), clock=clock,
          mobilisation_id=m.id)  # fmt: skip
    return ids


def test_a_person_on_leave_is_skipped_and_called_again_when_it_ends(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    pk, code = a_member(engine, tiny_bundle)
    token = make_user(engine, clock, Role.RESPONDER, code)  # the person, on their own phone
    r = to_global_id("Responder", pk)
    ends = clock.now() + timedelta(days=3)
    done = call(app, token, LEAVE, r=r, reason="ILL", ends=ends.isoformat())
    assert done["__typename"] == "Leave" and done["reason"] == "ILL"
    assert pk not in called(engine, clock)
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    assert call(app, commander, ON_LEAVE, r=r) == {"onLeave": True, "leaves": [{"reason": "ILL"}]}
    # Three days on, the leave is over by itself: called again.
    clock.advance(timedelta(days=3, minutes=1))
    assert call(app, commander, ON_LEAVE, r=r)["onLeave"] is False
    assert pk in called(engine, clock)


def test_back_on_duty_ends_an_open_leave_and_overlaps_are_refused(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    pk, code = a_member(engine, tiny_bundle)
    home = next(r.home_grid for r in tiny_bundle.responders if r.code == code)
    parent = {g.code: g.parent for g in tiny_bundle.grids}
    community = parent[parent[home or ""]]  # micro-grid -> general grid -> community
    secretary = make_user(engine, clock, Role.COMMUNITY_SECRETARY, community)
    r = to_global_id("Responder", pk)
    assert call(app, secretary, LEAVE, r=r, reason="CARING")["__typename"] == "Leave"
    clash = call(app, secretary, LEAVE, r=r, reason="TRAVELLING")
    assert (clash["__typename"], clash["field"]) == ("ValidationError", "startsAt")
    assert pk not in called(engine, clock)
    clock.advance(timedelta(hours=5))
    assert call(app, secretary, BACK, r=r) == {"__typename": "Responder", "onLeave": False}
    assert pk in called(engine, clock)
    again = call(app, secretary, BACK, r=r)
    assert again["__typename"] == "ValidationError"
    with Session(engine) as session:
        kinds = session.scalars(
            select(Event.kind)
            .where(Event.kind.in_(["responder.leave", "responder.back"]))
            .order_by(Event.seq)
        ).all()
    assert kinds == ["responder.leave", "responder.back"]


def test_a_leave_for_someone_outside_your_place_is_refused(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    pk, code = a_member(engine, tiny_bundle)
    other = next(
        r.code for r in tiny_bundle.responders if r.kind == "micro_grid_member" and r.code != code
    )
    token = make_user(engine, clock, Role.RESPONDER, other)  # another person's phone
    refused: dict[str, Any] = call(app, token, LEAVE, r=to_global_id("Responder", pk), reason="ILL")
    assert refused["__typename"] in ("NotFoundError", "ForbiddenError")


def test_a_commitment_and_what_was_done_about_it_are_on_record(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    pk, code = a_member(engine, tiny_bundle)
    token = make_user(engine, clock, Role.RESPONDER, code)
    r = to_global_id("Responder", pk)
    made = call(
        app,
        token,
        """mutation($r: ID!) { recordCommitment(responder: $r, year: 2026,
        promise: "每周巡查楼栋一次") { __typename ... on Commitment { id year promise } } }""",
        r=r,
    )
    assert made["year"] == 2026 and made["promise"] == "每周巡查楼栋一次"
    kept = call(
        app,
        token,
        """mutation($c: ID!) { recordFulfilment(commitment: $c, fulfilment: "全年巡查 48 次")
        { __typename ... on Commitment { fulfilment fulfilledAt } } }""",
        c=made["id"],
    )
    assert kept["fulfilment"] == "全年巡查 48 次" and kept["fulfilledAt"] is not None
    listed = call(app, token, "query($r: ID!) { node(id: $r) { ... on Responder { "
                  "commitments { year promise fulfilment } } } }", r=r)  # fmt: skip
    assert listed == {
        "commitments": [
            {"year": 2026, "promise": "每周巡查楼栋一次", "fulfilment": "全年巡查 48 次"}
        ]
    }
    with Session(engine) as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("commitment.%")).order_by(Event.seq)
        ).all()
    assert kinds == ["commitment.made", "commitment.kept"]
