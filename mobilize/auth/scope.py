"""What an actor may see: one SQL condition per model, the OR of their role bindings.

A district binding sees its district; a street or community binding sees the places in it,
the households there, the units paired with it and the people who live or are sent there; a
responder sees themself, their teammates, their home grid and its households. An admin is
bound to a district like its commander. A model not listed here is invisible to everyone but
the system itself: new tables start closed.

Seeing is not acting: what a caller may ask about (a `street:` argument) or act on (a
person) is their *place* (`in_place`, `person_in_place`), which can be narrower than what
they see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, false, func, literal, or_, select, true
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.errors import Forbidden, NotFound
from mobilize.models import (
    HOLDING,
    LIVE,
    Activity,
    ActivityPerson,
    Assignment,
    Building,
    Commitment,
    Community,
    District,
    Enrolment,
    Grid,
    Household,
    HouseholdRecord,
    Leave,
    Mobilisation,
    MobilisationArea,
    Pairing,
    PartyOrganisation,
    ProblemReport,
    Responder,
    Role,
    ServiceRecord,
    Street,
    Task,
    TaskAssignee,
    Team,
    Unit,
)

R = TypeVar("R")


def district_wide(actor: Actor) -> bool:
    """Whether the actor sees whole districts (no street or community of their own)."""
    return bool({Role.DISTRICT_COMMANDER, Role.REVIEWER, Role.ADMIN} & actor.roles)


def visible_mobilisation(session: Session, actor: Actor, mobilisation_id: int) -> Mobilisation:
    """The mobilisation if the actor may see it; otherwise, as if it did not exist."""
    found = session.scalar(
        select(Mobilisation).where(Mobilisation.id == mobilisation_id, visible(actor, Mobilisation))
    )
    if found is None:
        raise NotFound(f"没有这次动员 No mobilisation {mobilisation_id}")
    return found


def in_place(actor: Actor, community_id: Any) -> ColumnElement[bool]:
    """Whether `community_id` (a column or a value) lies in the actor's place: the OR of their
    area bindings. What someone may *see* can be wider (a secretary sees their street's row,
    a commander the people of units paired with them); what they may *ask about or act on*
    is their place, never more."""
    clauses: list[ColumnElement[bool]] = []
    for b in actor.bindings:
        if b.role is Role.ADMIN and b.scope_id is None:  # the system itself
            return true()
        if b.role in (Role.DISTRICT_COMMANDER, Role.REVIEWER, Role.ADMIN):
            inside = select(Community.id).where(Community.district_id == b.scope_id)
        elif b.role is Role.STREET_COMMANDER:
            inside = select(Community.id).where(Community.street_id == b.scope_id)
        elif b.role is Role.COMMUNITY_SECRETARY:
            inside = select(Community.id).where(Community.id == b.scope_id)
        else:  # a responder has no place over others
            continue
        clauses.append(_column_in(community_id, inside))
    return or_(*clauses) if clauses else false()


def _column_in(value: Any, inside: Select[Any]) -> ColumnElement[bool]:
    if isinstance(value, int):
        return literal(value).in_(inside)
    return value.in_(inside)


def person_in_place(
    session: Session, actor: Actor, responder_id: int, mobilisation_id: int | None = None
) -> bool:
    """Whether the actor may act on this person. Where they work now decides: every slot they
    hold in a live mobilisation (or in `mobilisation_id` only) must lie in the actor's place.
    With none, where they belong: their home grid's community, or a community their unit is
    paired with. Being able to *see* someone (a cadre of a unit paired here, working in
    another street) is not enough to move them."""
    holding = select(Assignment.community_id).where(
        Assignment.responder_id == responder_id, Assignment.status.in_(HOLDING)
    )
    if mobilisation_id is not None:
        holding = holding.where(Assignment.mobilisation_id == mobilisation_id)
    else:
        holding = holding.join(Mobilisation, Mobilisation.id == Assignment.mobilisation_id).where(
            Mobilisation.status.in_([s.value for s in LIVE])
        )
    places = list(session.scalars(holding))
    if places:
        inside = session.scalar(
            select(func.count()).where(Community.id.in_(places), in_place(actor, Community.id))
        )
        return inside == len(set(places))
    found = select(Responder.id).where(Responder.id == responder_id, belongs_in_place(actor))
    return session.scalar(found) is not None


def belongs_in_place(actor: Actor) -> ColumnElement[bool]:
    """Responders whose own place lies in the actor's: their home grid is in it; or, with no
    home grid, their unit is paired with a community in it; or, with neither (a team's
    volunteer, a district force), the actor holds their whole district. A unit organiser's
    place is their unit's people."""
    if any(b.role is Role.ADMIN and b.scope_id is None for b in actor.bindings):
        return true()
    whole = [
        b.scope_id
        for b in actor.bindings
        if b.role in (Role.DISTRICT_COMMANDER, Role.REVIEWER, Role.ADMIN)
    ]
    units = [b.scope_id for b in actor.bindings if b.role is Role.UNIT_ORGANISER]
    return or_(
        Responder.unit_id.in_(units),
        Responder.home_grid_id.in_(select(Grid.id).where(in_place(actor, Grid.community_id))),
        (Responder.home_grid_id.is_(None))
        & Responder.unit_id.in_(
            select(Pairing.unit_id).where(in_place(actor, Pairing.community_id))
        ),
        (Responder.home_grid_id.is_(None))
        & Responder.unit_id.is_(None)
        & Responder.district_id.in_(whole),
    )


