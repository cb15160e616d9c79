"""Editing the district between imports, by the people who own the data: a household's tags,
size and address; a person (add, change, retire); a unit's pairing and quota; a team and its
members. Each edit is checked by the rules the importer applies (`bundle.rules`), acts only
within the caller's place under the roles the policy grants it (`auth.policy.editors`), and
writes one event naming what changed from what to what. Nothing is deleted: people and
pairings are retired, as an update retires them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import Actor
from mobilize.auth.policy import editors
from mobilize.auth.scope import in_place, person_in_place, visible
from mobilize.bundle.rules import place_problems, responder_problems
from mobilize.clock import Clock
from mobilize.districts.update import DistrictInWartime
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.mobilisation.locks import lock_people
from mobilize.models import (
    HOLDING,
    LIVE,
    Assignment,
    Community,
    Grid,
    Household,
    HouseholdTag,
    Mobilisation,
    Pairing,
    Responder,
    ResponderKind,
    Team,
    TeamKind,
    Unit,
)
from mobilize.models.base import Origin


def _one(session: Session, model: Any, pk: int, actor: Actor, noun: str) -> Any:
    """A current row the caller may see, locked for the edit; otherwise not found."""
    row = session.scalar(
        select(model)
        .where(model.id == pk, model.current(), visible(actor, model))
        .with_for_update()
    )
    if row is None:
        raise NotFound(f"没有这个{noun} No {model.__name__.lower()} {pk}")
    return row


def _community_of_grid(session: Session, grid_id: int) -> int:
    return session.execute(select(Grid.community_id).where(Grid.id == grid_id)).scalar_one()


def _in_place(session: Session, actor: Actor, community_id: int, what: str) -> None:
    if not session.scalar(select(in_place(actor, community_id))):
        raise Forbidden(f"{what}: 不在您的范围 outside your place")


def _insert(session: Session, row: Any, field: str, taken: str) -> None:
    """Add a row whose key someone may be adding at this very moment: the loser of the race
    hears the key is taken (as if it had looked a moment later), not an internal error."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise InvalidInput(field, taken) from exc


