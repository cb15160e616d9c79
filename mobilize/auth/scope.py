"""What an actor may see: one SQL condition per model, the OR of their role bindings.

A district binding sees its district; a street or community binding sees the places in it,
the households there, the units paired with it and the people who live or are sent there; a
responder sees themself, their teammates, their home grid and its households. A model not
listed here is invisible to everyone but admins: new tables start closed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false, or_, select, true
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor, Binding
from mobilize.errors import NotFound
from mobilize.models import (
    HOLDING,
    Assignment,
    Community,
    District,
    Grid,
    Household,
    HouseholdRecord,
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


def visible(actor: Actor, model: Any) -> ColumnElement[bool]:
    """The rows of `model` that `actor` may read."""
    clauses = [_clause(binding, model) for binding in actor.bindings]
    return or_(*clauses) if clauses else false()


def _clause(binding: Binding, model: Any) -> ColumnElement[bool]:
    role = binding.role
    if role is Role.ADMIN:
        return true()
    if role in (Role.DISTRICT_COMMANDER, Role.REVIEWER):
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
    return false()


_HOLDING = [s.value for s in HOLDING]


def _district(model: Any, district_id: int) -> ColumnElement[bool]:
    if model is District:
        return District.id == district_id
    if model in (Assignment, PartyOrganisation, Task, ProblemReport):
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
    if model is Household:
        return Household.micro_grid_id.in_(grids)
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
    if model in (Assignment, PartyOrganisation, Task, ProblemReport):
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
    its grid and households, and the people sent to the same grid (teammates)."""
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
        Assignment.responder_id == me, Assignment.status.in_(_HOLDING)
    )
    if model is Responder:
        teammates = select(Assignment.responder_id).where(
            Assignment.grid_id.in_(my_grids), Assignment.status.in_(_HOLDING)
        )
        clauses = [Responder.id == me, Responder.id.in_(teammates)]
        if binding.team_id:
            clauses.append(Responder.team_id == binding.team_id)
        return or_(*clauses)
    if model is Grid:
        return or_(Grid.id == binding.home_grid_id, Grid.id.in_(my_grids))
    if model is Household:
        return or_(
            Household.micro_grid_id == binding.home_grid_id,
            Household.micro_grid_id.in_(my_grids),
        )
    if model is Task:
        return or_(
            Task.id.in_(select(TaskAssignee.task_id).where(TaskAssignee.responder_id == me)),
            Task.grid_id.in_(my_grids),
        )
    return false()
