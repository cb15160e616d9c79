"""`mobilize user ...`: users, their roles and their tokens."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from mobilize.auth.actor import SYSTEM
from mobilize.auth.users import Place, create_user, grant_role, issue_token, resolve_place
from mobilize.auth.users import revoke_token as revoke
from mobilize.cli.common import DatabaseOption, edge, err, out
from mobilize.clock import SystemClock
from mobilize.models import ApiToken, Role, RoleBinding, User

user_app = typer.Typer(help="Users, their roles and their tokens.")

RoleName = StrEnum("RoleName", {role.value: role.value for role in Role})  # type: ignore[misc]  # typer wants an Enum of the choices; built from Role, not restated
ScopeOption = Annotated[
    str | None, typer.Option(help="District, street or community code the role covers.")
]
ResponderOption = Annotated[
    str | None, typer.Option(help="For --role responder: the responder's code.")
]
DistrictOption = Annotated[
    str | None, typer.Option(help="District code, when codes repeat across districts.")
]


def _place(
    session: Session, role: str, scope: str | None, responder: str | None, district: str | None
) -> Place:
    chosen = Role(role)
    return resolve_place(
        session,
        role=chosen,
        scope=responder if chosen is Role.RESPONDER else scope,
        district=district,
    )


@user_app.command("add", short_help="Create a user with one role; print a token.")
def add(
    role: Annotated[RoleName, typer.Option(help="The role to grant.")],
    scope: ScopeOption = None,
    responder: ResponderOption = None,
    name: Annotated[str | None, typer.Option(help="Shown in events and audit lines.")] = None,
    district: DistrictOption = None,
    expires_in_days: int = 30,
    database_url: DatabaseOption = None,
) -> None:
    """Create a user with one role and print a bearer token (shown once, stored as a hash)."""
    clock = SystemClock()
    with edge(database_url) as session:
        place = _place(session, role.value, scope, responder, district)
        user = create_user(
            session,
            actor=SYSTEM,
            clock=clock,
            name=name or f"{place.role.value}:{place.scope_code}",
            places=[place],
        )
        issued = issue_token(
            session,
            actor=SYSTEM,
            clock=clock,
            user_id=user.id,
            label="cli",
            ttl=timedelta(days=expires_in_days),
        )
    err.print(
        f"user {user.id} ({user.name}), token {issued.token_id}, "
        f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC; the token is shown only once:"
    )
    print(issued.secret)


@user_app.command("grant", short_help="Give an existing user one more role.")
def grant(
    user_id: int,
    role: Annotated[RoleName, typer.Option(help="The role to add.")],
    scope: ScopeOption = None,
    responder: ResponderOption = None,
    district: DistrictOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Give an existing user one more role (a user may hold several)."""
    with edge(database_url) as session:
        place = _place(session, role.value, scope, responder, district)
        grant_role(session, actor=SYSTEM, clock=SystemClock(), user_id=user_id, place=place)
    out.print(f"user {user_id} is now also {role.value} {place.scope_code or ''}".rstrip())


@user_app.command("revoke-token", short_help="Revoke a token by its id.")
def revoke_token(token_id: int, database_url: DatabaseOption = None) -> None:
    """Revoke a token by its id (printed by `user add`, listed by `user list`)."""
    with edge(database_url) as session:
        revoke(session, actor=SYSTEM, clock=SystemClock(), token_id=token_id)
    out.print(f"token {token_id} revoked")


@user_app.command("list", short_help="Users, their roles and their live tokens.")
def list_users(database_url: DatabaseOption = None) -> None:
    """Users, their roles and their live tokens."""
    now = SystemClock().now()
    table = Table(title="用户 Users")
    for column in ("id", "name", "roles", "live tokens"):
        table.add_column(column)
    with edge(database_url) as session:
        for user in session.scalars(select(User).order_by(User.id)):
            roles = session.scalars(select(RoleBinding).where(RoleBinding.user_id == user.id))
            tokens = session.scalars(
                select(ApiToken.id).where(
                    ApiToken.user_id == user.id,
                    ApiToken.revoked_at.is_(None),
                    ApiToken.expires_at > now,
                )
            )
            table.add_row(
                str(user.id),
                user.name,
                ", ".join(f"{r.role}:{r.scope_code or '*'}" for r in roles),
                ", ".join(str(t) for t in tokens),
            )
    out.print(table)
