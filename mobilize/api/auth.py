"""Who am I, phone sign-in, sign-out and token revocation."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
import strawberry
from sqlalchemy.orm import Session

from graphql import GraphQLError
from mobilize.api.common import ContextInfo
from mobilize.api.context import Context
from mobilize.api.errors import (
    InvalidCodeError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    to_error,
)
from mobilize.api.relay import expect_global_id, to_global_id
from mobilize.auth import signin, users
from mobilize.auth.actor import Actor
from mobilize.errors import DomainError, InvalidCode
from mobilize.models import ApiToken, Role, RoleBinding
from mobilize.models.auth import ROLE_NAMES
from mobilize.notify import DeliveryFailed, Message, Notifier

logger = logging.getLogger("mobilize.api")


@strawberry.type(description="A role over a place, as bound to the signed-in user.")
class RoleGrant:
    role: str
    district_code: str | None
    scope_code: str | None
    label: str = strawberry.field(description="The role's name for people: 中文 English.")


@strawberry.type(description="The signed-in user.")
class Viewer:
    id: strawberry.ID
    name: str
    roles: list[RoleGrant]
    token_expires_at: datetime | None


@strawberry.type
class SignInCodeSent:
    message: str = strawberry.field(
        description="Always the same, whether or not the phone is known (no enumeration)."
    )


@strawberry.type
class SignInSuccess:
    token: str = strawberry.field(description="Bearer token; shown once, keep it safe.")
    token_id: strawberry.ID
    expires_at: datetime


@strawberry.type
class TokenRevoked:
    token_id: strawberry.ID
    revoked_at: datetime


RequestSignInCodeResult = Annotated[
    SignInCodeSent | RateLimitedError | ValidationError,
    strawberry.union("RequestSignInCodeResult"),
]


SignInResult = Annotated[
    SignInSuccess | InvalidCodeError | RateLimitedError | ValidationError,
    strawberry.union("SignInResult"),
]


RevokeTokenResult = Annotated[
    TokenRevoked | NotFoundError | ValidationError, strawberry.union("RevokeTokenResult")
]


_SENT = "如果该号码已登记，验证码已发送 If this phone is registered, a code is on its way."


_DEVICE = strawberry.argument(
    description="The app's own random id for this device (16-64 letters, digits, - or _), the "
    "same in both steps: codes and limits are per device, and a device that signed in before "
    "keeps a way in when others spend the phone's allowance. Without it, the address counts."
)


_sending: set[asyncio.Task[None]] = set()  # codes on their way, kept until sent


def send_later(notifier: Notifier, message: Message) -> None:
    """Send after the answer (its time must not tell a known phone); kept until sent."""
    _sending.add(task := asyncio.create_task(_send(notifier, message)))
    task.add_done_callback(_sending.discard)


async def _send(notifier: Notifier, message: Message) -> None:
    """Send a code once; never stored to retry (the person asks again)."""
    try:
        await anyio.to_thread.run_sync(notifier.send, message)
    except DeliveryFailed as exc:
        logger.warning("sign-in code not delivered: %s", exc)


def _viewer(session: Session, actor: Actor) -> Viewer:
    from sqlalchemy import select

    rows = session.scalars(
        select(RoleBinding).where(RoleBinding.user_id == actor.user_id).order_by(RoleBinding.id)
    ).all()
    token = session.get(ApiToken, actor.token_id) if actor.token_id else None
    return Viewer(
        id=to_global_id("User", actor.user_id or 0),
        name=actor.name,
        roles=[
            RoleGrant(
                role=r.role,
                district_code=r.district_code,
                scope_code=r.scope_code,
                label=ROLE_NAMES[Role(r.role)],
            )
            for r in rows
        ],
        token_expires_at=token.expires_at if token else None,
    )


async def me(info: ContextInfo) -> Viewer:
    return await info.context.db.run(_viewer, info.context.actor)


def guarded(ctx: Context) -> dict[str, Any]:
    """What both sign-in steps are given: who asks, the clock, and the limits and key that
    guard the codes."""
    return {
        "actor": ctx.actor,
        "clock": ctx.clock,
        "limiter": ctx.limiter,
        "limits": signin.SignInLimits.from_settings(ctx.settings),
        "secret_key": ctx.settings.signing_secret(),
    }


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Send a one-time sign-in code to a registered phone.")
    async def request_sign_in_code(
        self, info: ContextInfo, phone: str, device: Annotated[str | None, _DEVICE] = None
    ) -> RequestSignInCodeResult:
        ctx = info.context
        try:
            messages = await ctx.db.write(
                signin.request_code, phone=phone, device=device, **guarded(ctx)
            )
        except DomainError as exc:
            return to_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        for message in messages:  # after the answer: its time must not tell a known phone
            send_later(ctx.notifier, message)
        return SignInCodeSent(message=_SENT)

    @strawberry.mutation(description="Exchange a one-time code for a bearer token.")
    async def sign_in_with_code(
        self,
        info: ContextInfo,
        phone: str,
        code: str,
        device: Annotated[str | None, _DEVICE] = None,
    ) -> SignInResult:
        ctx = info.context
        try:
            result = await ctx.db.write(
                signin.sign_in_with_code, phone=phone, code=code, device=device, **guarded(ctx)
            )
        except DomainError as exc:
            return to_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
        if isinstance(result, InvalidCode):
            return to_error(result)  # type: ignore[return-value]  # refusals it meets are in its union
        return SignInSuccess(
            token=result.secret,
            token_id=to_global_id("Token", result.token_id),
            expires_at=result.expires_at,
        )

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def sign_out(self, info: ContextInfo) -> RevokeTokenResult:
        ctx = info.context
        assert ctx.actor.token_id is not None
        return await _revoke(info, ctx.actor.token_id)

    @strawberry.mutation(description="Revoke a token: admins any, others their own.")
    async def revoke_token(self, info: ContextInfo, token_id: strawberry.ID) -> RevokeTokenResult:
        try:
            pk = expect_global_id(token_id, "Token", "tokenId")
        except GraphQLError as exc:
            return ValidationError(message=exc.message, field="tokenId")
        return await _revoke(info, pk)


async def _revoke(info: ContextInfo, token_id: int) -> RevokeTokenResult:
    ctx = info.context
    try:
        token = await ctx.db.write(
            users.revoke_token, actor=ctx.actor, clock=ctx.clock, token_id=token_id
        )
    except DomainError as exc:
        return to_error(exc)  # type: ignore[return-value]  # refusals it meets are in its union
    assert token.revoked_at is not None  # every process forgot it on commit (live.attach)
    return TokenRevoked(token_id=to_global_id("Token", token.id), revoked_at=token.revoked_at)
