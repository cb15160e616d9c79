"""Phone sign-in without a password: a one-time code by message, exchanged for a token.

Codes live 5 minutes and allow 5 tries. Each code belongs to the client that asked for it
(the app's device id, else the address): tries from anyone else never spend it. Limits:
- per address: how many codes and tries one client asks for, over every phone;
- per phone and client: how many one client asks for one phone;
- per phone, shared by every client that never signed in with it: how many codes a phone is
  sent. A client that signed in with the phone before is not held by that shared allowance,
  so someone spending a victim's allowance cannot lock the victim's own phone out.

Whether a phone is known is never revealed: an unknown phone gets a code written (never
sent), the same event, the same limits and the same answers, in the same statements; the
known phone's message goes out after the answer, not before it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mobilize.auth.actor import Actor
from mobilize.auth.audit import audit
from mobilize.auth.ratelimit import Hit, Limit, RateLimiter
from mobilize.auth.secrets import digest, new_code, same
from mobilize.auth.users import PHONE_TOKEN_TTL, IssuedToken, Place, add_user, issue_token
from mobilize.clock import Clock
from mobilize.db.session import rowcount
from mobilize.errors import InvalidCode, InvalidInput
from mobilize.events import record_event
from mobilize.models import District, Responder, Role, RoleBinding, SignInCode, SignInDevice
from mobilize.notify import Message
from mobilize.settings import Settings

CODE_TTL = timedelta(minutes=5)
MAX_TRIES = 5
PHONE_PATTERN = re.compile(r"^\+?[0-9]{5,20}$")
DEVICE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class SignInLimits:
    requests_per_phone: Limit  # one client, one phone
    codes_per_phone: Limit  # one phone, every client that never signed in with it
    requests_per_address: Limit
    tries_per_phone: Limit  # one client, one phone
    tries_per_address: Limit

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInLimits:
        return cls(
            requests_per_phone=Limit.parse(settings.sign_in_requests_per_phone),
            codes_per_phone=Limit.parse(settings.sign_in_codes_per_phone),
            requests_per_address=Limit.parse(settings.sign_in_requests_per_address),
            tries_per_phone=Limit.parse(settings.sign_in_tries_per_phone),
            tries_per_address=Limit.parse(settings.sign_in_tries_per_address),
        )


def client_key(address: str, device: str | None) -> str:
    """Who asks: the app's device id when it sends one (random, kept on the phone), else the
    address. Stored and counted as a digest."""
    if device is None:
        return digest(f"address:{address}")
    if not DEVICE_PATTERN.match(device):
        raise InvalidInput("device", "16 to 64 letters, digits, '-' or '_'")
    return digest(f"device:{device}")


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
    device: str | None = None,
    purpose: str = "sign_in",
) -> list[Message]:
    """Write a code for `phone` and this client; return the message to send after commit.
    A sign-in code for a phone nobody has is never sent; an enrolment code (报到/报名, for
    someone not on the roster yet) always is, under the same limits."""
    phone = normalize_phone(phone)
    client = client_key(actor.address, device)
    hits = [
        Hit("sign-in-request:address", actor.address, limits.requests_per_address),
        Hit("sign-in-request:phone-client", f"{phone}:{client}", limits.requests_per_phone),
    ]
    known_device = session.scalar(
        select(SignInDevice.id).where(SignInDevice.phone == phone, SignInDevice.client == client)
    )
    if known_device is None:
        hits.append(Hit("sign-in-request:phone", phone, limits.codes_per_phone))
    limiter.hit(*hits)
    known = session.scalar(
        select(Responder.id).where(Responder.phone == phone, Responder.current()).limit(1)
    )
    audit(
        "auth.code_requested",
        actor=actor.label,
        address=actor.address,
        phone=_mask(phone),
        known=known is not None,
    )
    now = clock.now()
    # A new code replaces this client's earlier ones: only its latest can be used.
    session.execute(
        update(SignInCode)
        .where(SignInCode.phone == phone, SignInCode.client == client, SignInCode.used_at.is_(None))
        .values(used_at=now)
    )
    code = new_code()
    session.add(
        SignInCode(
            phone=phone,
            client=client,
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
    if purpose == "enrolment":
        text = (
            f"【mobilize】您的报到验证码是 {code}，5分钟内有效。"
            f"Your code to report in is {code}, valid for 5 minutes."
        )
        return [Message(to=phone, kind="sign_in_code", text=text)]
    text = (
        f"【mobilize】您的登录验证码是 {code}，5分钟内有效。"
        f"Your sign-in code is {code}, valid for 5 minutes."
    )
    return [Message(to=phone, kind="sign_in_code", text=text)] if known is not None else []


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
    device: str | None = None,
) -> IssuedToken | InvalidCode:
    """Exchange a valid code, asked for by this same client, for a token of the responder
    user owning `phone`.

    A wrong code is returned, not raised, so the edge commits the spent try: every try counts,
    even from clients racing each other (the count is one atomic UPDATE)."""
    phone = normalize_phone(phone)
    client = client_key(actor.address, device)
    found = verify_code(
        session,
        actor=actor,
        clock=clock,
        limiter=limiter,
        limits=limits,
        secret_key=secret_key,
        phone=phone,
        code=code,
        client=client,
    )
    if isinstance(found, InvalidCode):
        return found
    row, tries = found
    now = clock.now()
    responder = session.scalars(
        select(Responder)
        .where(Responder.phone == phone, Responder.current())
        .order_by(Responder.id)
        .limit(1)
    ).one_or_none()
    if responder is None:  # nobody to sign in as (an enrolment code reports in, nothing more)
        return _failed(actor, phone, "wrong code", MAX_TRIES - tries)
    if not claim_code(session, row, now):
        return _failed(actor, phone, "code used concurrently", 0)
    _remember_device(session, phone=phone, client=client, now=now)
    user_id = _user_for_responder(session, clock=clock, actor=actor, responder=responder)
    audit("auth.signed_in", actor=f"user:{user_id}", address=actor.address, method="phone_code")
    owner = Actor(user_id=user_id, name=responder.name, address=actor.address)
    return issue_token(
        session, actor=owner, clock=clock, user_id=user_id, label="phone", ttl=PHONE_TOKEN_TTL
    )


def verify_code(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    limiter: RateLimiter,
    limits: SignInLimits,
    secret_key: str,
    phone: str,
    code: str,
    client: str,
) -> tuple[SignInCode, int] | InvalidCode:
    """This client's live code for `phone` if `code` is it (the try counted, atomically),
    with the tries used; otherwise the refusal to return. The caller claims it."""
    if not re.fullmatch(r"[0-9]{6}", code or ""):
        raise InvalidInput("code", "验证码是6位数字 the code is 6 digits")
    limiter.hit(
        Hit("sign-in-try:address", actor.address, limits.tries_per_address),
        Hit("sign-in-try:phone-client", f"{phone}:{client}", limits.tries_per_phone),
    )
    now = clock.now()
    row = session.scalar(
        select(SignInCode)
        .where(SignInCode.phone == phone, SignInCode.client == client, SignInCode.used_at.is_(None))
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
    return row, tries


def claim_code(session: Session, row: SignInCode, now: datetime) -> bool:
    """Spend a verified code: true for exactly one of several racing claims."""
    claimed = rowcount(
        session.execute(
            update(SignInCode)
            .where(SignInCode.id == row.id, SignInCode.used_at.is_(None))
            .values(used_at=now)
        )
    )
    return claimed == 1


def _remember_device(session: Session, *, phone: str, client: str, now: datetime) -> None:
    """This client signed in with this phone: it keeps a way in from now on."""
    known = session.scalar(
        select(SignInDevice).where(SignInDevice.phone == phone, SignInDevice.client == client)
    )
    if known is None:
        session.add(SignInDevice(phone=phone, client=client, first_at=now, last_at=now))
    else:
        known.last_at = now
    session.flush()


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