def _changes(row: Any, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set `values` on `row`; what changed, as field -> [before, after]."""
    changed: dict[str, list[Any]] = {}
    for key, value in values.items():
        before = getattr(row, key)
        if before != value:
            changed[key] = [before, value]
            setattr(row, key, value)
    return changed


def _event(
    session: Session,
    clock: Clock,
    actor: Actor,
    kind: str,
    subject: str,
    code: str,
    payload: dict[str, Any] | None = None,
) -> None:
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind=kind,
        subject_type=subject,
        subject_id=code,
        payload={"code": code, **(payload or {})},
    )


# -- households ---------------------------------------------------------------------------


def edit_household(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    household_id: int,
    tags: Sequence[HouseholdTag] | None = None,
    size: int | None = None,
    address: str | None = None,
    building_unit: str | None = None,
    door: str | None = None,
) -> Household:
    """A household's tags, size, address, unit and door (not its place: that is structure,
    and comes with the grid's polygon or an import)."""
    keeper = editors(actor, "Mutation.editHousehold")
    household: Household = _one(session, Household, household_id, keeper, "住户")
    _in_place(
        session, keeper, _community_of_grid(session, household.micro_grid_id), "editHousehold"
    )
    values: dict[str, Any] = {}
    if tags is not None:
        values["tags"] = HouseholdTag.mask(tags)
    if size is not None:
        if size < 0:
            raise InvalidInput("size", f"{size} is negative")
        values["size"] = size
    for name, value in (("address", address), ("building_unit", building_unit), ("door", door)):
        if value is not None:
            values[name] = validation.text(name, value, max_len=300, min_len=0)
    unit = values.get("building_unit", household.building_unit)
    for field, message in place_problems(
        unit, values.get("door", household.door), values.get("address", household.address)
    ):
        raise InvalidInput("buildingUnit" if field == "unit" else field, message)
    changed = _changes(household, values)
    if "tags" in changed:
        changed["tags"] = [[t.value for t in HouseholdTag.unmask(m)] for m in changed["tags"]]
    if changed:
        _event(session, clock, actor, "household.edited", "household", household.code, changed)
    return household


# -- people -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonValues:
    """What a person is, as given: references by id (None: none)."""

    name: str
    phone: str
    kind: ResponderKind
    unit_id: int | None = None
    team_id: int | None = None
    home_grid_id: int | None = None
    lon: float | None = None
    lat: float | None = None
    skills: tuple[str, ...] = ()


def _check_person(
    session: Session, district_id: int, v: PersonValues, responder_id: int | None = None
) -> None:
    """The importer's rules for a person (`bundle.rules.responder_problems`), on ids; and one
    phone, one person (it is how they sign in)."""
    holder = session.execute(
        select(Responder.name, Responder.code).where(
            Responder.district_id == district_id,
            Responder.phone == v.phone,
            Responder.current(),
            Responder.id != (responder_id or -1),
        )
    ).first()
    if holder is not None:
        raise InvalidInput("phone", f"{v.phone!r} is {holder.name}'s already ({holder.code})")

    def code_of(model: Any, pk: int | None) -> str | None:
        if pk is None:
            return None
        return session.scalar(
            select(model.code).where(
                model.id == pk, model.district_id == district_id, model.current()
            )
        )

    unit, team, home = (
        code_of(Unit, v.unit_id),
        code_of(Team, v.team_id),
        code_of(Grid, v.home_grid_id),
    )
    level = session.scalar(select(Grid.level).where(Grid.id == v.home_grid_id)) if home else None
    problems = responder_problems(
        kind=v.kind.value,
        phone=v.phone,
        unit=unit or (str(v.unit_id) if v.unit_id is not None else None),
        unit_known=unit is not None,
        team=team or (str(v.team_id) if v.team_id is not None else None),
        team_known=team is not None,
        home_grid=home or (str(v.home_grid_id) if v.home_grid_id is not None else None),
        home_level=level,
    )
    for field, message in problems:
        raise InvalidInput({"home_grid": "homeGrid"}.get(field, field), message)
    if v.lon is not None or v.lat is not None:
        if v.lon is None or v.lat is None:
            raise InvalidInput("location", "give both longitude and latitude")
        validation.point("location", v.lon, v.lat)


def add_responder(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    district_id: int,
    code: str,
    values: PersonValues,
) -> Responder:
    """Enrol a person (a new volunteer, a cadre who joined a unit) in the caller's place."""
    keeper = editors(actor, "Mutation.addResponder")
    code = validation.text("code", code, max_len=64)
    name = validation.text("name", values.name, max_len=200)
    lock_people(session, district_id)
    taken = session.scalar(
        select(Responder.retired_at).where(
            Responder.district_id == district_id, Responder.code == code
        )
    )
    if taken is not None or session.scalar(
        select(func.count()).where(Responder.district_id == district_id, Responder.code == code)
    ):
        retired = " (a retired person's: codes are never reused)" if taken is not None else ""
        raise InvalidInput("code", f"{code!r} is already used{retired}")
    _check_person(session, district_id, values)
    responder = Responder(
        district_id=district_id,
        code=code,
        name=name,
        phone=values.phone,
        kind=values.kind.value,
        unit_id=values.unit_id,
        team_id=values.team_id,
        home_grid_id=values.home_grid_id,
        geom=shapely.Point(values.lon, values.lat) if values.lon is not None else None,
        skills=list(values.skills),
        seniority=0,
        origin=Origin.API,
    )
    _insert(session, responder, "code", f"{code!r} is already used")
    if not person_in_place(session, keeper, responder.id):
        raise Forbidden(
            "addResponder: 此人不属于您的范围 this person would belong outside your place"
        )
    _event(
        session,
        clock,
        actor,
        "responder.added",
        "responder",
        code,
        {
            "kind": values.kind.value,
            "unit": values.unit_id,
            "team": values.team_id,
            "home_grid": values.home_grid_id,
        },
    )
    return responder


def edit_responder(
    session: Session, *, actor: Actor, clock: Clock, responder_id: int, values: PersonValues
) -> Responder:
    """Change a person's name, phone, kind, unit, team, home grid, place or skills: within
    the caller's place before and after."""
    keeper = editors(actor, "Mutation.editResponder")
    responder: Responder = _one(session, Responder, responder_id, keeper, "人员")
    if not person_in_place(session, keeper, responder.id):
        raise Forbidden("editResponder: 此人在您的范围以外 this person is outside your place")
    lock_people(session, responder.district_id)
    _check_person(session, responder.district_id, values, responder.id)
    changed = _changes(
        responder,
        {
            "name": validation.text("name", values.name, max_len=200),
            "phone": values.phone,
            "kind": values.kind.value,
            "unit_id": values.unit_id,
            "team_id": values.team_id,
            "home_grid_id": values.home_grid_id,
            "skills": list(values.skills),
        },
    )
    point = shapely.Point(values.lon, values.lat) if values.lon is not None else None
    before = responder.geom
    if (before is None) != (point is None) or (
        before is not None and point is not None and not before.equals(point)
    ):
        responder.geom = point
        changed["location"] = [
            None if before is None else [before.x, before.y],
            None if point is None else [point.x, point.y],
        ]
    session.flush()
    if not person_in_place(session, keeper, responder.id):
        raise Forbidden(
            "editResponder: 不能把人移出您的范围 cannot move a person out of your place"
        )
    if changed:
        _event(session, clock, actor, "responder.edited", "responder", responder.code, changed)
    return responder


def retire_responder(
    session: Session, *, actor: Actor, clock: Clock, responder_id: int, reason: str
) -> Responder:
    """A person leaves the district's roster (moved away, left the unit): kept with their
    history, called up no more. Refused while they hold a slot in a live mobilisation."""
    keeper = editors(actor, "Mutation.retireResponder")
    reason = validation.text("reason", reason, max_len=500)
    responder: Responder = _one(session, Responder, responder_id, keeper, "人员")
    if not person_in_place(session, keeper, responder.id):
        raise Forbidden("retireResponder: 此人在您的范围以外 this person is outside your place")
    holding = session.execute(
        select(Mobilisation.id, Mobilisation.title)
        .join(Assignment, Assignment.mobilisation_id == Mobilisation.id)
        .where(
            Assignment.responder_id == responder.id,
            Assignment.status.in_(HOLDING),
            Mobilisation.status.in_(LIVE),
        )
        .limit(1)
    ).first()
    if holding is not None:
        raise DistrictInWartime(holding.id, holding.title, [f"responders {responder.code}"])
    responder.retired_at = clock.now()
    _event(
        session, clock, actor, "responder.retired", "responder", responder.code, {"reason": reason}
    )
    return responder


# -- pairings and teams -------------------------------------------------------------------


def set_pairing(
    session: Session, *, actor: Actor, clock: Clock, unit_id: int, community_id: int, quota: int
) -> Pairing:
    """Pair a unit with a community, or change its wartime quota (a retired pairing comes
    back as the same row)."""
    keeper = editors(actor, "Mutation.setPairing")
    if quota < 0:
        raise InvalidInput("wartimeQuota", f"{quota} is negative")
    unit = _one(session, Unit, unit_id, keeper, "单位")
    community = _one(session, Community, community_id, keeper, "社区")
    _in_place(session, keeper, community.id, "setPairing")
    if unit.district_id != community.district_id:
        raise InvalidInput("unit", f"unit {unit.code} is of another district")
    pairing = session.scalar(
        select(Pairing)
        .where(Pairing.unit_id == unit.id, Pairing.community_id == community.id)
        .with_for_update()
    )
    label = f"{unit.code}/{community.code}"
    if pairing is None:
        pairing = Pairing(
            district_id=unit.district_id,
            unit_id=unit.id,
            community_id=community.id,
            wartime_quota=quota,
            origin=Origin.API,
        )
        _insert(session, pairing, "unit", f"{label} was paired a moment ago: look again")
        _event(session, clock, actor, "pairing.added", "pairing", label, {"wartime_quota": quota})
        return pairing
    back = pairing.retired_at is not None
    pairing.retired_at = None
    changed = _changes(pairing, {"wartime_quota": quota})
    if back or changed:
        kind = "pairing.added" if back else "pairing.edited"
        _event(session, clock, actor, kind, "pairing", label, changed)
    return pairing


def retire_pairing(session: Session, *, actor: Actor, clock: Clock, pairing_id: int) -> Pairing:
    """End a pairing: kept on record; its cadres are called for it no more."""
    keeper = editors(actor, "Mutation.retirePairing")
    pairing: Pairing = _one(session, Pairing, pairing_id, keeper, "结对")
    _in_place(session, keeper, pairing.community_id, "retirePairing")
    pairing.retired_at = clock.now()
    unit = session.get_one(Unit, pairing.unit_id)
    community = session.get_one(Community, pairing.community_id)
    _event(session, clock, actor, "pairing.retired", "pairing", f"{unit.code}/{community.code}")
    return pairing


def _team_in_place(session: Session, keeper: Actor, team: Team) -> None:
    """A team is a street's when its unit is paired there; a team of no unit is the
    district's."""
    communities = list(
        session.scalars(
            select(Pairing.community_id).where(Pairing.unit_id == team.unit_id, Pairing.current())
        )
    )
    if team.unit_id is not None and communities:
        inside = session.scalar(
            select(func.count()).where(
                Community.id.in_(communities), in_place(keeper, Community.id)
            )
        )
        if inside:
            return
    district_wide = any(
        b.scope_id == team.district_id and b.role.value == "district_commander"
        for b in keeper.bindings
    )
    if not district_wide:
        raise Forbidden(f"team {team.code}: 不在您的范围 outside your place")


def save_team(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    district_id: int,
    code: str,
    name: str,
    kind: TeamKind,
    unit_id: int | None,
) -> Team:
    """Create a team, or change one's name, kind and unit, by code."""
    keeper = editors(actor, "Mutation.saveTeam")
    code = validation.text("code", code, max_len=64)
    name = validation.text("name", name, max_len=200)
    if unit_id is not None:
        _one(session, Unit, unit_id, keeper, "单位")
    team = session.scalar(
        select(Team).where(Team.district_id == district_id, Team.code == code).with_for_update()
    )
    if team is None:
        team = Team(
            district_id=district_id,
            code=code,
            name=name,
            kind=kind.value,
            unit_id=unit_id,
            origin=Origin.API,
        )
        _insert(session, team, "code", f"team {code!r} was added a moment ago: look again")
        _team_in_place(session, keeper, team)
        _event(
            session, clock, actor, "team.added", "team", code, {"kind": kind.value, "unit": unit_id}
        )
        return team
    _team_in_place(session, keeper, team)
    back = team.retired_at is not None
    team.retired_at = None
    changed = _changes(team, {"name": name, "kind": kind.value, "unit_id": unit_id})
    _team_in_place(session, keeper, team)
    if back or changed:
        _event(session, clock, actor, "team.edited", "team", code, changed)
    return team


def set_team_members(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    team_id: int,
    add: Sequence[int] = (),
    remove: Sequence[int] = (),
) -> Team:
    """People join or leave a team, each within the caller's place; a shock team member
    cannot be left without a team (the importer's rule)."""
    keeper = editors(actor, "Mutation.setTeamMembers")
    team: Team = _one(session, Team, team_id, keeper, "队伍")
    _team_in_place(session, keeper, team)
    validation.items("add", list(add), max_items=500)
    validation.items("remove", list(remove), max_items=500)
    joined: list[str] = []
    left: list[str] = []
    for argument, ids, to in (("add", add, team.id), ("remove", remove, None)):
        for pk in sorted(set(ids)):
            person: Responder = _one(session, Responder, pk, keeper, "人员")
            if not person_in_place(session, keeper, person.id):
                raise Forbidden(f"{argument}: {person.code} 在您的范围以外 is outside your place")
            if to is None and person.team_id != team.id:
                raise InvalidInput(argument, f"{person.code} is not a member of {team.code}")
            if to is None and person.kind == ResponderKind.SHOCK_TEAM_MEMBER:
                raise InvalidInput(argument, f"{person.code}: a shock team member needs their team")
            if person.team_id != to:
                person.team_id = to
                (joined if to else left).append(person.code)
    if joined or left:
        _event(
            session,
            clock,
            actor,
            "team.members",
            "team",
            team.code,
            {"joined": joined, "left": left},
        )
    return team
