"""Phone sign-in without a password: a one-time code by message, exchanged for a token.

Codes live 5 minutes and allow 5 tries; requests and tries are rate-limited per phone and per
client address. Whether a phone is known is never revealed to the caller."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.auth.audit import audit
from mobilize.auth.ratelimit import Hit, Limit, RateLimiter
from mobilize.auth.secrets import digest, new_code, same
from mobilize.auth.users import PHONE_TOKEN_TTL, IssuedToken, Place, add_user, issue_token
from mobilize.clock import Clock
from mobilize.errors import InvalidCode, InvalidInput
from mobilize.events import record_event
from mobilize.models import Responder, Role, RoleBinding, SignInCode
from mobilize.notify import Message
from mobilize.settings import Settings

CODE_TTL = timedelta(minutes=5)
MAX_TRIES = 5
PHONE_PATTERN = re.compile(r"^\+?[0-9]{5,20}$")


@dataclass(frozen=True)
class SignInLimits:
    requests_per_phone: Limit
    requests_per_address: Limit
    tries_per_phone: Limit
    tries_per_address: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInLimits:
        return cls(
            requests_per_phone=Limit.parse(settings.sign_in_requests_per_phone),
            requests_per_address=Limit.parse(settings.sign_in_requests_per_address),
            tries_per_phone=Limit.parse(settings.sign_in_tries_per_phone),
            tries_per_address=Limit.parse(settings.sign_in_tries_per_address),
        )


def normalize_phone(raw: str) -> str:
    phone = re.sub(r"[\s\-()]", "", raw or "")
    if not PHONE_PATTERN.match(phone):
        raise InvalidInput("phone", "不是有效的手机号 not a phone number (digits, optional +)")
    return phone


def _code_digest(secret_key: str, phone: str, code: str) -> str:
    return digest(code, salt=f"{secret_key}:{phone}")


def request_code(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    limiter: RateLimiter,
    limits: SignInLimits,
    secret_key: str,
    phone: str,
) -> list[Message]:
    """Create a code for `phone` if a responder has it; return the message to send after commit."""
    phone = normalize_phone(phone)
    limiter.hit(
        Hit("sign-in-request:address", actor.address, limits.requests_per_address),
        Hit("sign-in-request:phone", phone, limits.requests_per_phone),
    )
    known = session.scalar(select(Responder.id).where(Responder.phone == phone).limit(1))
    audit(
        "auth.code_requested",
        actor=actor.label,
        address=actor.address,
        phone=_mask(phone),
        known=known is not None,
    )
    if known is None:
        return []
    now = clock.now()
    # A new code replaces any earlier one: only the latest can be used.
    session.execute(
        update(SignInCode)
        .where(SignInCode.phone == phone, SignInCode.used_at.is_(None))
        .values(used_at=now)
    )
    code = new_code()
    session.add(
        SignInCode(
            phone=phone,
            digest=_code_digest(secret_key, phone, code),
            created_at=now,
            expires_at=now + CODE_TTL,
            attempts=0,
        )
    )
    session.flush()
    record_event(
        session,
        clock=clock,
        actor=actor.label,
        kind="auth.code_requested",
        subject_type="phone",
        subject_id=_mask(phone),
        payload={},
    )
    text = (
        f"【mobilize】您的登录验证码是 {code}，5分钟内有效。"
        f"Your sign-in code is {code}, valid for 5 minutes."
    )
    return [Message(to=phone, kind="sign_in_code", text=text)]


def sign_in_with_code(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    limiter: RateLimiter,
    limits: SignInLimits,
    secret_key: str,
    phone: str,
    code: str,
) -> IssuedToken | InvalidCode:
    """Exchange a valid code for a token of the responder user owning `phone`.

    A wrong code is returned, not raised, so the edge commits the spent try: every try counts,
    even from clients racing each other (the count is one atomic UPDATE)."""
    phone = normalize_phone(phone)
    if not re.fullmatch(r"[0-9]{6}", code or ""):
        raise InvalidInput("code", "验证码是6位数字 the code is 6 digits")
    limiter.hit(
        Hit("sign-in-try:address", actor.address, limits.tries_per_address),
        Hit("sign-in-try:phone", phone, limits.tries_per_phone),
    )
    now = clock.now()
    row = session.scalar(
        select(SignInCode)
        .where(SignInCode.phone == phone, SignInCode.used_at.is_(None))
        .order_by(SignInCode.id.desc())
        .limit(1)
    )
    tries = None
    if row is not None and row.expires_at > now:
        tries = session.scalar(
            update(SignInCode)
            .where(
                SignInCode.id == row.id,
                SignInCode.used_at.is_(None),
                SignInCode.attempts < MAX_TRIES,
            )
            .values(attempts=SignInCode.attempts + 1)
            .returning(SignInCode.attempts)
        )
    if row is None or tries is None:
        return _failed(actor, phone, "no live code", 0)
    if not same(row.digest, _code_digest(secret_key, phone, code)):
        return _failed(actor, phone, "wrong code", MAX_TRIES - tries)
    claimed = session.execute(
        update(SignInCode)
        .where(SignInCode.id == row.id, SignInCode.used_at.is_(None))
        .values(used_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if claimed != 1:
        return _failed(actor, phone, "code used concurrently", 0)
    responder = session.scalars(
        select(Responder).where(Responder.phone == phone).order_by(Responder.id).limit(1)
    ).one()
    user_id = _user_for_responder(session, clock=clock, actor=actor, responder=responder)
    audit("auth.signed_in", actor=f"user:{user_id}", address=actor.address, method="phone_code")
    owner = Actor(user_id=user_id, name=responder.name, address=actor.address)
    return issue_token(
        session, actor=owner, clock=clock, user_id=user_id, label="phone", ttl=PHONE_TOKEN_TTL
    )


def _failed(actor: Actor, phone: str, reason: str, attempts_left: int) -> InvalidCode:
    audit(
        "auth.sign_in_failed",
        actor=actor.label,
        address=actor.address,
        phone=_mask(phone),
        reason=reason,
        attempts_left=attempts_left,
    )
    return InvalidCode(attempts_left=attempts_left)


def _user_for_responder(
    session: Session, *, clock: Clock, actor: Actor, responder: Responder
) -> int:
    """The user bound to this responder, created on first sign-in."""
    from mobilize.models import District

    district_code = session.scalar(
        select(District.code).where(District.id == responder.district_id)
    )
    user_id = session.scalar(
        select(RoleBinding.user_id)
        .where(
            RoleBinding.role == Role.RESPONDER.value,
            RoleBinding.district_code == district_code,
            RoleBinding.scope_code == responder.code,
        )
        .order_by(RoleBinding.user_id)
        .limit(1)
    )
    if user_id is not None:
        return user_id
    place = Place(Role.RESPONDER, district_code, responder.code)
    user = add_user(
        session, actor=actor, clock=clock, name=responder.name, places=[place], via="phone_sign_in"
    )
    return user.id


def _mask(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"
