"""Typed SQLAlchemy mappings of the district, its forces and the event log."""

from mobilize.models.auth import (
    ROLE_SCOPE,
    ApiToken,
    Role,
    RoleBinding,
    ScopeKind,
    SignInCode,
    User,
)
from mobilize.models.base import Base
from mobilize.models.district import (
    Community,
    CommunityKind,
    District,
    Grid,
    GridLevel,
    Household,
    HouseholdTag,
    Street,
)
from mobilize.models.events import Event
from mobilize.models.forces import Pairing, Responder, ResponderKind, Team, TeamKind, Unit

__all__ = [
    "ROLE_SCOPE",
    "ApiToken",
    "Base",
    "Community",
    "CommunityKind",
    "District",
    "Event",
    "Grid",
    "GridLevel",
    "Household",
    "HouseholdTag",
    "Pairing",
    "Responder",
    "ResponderKind",
    "Role",
    "RoleBinding",
    "ScopeKind",
    "SignInCode",
    "Street",
    "Team",
    "TeamKind",
    "Unit",
    "User",
]
