"""Users of each role for tests, created through the same services the CLI uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from mobilize.auth.actor import SYSTEM
from mobilize.auth.users import create_user, issue_token, resolve_place
from mobilize.clock import Clock
from mobilize.db import make_sessionmaker, transaction
from mobilize.models import Community, District, Leave, Responder, Role, Street, Unit


def make_user(
    engine: Engine, clock: Clock, role: Role, scope: str | None, name: str | None = None
) -> str:
    """A user with one role binding; returns a fresh bearer token."""
    with transaction(make_sessionmaker(engine)) as session:
        place = resolve_place(session, role=role, scope=scope)
        user = create_user(
            session, actor=SYSTEM, clock=clock, name=name or role.value, places=[place]
        )
        return issue_token(session, actor=SYSTEM, clock=clock, user_id=user.id, label="test").secret


@dataclass
class Cast:
    """One user of each role over the small test district, and what they are bound to."""

    admin: str
    district_commander: str
    street_commander: str
    other_street_commander: str
    community_secretary: str
    reviewer: str
    responder: str
    unit_organiser: str
    street: str
    other_street: str
    community: str
    responder_code: str

    def token(self, role: str) -> str:
        return str(getattr(self, role))


def cast(engine: Engine, clock: Clock) -> Cast:
    with Session(engine) as session:
        district = session.scalars(select(District.code)).one()
        streets = session.scalars(select(Street.code).order_by(Street.code)).all()
        community = session.scalars(
            select(Community.code)
            .join(Street)
            .where(Street.code == streets[0])
            .order_by(Community.code)
        ).first()
        responder = session.scalars(
            select(Responder.code)
            .where(Responder.team_id.is_not(None), Responder.home_grid_id.is_(None))
            .order_by(Responder.code)
        ).first()
        if responder is None:
            responder = session.scalars(select(Responder.code).order_by(Responder.code)).first()
        unit = session.scalars(select(Unit.code).order_by(Unit.code)).first()
    assert community and responder and unit
    return Cast(
        admin=make_user(engine, clock, Role.ADMIN, district),
        district_commander=make_user(engine, clock, Role.DISTRICT_COMMANDER, district),
        street_commander=make_user(engine, clock, Role.STREET_COMMANDER, streets[0]),
        other_street_commander=make_user(engine, clock, Role.STREET_COMMANDER, streets[1]),
        community_secretary=make_user(engine, clock, Role.COMMUNITY_SECRETARY, community),
        reviewer=make_user(engine, clock, Role.REVIEWER, district),
        responder=make_user(engine, clock, Role.RESPONDER, responder),
        unit_organiser=make_user(engine, clock, Role.UNIT_ORGANISER, unit),
        street=streets[0],
        other_street=streets[1],
        community=community,
        responder_code=responder,
    )


def away_from_now(engine: Engine, clock: Clock, who: Any) -> None:
    """Setup: the responders `who` selects are on leave from now on, with no end."""
    now = clock.now()
    with transaction(make_sessionmaker(engine)) as session:
        ids = session.scalars(select(Responder.id).where(who)).all()
        if not ids:
            return
        session.execute(
            insert(Leave),
            [
                {
                    "responder_id": pk,
                    "starts_at": now,
                    "ends_at": None,
                    "reason": "other",
                    "note": "test setup",
                    "recorded_by": "test",
                    "recorded_at": now,
                }
                for pk in ids
            ],
        )