def street_in_place(session: Session, actor: Actor, street_id: int) -> None:
    """Refuse a street the actor may not ask about: not found when they cannot see it,
    forbidden when it is wider than their place (a secretary's own street)."""
    code = session.scalar(select(Street.code).where(Street.id == street_id, visible(actor, Street)))
    if code is None:
        raise NotFound(f"没有这个街道 No street {street_id}")
    outside = select(Community.id).where(
        Community.street_id == street_id, ~in_place(actor, Community.id)
    )
    if session.scalar(outside.limit(1)) is not None:
        raise Forbidden(f"街道 {code} 超出您的范围 street {code} is wider than your place")


def community_in_place(session: Session, actor: Actor, community_id: int) -> None:
    """Refuse a community the actor may not ask about, as `street_in_place` does."""
    code = session.scalar(
        select(Community.code).where(Community.id == community_id, visible(actor, Community))
    )
    if code is None:
        raise NotFound(f"没有这个社区 No community {community_id}")
    if not session.scalar(select(in_place(actor, community_id))):
        raise Forbidden(f"社区 {code} 不在您的范围 community {code} is outside your place")


def place_asked(
    session: Session,
    *,
    actor: Actor,
    mobilisation_id: int,
    street_id: int | None = None,
    community_id: int | None = None,
) -> tuple[Mobilisation, int | None, int | None]:
    """The mobilisation and the place within it an actor asks about: by default their own
    (a street commander their street, a community secretary their community), else all of
    it. A place they may not see is answered as not found; one they may see but that is
    wider than their place (a secretary's own street) is refused: a scope argument narrows
    the caller's place, never widens it."""
    mobilisation = visible_mobilisation(session, actor, mobilisation_id)
    if street_id is None and community_id is None and not district_wide(actor):
        streets = [b.scope_id for b in actor.bindings if b.role is Role.STREET_COMMANDER]
        communities = [b.scope_id for b in actor.bindings if b.role is Role.COMMUNITY_SECRETARY]
        street_id = streets[0] if streets else None
        community_id = None if streets else (communities[0] if communities else None)
    if street_id is not None:
        street_in_place(session, actor, street_id)
    if community_id is not None:
        community_in_place(session, actor, community_id)
    return mobilisation, street_id, community_id


def in_scope(
    session: Session,
    fn: Callable[..., R],
    /,
    *,
    actor: Actor,
    mobilisation_id: int,
    street_id: int | None = None,
    community_id: int | None = None,
    **kwargs: Any,
) -> R:
    """`fn(session, mobilisation=, street_id=, community_id=, **kwargs)` for the place the
    actor asks about (see `place_asked`): how every per-place read is served."""
    mobilisation, street_id, community_id = place_asked(
        session,
        actor=actor,
        mobilisation_id=mobilisation_id,
        street_id=street_id,
        community_id=community_id,
    )
    return fn(
        session,
        mobilisation=mobilisation,
        street_id=street_id,
        community_id=community_id,
        **kwargs,
    )


