"""Which communities a mobilisation covers, and whether the actor may switch them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.errors import Forbidden, InvalidInput
from mobilize.models import Community, District, Role, Street


@dataclass(frozen=True)
class AreaScope:
    """`district`, streets by code and communities by code; together, a set of communities."""

    district: bool = False
    streets: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AreaScope:
        """'district', 'street:S01', 'community:S01C001,community:S01C002' (comma-separated)."""
        district, streets, communities = False, [], []
        for item in filter(None, (part.strip() for part in text.split(","))):
            kind, _, code = item.partition(":")
            if kind == "district" and not code:
                district = True
            elif kind == "street" and code:
                streets.append(code)
            elif kind == "community" and code:
                communities.append(code)
            else:
                raise InvalidInput(
                    "scope", f"{item!r}: use district, street:CODE or community:CODE"
                )
        if not (district or streets or communities):
            raise InvalidInput("scope", "name the district, a street or a community")
        return cls(district, tuple(streets), tuple(communities))

    def as_dict(self) -> dict[str, Any]:
        return {
            "district": self.district,
            "streets": list(self.streets),
            "communities": list(self.communities),
        }


@dataclass(frozen=True)
class ResolvedArea:
    district: District
    community_ids: tuple[int, ...] = field(default_factory=tuple)


def _district_for(session: Session, actor: Actor) -> District:
    ids = {b.district_id for b in actor.bindings if b.district_id is not None}
    if len(ids) == 1:
        district = session.get(District, next(iter(ids)))
    else:
        districts = session.scalars(select(District).order_by(District.id)).all()
        district = districts[0] if len(districts) == 1 else None
    if district is None:
        raise InvalidInput("scope", "cannot tell which district is meant")
    return district


def resolve_area(session: Session, *, actor: Actor, scope: AreaScope) -> ResolvedArea:
    """The communities `scope` names, if `actor` may switch them all: district commanders any
    in their district, street commanders only inside their own street."""
    district = _district_for(session, actor)
    chosen: set[int] = set()
    if scope.district:
        chosen |= set(
            session.scalars(
                select(Community.id).where(
                    Community.district_id == district.id, Community.current()
                )
            )
        )
    for code in scope.streets:
        street = session.scalar(
            select(Street.id).where(
                Street.district_id == district.id, Street.code == code, Street.current()
            )
        )
        if street is None:
            raise InvalidInput("scope", f"no street {code!r} in {district.code}")
        chosen |= set(
            session.scalars(
                select(Community.id).where(Community.street_id == street, Community.current())
            )
        )
    for code in scope.communities:
        community = session.scalar(
            select(Community.id).where(
                Community.district_id == district.id,
                Community.code == code,
                Community.current(),
            )
        )
        if community is None:
            raise InvalidInput("scope", f"no community {code!r} in {district.code}")
        chosen.add(community)
    if not chosen:
        raise InvalidInput("scope", "the scope holds no community")
    if not _may_switch(session, actor, district.id, chosen):
        raise Forbidden("activateMobilisation in this scope")
    return ResolvedArea(district=district, community_ids=tuple(sorted(chosen)))


def _may_switch(session: Session, actor: Actor, district_id: int, communities: set[int]) -> bool:
    for binding in actor.bindings:
        if binding.role is Role.DISTRICT_COMMANDER and binding.scope_id == district_id:
            return True
    streets = {b.scope_id for b in actor.bindings if b.role is Role.STREET_COMMANDER}
    if not streets:
        return False
    outside = session.scalar(
        select(Community.id)
        .where(Community.id.in_(communities), Community.street_id.not_in(streets))
        .limit(1)
    )
    return outside is None
