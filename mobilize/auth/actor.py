"""The acting user, resolved once per request and handed to every service call."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from mobilize.models import Role


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
    def label(self) -> str:
        """How events and audit lines name the actor."""
        if self.tag is not None:
            return self.tag
        return f"user:{self.user_id}" if self.user_id is not None else f"anonymous@{self.address}"

    def with_address(self, address: str) -> Actor:
        return replace(self, address=address)


ANONYMOUS = Actor(user_id=None, name="anonymous")
SYSTEM = Actor(user_id=None, name="system", bindings=(Binding(Role.ADMIN, None, None),))
