"""Helpers for wartime tests: command-centre actors and a district ready to switch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.auth.users import authenticate
from mobilize.bundle import Bundle
from mobilize.clock import Clock
from mobilize.db import make_sessionmaker, transaction
from mobilize.mobilisation.outcome import Outcome
from mobilize.models import HOLDING, Assignment, District, Mobilisation, Role, Street

T = TypeVar("T")


def district_commander(engine: Engine) -> Actor:
    with Session(engine) as session:
        did = session.scalars(select(District.id)).one()
    return Actor(
        user_id=1,
        name="区指挥中心",
        address="10.0.0.9",
        bindings=(Binding(Role.DISTRICT_COMMANDER, did, did),),
    )


def street_commander(engine: Engine, code: str) -> Actor:
    with Session(engine) as session:
        street = session.scalars(select(Street).where(Street.code == code)).one()
    return Actor(
        user_id=2,
        name=f"街道 {code}",
        address="10.0.0.8",
        bindings=(Binding(Role.STREET_COMMANDER, street.id, street.district_id),),
    )


def actor_for_token(engine: Engine, clock: Clock, token: str) -> Actor:
    with Session(engine) as session:
        return authenticate(session, secret=token, clock=clock, address="10.0.0.7")


def phone(a: Assignment) -> Actor:
    """The phone of the person holding assignment `a`."""
    return Actor(
        user_id=1000 + a.responder_id,
        name=f"r{a.responder_id}",
        bindings=(Binding(Role.RESPONDER, a.responder_id, 1),),
    )


def write(engine: Engine, fn: Callable[..., T], **kwargs: Any) -> T:
    """Call a domain service in its own committed transaction, as the API would."""
    with transaction(make_sessionmaker(engine)) as session:
        return fn(session, **kwargs)


def activate_now(engine: Engine, *, clock: Clock, **kwargs: object) -> Outcome:
    """Activate and solve here, as the API and a worker would between them."""
    from mobilize.mobilisation import switch

    return switch.activate_in_process(
        make_sessionmaker(engine), clock=clock, display_tz="Asia/Shanghai", worker="test", **kwargs
    )


def activated(
    engine: Engine, bundle: Bundle, clock: Clock, kind: str = "epidemic", scope: str = "district"
) -> Mobilisation:
    """Import `bundle` and switch `scope` (the whole district by default) to wartime, as the
    district's commander."""
    from mobilize.districts.importer import import_district
    from mobilize.mobilisation.area import AreaScope

    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=bundle, actor="test", clock=clock)
    return activate_now(
        engine,
        actor=district_commander(engine),
        clock=clock,
        scope=AreaScope.parse(scope),
        kind=kind,
        title="演练",
    ).mobilisation


def check_in_at_centre(engine: Engine, a: Assignment, clock: Clock) -> None:
    """The person checks in standing at their grid's centre, as their phone would."""
    from mobilize.mobilisation import field
    from mobilize.models import Grid

    with Session(engine) as session:
        grid = session.get(Grid, a.grid_id)
        assert grid is not None
        centre = grid.centre
    write(
        engine,
        field.check_in,
        actor=phone(a),
        clock=clock,
        assignment_id=a.id,
        lon=centre.x,
        lat=centre.y,
    )


def grid_of(assignment: Assignment) -> int:
    """The micro-grid a placed assignment holds (every placement of a solved plan has one)."""
    assert assignment.grid_id is not None
    return assignment.grid_id


def holders(engine: Engine, grid_id: int) -> list[Assignment]:
    """Who holds a slot in `grid_id` now, by assignment id."""
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Assignment)
                .where(
                    Assignment.grid_id == grid_id,
                    Assignment.status.in_([s.value for s in HOLDING]),
                )
                .order_by(Assignment.id)
            )
        )
