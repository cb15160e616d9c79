"""A unit's roster as its organiser keeps it: the cadres it sinks in wartime against what its
pairings ask (结对 quota), who of them is away now, and who could go."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.auth.scope import visible
from mobilize.errors import NotFound
from mobilize.models import Community, Pairing, Responder, ResponderKind, Unit
from mobilize.peacetime.availability import away_at


@dataclass(frozen=True)
class PairingNeed:
    community_code: str
    community_name: str
    quota: int


@dataclass(frozen=True)
class Roster:
    unit: Unit
    pairings: list[PairingNeed]
    cadres: list[Responder]
    away: set[int]  # responder ids on leave now

    @property
    def quota(self) -> int:
        return sum(p.quota for p in self.pairings)

    @property
    def available(self) -> int:
        return len(self.cadres) - len(self.away)


def unit_roster(session: Session, *, actor: Actor, unit_id: int, now: datetime) -> Roster:
    unit = session.scalar(
        select(Unit).where(Unit.id == unit_id, Unit.current(), visible(actor, Unit))
    )
    if unit is None:
        raise NotFound(f"没有这个单位 No unit {unit_id}")
    pairings = [
        PairingNeed(code, name, quota)
        for code, name, quota in session.execute(
            select(Community.code, Community.name, Pairing.wartime_quota)
            .join(Community, Community.id == Pairing.community_id)
            .where(Pairing.unit_id == unit.id, Pairing.current())
            .order_by(Community.code)
        )
    ]
    cadres = list(
        session.scalars(
            select(Responder)
            .where(
                Responder.unit_id == unit.id,
                Responder.kind == ResponderKind.SUNK_CADRE.value,
                Responder.current(),
            )
            .order_by(Responder.code)
        )
    )
    away = set(
        session.scalars(
            select(Responder.id).where(Responder.id.in_([c.id for c in cadres]), away_at(now))
        )
    )
    return Roster(unit, pairings, cadres, away)
