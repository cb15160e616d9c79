"""The acting user, resolved once per request and handed to every service call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from mobilize.models import Role

# Who commands a mobilisation (switch, stand down, move people), and who may also dispatch
# tasks: `auth.policy` grants operations by these, the services check them by the same sets.
COMMAND_ROLES = (Role.DISTRICT_COMMANDER, Role.STREET_COMMANDER)
DISPATCH_ROLES = (*COMMAND_ROLES, Role.COMMUNITY_SECRETARY)


@dataclass(frozen=True)
class Binding:
    """A role over one place, with what scope checks need already looked up."""

    role: Role
    scope_id: int | None  # district, street, community or responder id (None for admin)
    district_id: int | None  # the district the place lies in
    team_id: int | None = None  # for a responder: their team, whose members are teammates
    home_grid_id: int | None = None  # for a responder: their home grid


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    bindings: tuple[Binding, ...] = ()
    token_id: int | None = None
    address: str = ""
    token_expires_at: datetime | None = None
    tag: str | None = None  # how the log names an actor that is no user (a drill's phones)
    roles: frozenset[Role] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(b.role for b in self.bindings))

    @property
    def authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def responder_ids(self) -> tuple[int, ...]:
        """The people this user answers for on their phone (their responder bindings)."""
        return tuple(
            b.scope_id for b in self.bindings if b.role is Role.RESPONDER and b.scope_id is not None
        )

    def holds_any(self, roles: Iterable[Role]) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def label(self) -> str:
        """How events and audit lines name the actor."""
        if self.tag is not None:
            return self.tag
        return f"user:{self.user_id}" if self.user_id is not None else f"anonymous@{self.address}"

    def with_address(self, address: str) -> Actor:
        return replace(self, address=address)


ANONYMOUS = Actor(user_id=None, name="anonymous")
SYSTEM = Actor(user_id=None, name="system", bindings=(Binding(Role.ADMIN, None, None),))