# Records that belong to one person and are seen with them.
PERSONAL = (Leave, Commitment)


def visible(actor: Actor, model: Any) -> ColumnElement[bool]:
    """The rows of `model` that `actor` may read."""
    if model in PERSONAL:  # a person's own record: whoever may see the person
        return model.responder_id.in_(select(Responder.id).where(visible(actor, Responder)))
    clauses = [_clause(binding, model) for binding in actor.bindings]
    return or_(*clauses) if clauses else false()


def _clause(binding: Binding, model: Any) -> ColumnElement[bool]:
    role = binding.role
    if role is Role.ADMIN and binding.scope_id is None:  # the system itself, never a user
        return true()
    if role in (Role.DISTRICT_COMMANDER, Role.REVIEWER, Role.ADMIN):
        assert binding.scope_id is not None
        return _district(model, binding.scope_id)
    if role is Role.STREET_COMMANDER:
        communities = select(Community.id).where(Community.street_id == binding.scope_id)
        return _area(model, binding, communities)
    if role is Role.COMMUNITY_SECRETARY:
        communities = select(Community.id).where(Community.id == binding.scope_id)
        return _area(model, binding, communities)
    if role is Role.RESPONDER:
        return _self(model, binding)
    if role is Role.UNIT_ORGANISER:
        return _unit(model, binding)
    return false()


def _unit(model: Any, binding: Binding) -> ColumnElement[bool]:
    """A unit organiser: their unit, its pairings and the communities it is paired with (by
    name), its teams, and its people."""
    unit = binding.scope_id
    paired = select(Pairing.community_id).where(Pairing.unit_id == unit)
    if model is District:
        return District.id == binding.district_id
    if model is Unit:
        return Unit.id == unit
    if model in (Pairing, Team, Responder):
        return model.unit_id == unit
    if model is Community:
        return Community.id.in_(paired)
    if model is Street:
        return Street.id.in_(select(Community.street_id).where(Community.id.in_(paired)))
    return false()


def _district(model: Any, district_id: int) -> ColumnElement[bool]:
    if model is District:
        return District.id == district_id
    if model in (Assignment, PartyOrganisation, Task, ProblemReport, MobilisationArea):
        return model.community_id.in_(
            select(Community.id).where(Community.district_id == district_id)
        )
    if model is HouseholdRecord:
        return HouseholdRecord.household_id.in_(
            select(Household.id).where(Household.district_id == district_id)
        )
    if model is ServiceRecord:
        return ServiceRecord.responder_id.in_(
            select(Responder.id).where(Responder.district_id == district_id)
        )
    column = getattr(model, "district_id", None)
    return column == district_id if column is not None else false()


def _area(model: Any, binding: Binding, communities: Select[Any]) -> ColumnElement[bool]:
    grids = select(Grid.id).where(Grid.community_id.in_(communities))
    units = select(Pairing.unit_id).where(Pairing.community_id.in_(communities))
    if model is District:
        return District.id == binding.district_id
    if model is Street:
        return Street.id.in_(select(Community.street_id).where(Community.id.in_(communities)))
    if model is Community:
        return Community.id.in_(communities)
    if model is Grid:
        return Grid.community_id.in_(communities)
    if model in (Household, Building):
        return model.micro_grid_id.in_(grids)
    if model in (Activity, Enrolment):
        return model.community_id.in_(communities)
    if model is Pairing:
        return Pairing.community_id.in_(communities)
    if model is Unit:
        return Unit.id.in_(units)
    if model is Team:
        members_here = select(Responder.team_id).where(Responder.home_grid_id.in_(grids))
        return or_(Team.unit_id.in_(units), Team.id.in_(members_here))
    if model is Responder:
        sent_here = select(Assignment.responder_id).where(Assignment.community_id.in_(communities))
        return or_(
            Responder.home_grid_id.in_(grids),
            Responder.unit_id.in_(units),
            Responder.id.in_(sent_here),
        )
    if model is Mobilisation:
        return Mobilisation.id.in_(
            select(MobilisationArea.mobilisation_id).where(
                MobilisationArea.community_id.in_(communities)
            )
        )
    if model in (Assignment, PartyOrganisation, Task, ProblemReport, MobilisationArea):
        return model.community_id.in_(communities)
    if model is HouseholdRecord:
        return HouseholdRecord.household_id.in_(
            select(Household.id).where(Household.micro_grid_id.in_(grids))
        )
    if model is ServiceRecord:
        return ServiceRecord.responder_id.in_(
            select(Responder.id).where(
                or_(
                    Responder.home_grid_id.in_(grids),
                    Responder.unit_id.in_(units),
                    Responder.id.in_(
                        select(Assignment.responder_id).where(
                            Assignment.community_id.in_(communities)
                        )
                    ),
                )
            )
        )
    return false()


