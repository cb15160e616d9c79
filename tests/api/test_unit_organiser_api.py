"""The unit organiser keeps their unit's cadres: sees them against the pairings' quota, records
their leave, enrols a new one; another unit's people are not theirs."""

from __future__ import annotations

from collections.abc import Iterator

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
from mobilize.models import Responder, Role, Unit
from tests.api.test_editing_api import ADD, call
from tests.api.test_leave_api import LEAVE
from tests.people import make_user

ROSTER = """query($u: ID!) { unitRoster(unit: $u) { quota registered onLeave available
  pairings { communityCode quota } cadres { code } } }"""


@pytest.fixture
def app(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    with TestClient(create_app(engine=engine, clock=clock)) as client:
        yield client


def test_an_organiser_keeps_their_units_cadres_against_its_quota(
    app: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    unit, other = tiny_bundle.units[0].code, tiny_bundle.units[1].code
    quota = sum(p.wartime_quota for p in tiny_bundle.pairings if p.unit == unit)
    cadres = sorted(
        r.code for r in tiny_bundle.responders if r.kind == "sunk_cadre" and r.unit == unit
    )
    with Session(engine) as session:
        ids = dict(session.execute(select(Unit.code, Unit.id)).all())
        people = dict(session.execute(select(Responder.code, Responder.id)).all())
    organiser = make_user(engine, clock, Role.UNIT_ORGANISER, unit)
    u = to_global_id("Unit", ids[unit])
    seen = call(app, organiser, ROSTER, u=u)
    assert (seen["quota"], seen["registered"], seen["onLeave"], seen["available"]) == (
        quota, len(cadres), 0, len(cadres),
    )  # fmt: skip
    assert [c["code"] for c in seen["cadres"]] == cadres
    assert sorted(p["communityCode"] for p in seen["pairings"]) == sorted(
        p.community for p in tiny_bundle.pairings if p.unit == unit
    )
    # One of them is away on a course; a new cadre joins the unit's list.
    leave = call(app, organiser, LEAVE, r=to_global_id("Responder", people[cadres[0]]),
                 reason="TRAVELLING")  # fmt: skip
    assert leave["__typename"] == "Leave"
    person = {"name": "周敏", "phone": "13600001111", "kind": "SUNK_CADRE", "unit": u}
    assert call(app, organiser, ADD, code="R-U-NEW", person=person)["__typename"] == "Responder"
    seen = call(app, organiser, ROSTER, u=u)
    assert (seen["registered"], seen["onLeave"], seen["available"]) == (
        len(cadres) + 1, 1, len(cadres),
    )  # fmt: skip
    # Another unit: its roster is not theirs to see, nor is enrolling its cadres.
    body = app.post(
        "/graphql",
        json={"query": ROSTER, "variables": {"u": to_global_id("Unit", ids[other])}},
        headers={"Authorization": f"Bearer {organiser}"},
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    foreign = {**person, "phone": "13600002222", "unit": to_global_id("Unit", ids[other])}
    refused = call(app, organiser, ADD, code="R-U-OTHER", person=foreign)
    assert refused["__typename"] in ("ForbiddenError", "ValidationError")
    with Session(engine) as session:
        assert session.scalars(select(Responder).where(Responder.code == "R-U-OTHER")).all() == []
