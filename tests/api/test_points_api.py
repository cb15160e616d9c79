"""One ledger for all service (积分): a volunteer earns points in a weekly patrol and in a
mobilisation, redeems some; the balance, the phone and the export agree; a redemption past
the balance is refused."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

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
from mobilize.errors import InvalidInput
from mobilize.mobilisation import switch
from mobilize.mobilisation.area import AreaScope
from mobilize.models import (
    Activity,
    ActivityKind,
    Assignment,
    Community,
    Event,
    Grid,
    Responder,
    Role,
    ServiceRecord,
)
from mobilize.peacetime import activities, ledger
from tests.api.test_editing_api import call
from tests.people import make_user
from tests.wartime import activate_now, check_in_at_centre, district_commander, write

SCHEDULE = """mutation($c: ID!, $g: ID!, $s: DateTime!, $e: DateTime!) {
  scheduleActivity(community: $c, grid: $g, kind: PATROL, title: "微网格夜间巡逻",
                   startsAt: $s, endsAt: $e, repeatWeeks: 2) {
    __typename ... on ScheduledActivities { activities { id series status startsAt } }
    ... on Error { message } } }"""
ACT = """mutation($a: ID!) { %s(activity: $a) {
  __typename ... on Activity { status } ... on Error { message } } }"""
ATTEND = """mutation($a: ID!, $r: ID!) { recordAttendance(activity: $a,
  attended: [{responder: $r, hours: 2}]) {
  __typename ... on Activity { status people { how attended hours } }
  ... on Error { message } } }"""
REDEEM = """mutation($r: ID!, $p: Float!) {
  redeemPoints(responder: $r, points: $p, what: "超市购物券") {
  __typename ... on ServiceBalance { points earned redeemed }
  ... on Error { message } ... on ValidationError { field } } }"""


@pytest.fixture
def app(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        yield client


def test_points_from_a_patrol_and_a_mobilisation_redeemed_and_exported(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    member = next(r for r in tiny_bundle.responders if r.kind == "micro_grid_member")
    parent = {g.code: g.parent for g in tiny_bundle.grids}
    community_code = parent[parent[member.home_grid or ""]]
    with Session(engine) as session:
        pk = session.scalars(select(Responder.id).where(Responder.code == member.code)).one()
        grid = session.scalars(select(Grid.id).where(Grid.code == member.home_grid)).one()
        community = session.scalars(
            select(Community.id).where(Community.code == community_code)
        ).one()
    district = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    secretary = make_user(engine, clock, Role.COMMUNITY_SECRETARY, community_code)
    phone = make_user(engine, clock, Role.RESPONDER, member.code)
    r = to_global_id("Responder", pk)
    rule = call(app, district, "mutation { setPointsRule(pointsPerHour: 2, pointsPerActivity: 5)"
                " { __typename ... on PointsRule { pointsPerHour } } }")  # fmt: skip
    assert rule == {"__typename": "PointsRule", "pointsPerHour": 2.0}

    # A weekly patrol of their micro-grid: two evenings, one series.
    start = clock.now() + timedelta(hours=2)
    scheduled = call(
        app,
        secretary,
        SCHEDULE,
        c=to_global_id("Community", community),
        g=to_global_id("Grid", grid),
        s=start.isoformat(),
        e=(start + timedelta(hours=2)).isoformat(),
    )["activities"]
    assert len(scheduled) == 2 and scheduled[0]["series"] == scheduled[1]["series"] is not None
    first = scheduled[0]["id"]
    assert call(app, phone, ACT % "signUp", a=first)["status"] == "SCHEDULED"
    clock.advance(timedelta(hours=4))
    held = call(app, secretary, ATTEND, a=first, r=r)
    assert held == {
        "__typename": "Activity",
        "status": "DONE",
        "people": [{"how": "signed_up", "attended": True, "hours": 2.0}],
    }
    assert call(app, secretary, ACT % "checkActivity", a=first)["status"] == "CHECKED"
    twice = call(app, secretary, ACT % "checkActivity", a=first)
    assert twice["__typename"] == "ValidationError"  # credited once only

    # A mobilisation: checked in 25 minutes after T0, stood down 90 minutes later.
    m = activate_now(
        engine,
        actor=district_commander(engine),
        clock=clock,
        scope=AreaScope.parse("district"),
        kind="epidemic",
        title="疫情防控",
    ).mobilisation
    with Session(engine) as session:
        mine = session.scalars(
            select(Assignment).where(
                Assignment.mobilisation_id == m.id, Assignment.responder_id == pk
            )
        ).one()
    clock.advance(timedelta(minutes=25))
    check_in_at_centre(engine, mine, clock)
    clock.advance(timedelta(minutes=90))
    write(engine, switch.stand_down, actor=district_commander(engine), clock=clock,
          mobilisation_id=m.id)  # fmt: skip

    # Earned: the patrol 2 h x 2 + 5 = 9; the mobilisation 1.5 h x 2 + 5 = 8. Redeem 10.
    spent = call(app, secretary, REDEEM, r=r, p=10)
    assert spent == {
        "__typename": "ServiceBalance",
        "points": 7.0,
        "earned": 17.0,
        "redeemed": 10.0,
    }
    refused = call(app, secretary, REDEEM, r=r, p=8)
    assert (refused["__typename"], refused["field"]) == ("ValidationError", "points")
    assert "only 7 points left" in refused["message"]

    service = call(app, phone, "{ myService { hours earned redeemed points "
                   "entries { source title hours points } } }")  # fmt: skip
    assert (service["hours"], service["earned"], service["redeemed"], service["points"]) == (
        3.5,
        17.0,
        10.0,
        7.0,
    )
    assert [(e["source"], e["points"]) for e in service["entries"]] == [
        ("activity", 9.0), ("mobilisation", 8.0), ("redemption", -10.0),
    ]  # fmt: skip

    # The community's export: the same lines, adding up to the same balance.
    response = app.get(
        "/service/ledger.csv",
        params={"community": to_global_id("Community", community)},
        headers={"Authorization": f"Bearer {secretary}"},
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    his = [row for row in rows if row["编号 Code"] == member.code]
    assert [float(row["积分 Points"]) for row in his] == [9.0, 8.0, -10.0]
    assert sum(float(row["积分 Points"]) for row in his) == 7.0
    assert sum(float(row["时长 Hours"]) for row in his) == 3.5
    workbook = app.get(
        "/service/ledger.xlsx",
        params={"community": to_global_id("Community", community)},
        headers={"Authorization": f"Bearer {secretary}"},
    )
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"
    with Session(engine) as session:
        kinds = session.scalars(
            select(Event.kind).where(Event.kind.like("points.%")).order_by(Event.seq)
        ).all()
    assert kinds == ["points.rule", "points.redeemed"]


def test_two_redemptions_at_once_never_spend_the_same_points(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    """A balance of 9 and two clerks redeeming 6 each at the same moment: one lands."""
    member = next(r for r in tiny_bundle.responders if r.kind == "micro_grid_member")
    with transaction(make_sessionmaker(engine)) as session:
        pk = session.scalars(select(Responder.id).where(Responder.code == member.code)).one()
        session.add(
            ServiceRecord(
                mobilisation_id=None,
                activity_id=_an_activity(session, clock),
                responder_id=pk,
                checked_in_at=clock.now(),
                released_at=clock.now(),
                hours=2.0,
                points=9.0,
            )
        )
    actor = district_commander(engine)
    barrier = threading.Barrier(2)

    def spend() -> object:
        barrier.wait()
        try:
            return write(engine, ledger.redeem, actor=actor, clock=clock, responder_id=pk,
                         points=6.0, what="购物券")  # fmt: skip
        except InvalidInput as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: spend(), range(2)))
    assert sum(isinstance(o, InvalidInput) for o in outcomes) == 1
    with Session(engine) as session:
        assert ledger.balance_of(session, pk).points == 3.0


def _an_activity(session: Session, clock: ManualClock) -> int:
    community = session.scalars(select(Community)).first()
    assert community is not None
    activity = Activity(
        district_id=community.district_id,
        community_id=community.id,
        kind="patrol",
        title="巡逻",
        starts_at=clock.now() - timedelta(hours=3),
        ends_at=clock.now() - timedelta(hours=1),
        status="checked",
        created_by="test",
        created_at=clock.now(),
    )
    session.add(activity)
    session.flush()
    return activity.id


def test_an_activity_checked_twice_at_once_is_credited_once(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    community = tiny_bundle.communities[0]
    with Session(engine) as session:
        community_id = session.scalars(
            select(Community.id).where(Community.code == community.code)
        ).one()
        people = session.scalars(
            select(Responder.id)
            .join(Grid, Grid.id == Responder.home_grid_id)
            .where(Grid.community_id == community_id)
            .order_by(Responder.id)
            .limit(3)
        ).all()
    keeper = district_commander(engine)
    start = clock.now() - timedelta(hours=3)
    [held] = write(engine, activities.schedule, actor=keeper, clock=ManualClock(start),
                   community_id=community_id, kind=ActivityKind.PATROL, title="巡逻",
                   starts_at=start + timedelta(minutes=5),
                   ends_at=start + timedelta(hours=2))  # fmt: skip
    write(engine, activities.record_attendance, actor=keeper, clock=clock, activity_id=held.id,
          attended=[(pk, 2.0) for pk in people])  # fmt: skip
    barrier = threading.Barrier(2)

    def check() -> object:
        barrier.wait()
        try:
            return write(engine, activities.check, actor=keeper, clock=clock,
                         activity_id=held.id)  # fmt: skip
        except InvalidInput as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda _: check(), range(2)))
    assert sum(isinstance(o, InvalidInput) for o in outcomes) == 1
    with Session(engine) as session:
        credited = session.scalars(
            select(ServiceRecord.points).where(ServiceRecord.activity_id == held.id)
        ).all()
    assert credited == [9.0] * len(people)  # 2 h x 2 + 5, once each