def _self(model: Any, binding: Binding) -> ColumnElement[bool]:
    """A responder: themself, their team, their home grid, and in wartime their assignment,
    its grid and households, and the people sent to the same grid (teammates); the
    community, street and district those grids lie in, by name."""
    me = binding.scope_id
    if model is Assignment:  # first: every phone action reads its own assignment
        return Assignment.responder_id == me
    if model in (HouseholdRecord, ProblemReport, ServiceRecord):
        return model.responder_id == me
    if model is Team:
        return Team.id == binding.team_id if binding.team_id else false()
    if model is Mobilisation:
        return Mobilisation.id.in_(
            select(Assignment.mobilisation_id).where(Assignment.responder_id == me)
        )
    my_grids = select(Assignment.grid_id).where(
        Assignment.responder_id == me, Assignment.status.in_(HOLDING)
    )
    if model is Responder:
        teammates = select(Assignment.responder_id).where(
            Assignment.grid_id.in_(my_grids), Assignment.status.in_(HOLDING)
        )
        clauses = [Responder.id == me, Responder.id.in_(teammates)]
        if binding.team_id:
            clauses.append(Responder.team_id == binding.team_id)
        return or_(*clauses)
    if model is Grid:
        return or_(Grid.id == binding.home_grid_id, Grid.id.in_(my_grids))
    # The places around their grids, so a phone can say where it is sending them.
    my_communities = select(Grid.community_id).where(
        or_(Grid.id == binding.home_grid_id, Grid.id.in_(my_grids))
    )
    if model is Community:
        return Community.id.in_(my_communities)
    if model is Street:
        return Street.id.in_(select(Community.street_id).where(Community.id.in_(my_communities)))
    if model is District:
        return District.id == binding.district_id
    if model is MobilisationArea:
        return MobilisationArea.community_id.in_(my_communities)
    if model in (Household, Building):
        return or_(
            model.micro_grid_id == binding.home_grid_id,
            model.micro_grid_id.in_(my_grids),
        )
    if model is Task:
        return or_(
            Task.id.in_(select(TaskAssignee.task_id).where(TaskAssignee.responder_id == me)),
            Task.grid_id.in_(my_grids),
        )
    if model is Activity:  # their community's, and any they are in
        return or_(
            Activity.community_id.in_(my_communities),
            Activity.id.in_(
                select(ActivityPerson.activity_id).where(ActivityPerson.responder_id == me)
            ),
        )
    return false()


def commands_mobilisation(session: Session, actor: Actor, mobilisation: Mobilisation) -> bool:
    """District commanders of its district; street commanders when it lies in their street."""
    for b in actor.bindings:
        if b.role is Role.DISTRICT_COMMANDER and b.scope_id == mobilisation.district_id:
            return True
    streets = {b.scope_id for b in actor.bindings if b.role is Role.STREET_COMMANDER}
    if not streets:
        return False
    outside = session.scalar(
        select(Community.id)
        .join(MobilisationArea, MobilisationArea.community_id == Community.id)
        .where(
            MobilisationArea.mobilisation_id == mobilisation.id, Community.street_id.not_in(streets)
        )
        .limit(1)
    )
    return outside is None


def commands_grid(session: Session, actor: Actor, grid_id: int) -> bool:
    """A street commander commands the grids of their street."""
    streets = {b.scope_id for b in actor.bindings if b.role is Role.STREET_COMMANDER}
    street = session.scalar(
        select(Community.street_id)
        .join(Grid, Grid.community_id == Community.id)
        .where(Grid.id == grid_id)
    )
    return street is not None and street in streets
