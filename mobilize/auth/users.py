"""Users, role bindings and bearer tokens: creating, authenticating, revoking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import Actor, Binding
from mobilize.auth.audit import audit
from mobilize.auth.secrets import digest, new_token
from mobilize.clock import Clock
from mobilize.errors import Forbidden, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.live import credentials_changed
from mobilize.models import (
    ROLE_SCOPE,
    ApiToken,
    Community,
    District,
    Responder,
    Role,
    RoleBinding,
    ScopeKind,
    Street,
    Unit,
    User,
)

DEFAULT_TOKEN_TTL = timedelta(days=30)
PHONE_TOKEN_TTL = timedelta(days=7)


@dataclass(frozen=True)
class IssuedToken:
    token_id: int
    secret: str  # shown once, never stored
    expires_at: datetime


@dataclass(frozen=True)
class Place:
    """What a role binding points at, by code."""

    role: Role
    district_code: str | None
    scope_code: str | None


_SCOPE_MODELS: dict[ScopeKind, Any] = {
    ScopeKind.DISTRICT: District,
    ScopeKind.STREET: Street,
    ScopeKind.COMMUNITY: Community,
    ScopeKind.RESPONDER: Responder,
    ScopeKind.UNIT: Unit,
}


def resolve_place(
    session: Session, *, role: Role, scope: str | None, district: str | None = None
) -> Place:
    """Check that `scope` (a code) names a place `role` can be bound to."""
    kind = ROLE_SCOPE[role]
    if not scope:
        raise InvalidInput("scope", f"role {role} needs a {kind.value} code")
    if kind is ScopeKind.DISTRICT:
        if session.scalar(select(District.id).where(District.code == scope)) is None:
            raise InvalidInput("scope", f"no district with code {scope!r}")
        return Place(role, scope, scope)
    model = _SCOPE_MODELS[kind]
    stmt = (
        select(District.code)
        .join(model, model.district_id == District.id)
        .where(model.code == scope)
    )
    if district:
        stmt = stmt.where(District.code == district)
    districts = session.scalars(stmt).all()
    if not districts:
        raise InvalidInput("scope", f"no {kind.value} with code {scope!r}")
    if len(districts) > 1:
        raise InvalidInput(
            "scope", f"{kind.value} {scope!r} is in several districts; name the district"
        )
    return Place(role, districts[0], scope)


def create_user(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    name: str,
    places: list[Place],
) -> User:
    """A user with role bindings (admins only)."""
    if Role.ADMIN not in actor.roles:
        raise Forbidden("createUser")
    return add_user(session, actor=actor, clock=clock, name=name, places=places)


def add_user(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    name: str,
    places: list[Place],
    via: str = "admin",
) -> User:
    """Write a user and their bindings with one event; callers decide who may."""
    name = validation.text("name", name, max_len=200)
    if not places:
        raise InvalidInput("role", "a user needs at least one role")
    user = User(name=name, created_at=clock.now())
    session.add(user)
    session.flush()
    for place in places:
        session.add(
            RoleBinding(
                user_id=user.id,
                role=place.role.value,
                district_code=place.district_code,
                scope_code=place.scope_code,
            )
        )
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="user.created",
        subject_type="user",
        subject_id=str(user.id),
        payload={
            "name": name,
            "roles": [[p.role.value, p.district_code, p.scope_code] for p in places],
            "via": via,
        },
    )
    return user


def grant_role(
    session: Session, *, actor: Actor, clock: Clock, user_id: int, place: Place
) -> RoleBinding:
    """Add a role binding to a user (admins only): one user may hold several."""
    if Role.ADMIN not in actor.roles:
        raise Forbidden("grantRole")
    if session.get(User, user_id) is None:
        raise NotFound(f"没有这个用户 No user {user_id}")
    binding = RoleBinding(
        user_id=user_id,
        role=place.role.value,
        district_code=place.district_code,
        scope_code=place.scope_code,
    )
    session.add(binding)
    session.flush()
    credentials_changed(session, clock.now())
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="user.role_granted",
        subject_type="user",
        subject_id=str(user_id),
        payload={
            "role": place.role.value,
            "district": place.district_code,
            "scope": place.scope_code,
        },
    )
    return binding


def issue_token(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    user_id: int,
    label: str,
    ttl: timedelta = DEFAULT_TOKEN_TTL,
) -> IssuedToken:
    """A new bearer token for `user_id`; only its digest is kept."""
    if actor.user_id != user_id and not _administers(session, actor, user_id):
        raise Forbidden("issueToken")
    secret = new_token()
    now = clock.now()
    token = ApiToken(
        user_id=user_id,
        digest=digest(secret),
        label=label[:64],
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(token)
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="token.issued",
        subject_type="user",
        subject_id=str(user_id),
        payload={
            "token_id": token.id,
            "label": token.label,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    audit(
        "token.issued",
        actor=actor.label,
        address=actor.address,
        user_id=user_id,
        token_id=token.id,
        label=token.label,
    )
    return IssuedToken(token_id=token.id, secret=secret, expires_at=token.expires_at)


def revoke_token(session: Session, *, actor: Actor, clock: Clock, token_id: int) -> ApiToken:
    """Revoke a token: an admin any of their district's users', everyone else only their own
    (as if others did not exist)."""
    token = session.get(ApiToken, token_id)
    if token is None or not (
        token.user_id == actor.user_id or _administers(session, actor, token.user_id)
    ):
        raise NotFound(f"没有这个令牌 No token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        session.flush()
        credentials_changed(session, token.revoked_at)
        record_event(
            session,
            clock=clock,
            actor=actor.label,
            kind="token.revoked",
            subject_type="user",
            subject_id=str(token.user_id),
            payload={"token_id": token.id},
        )
        audit(
            "token.revoked",
            actor=actor.label,
            address=actor.address,
            token_id=token.id,
            user_id=token.user_id,
        )
    return token


def _administers(session: Session, actor: Actor, user_id: int) -> bool:
    """Whether the actor is an admin of a district the user holds a role in (the system
    administers everyone)."""
    districts = {b.district_id for b in actor.bindings if b.role is Role.ADMIN}
    if not districts:
        return False
    if None in districts:
        return True
    codes = select(District.code).where(District.id.in_(districts))
    return (
        session.scalar(
            select(RoleBinding.id)
            .where(RoleBinding.user_id == user_id, RoleBinding.district_code.in_(codes))
            .limit(1)
        )
        is not None
    )


class TokenRejected(Exception):
    """A bearer token that does not (or no longer) open the door; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def authenticate(session: Session, *, secret: str, clock: Clock, address: str) -> Actor:
    """The actor a bearer token stands for; TokenRejected when unknown, expired or revoked.

    Every request without a cached actor comes here, so the token with its user is one read
    and the bindings with their districts another: columns, not objects."""
    token = session.execute(
        select(
            ApiToken.id,
            ApiToken.revoked_at,
            ApiToken.expires_at,
            User.id.label("user_id"),
            User.name,
            User.disabled_at,
        )
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.digest == digest(secret))
    ).one_or_none()
    reason = None
    if token is None:
        reason = "unknown token"
    elif token.revoked_at is not None:
        reason = "token revoked"
    elif token.expires_at <= clock.now():
        reason = "token expired"
    elif token.user_id is None or token.disabled_at is not None:
        reason = "user disabled"
    if reason is not None or token is None:
        audit(
            "auth.rejected",
            actor="anonymous",
            address=address,
            reason=reason,
            token_id=token.id if token else None,
        )
        raise TokenRejected(reason or "unknown token")
    return Actor(
        user_id=token.user_id,
        name=token.name,
        bindings=load_bindings(session, token.user_id),
        token_id=token.id,
        address=address,
        token_expires_at=token.expires_at,
    )


def load_bindings(session: Session, user_id: int) -> tuple[Binding, ...]:
    """Role bindings with the ids scope filters need, looked up once per request.

    A binding whose place no longer exists (removed by a re-import) opens nothing."""
    bindings = []
    for row in session.execute(
        select(RoleBinding.role, RoleBinding.scope_code, District.id.label("district_id"))
        .outerjoin(District, District.code == RoleBinding.district_code)
        .where(RoleBinding.user_id == user_id)
        .order_by(RoleBinding.id)
    ):
        role = Role(row.role)
        kind = ROLE_SCOPE[role]
        if row.district_id is None:
            continue
        if kind is ScopeKind.DISTRICT:
            bindings.append(Binding(role, row.district_id, row.district_id))
            continue
        model = _SCOPE_MODELS[kind]
        extra = (Responder.team_id, Responder.home_grid_id) if model is Responder else ()
        place = session.execute(
            select(model.id, *extra).where(
                model.code == row.scope_code, model.district_id == row.district_id
            )
        ).one_or_none()
        if place is not None:
            bindings.append(Binding(role, place[0], row.district_id, *place[1:]))
    return tuple(bindings)
