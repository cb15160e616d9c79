"""Reporting in and enrolment (报到/报名): a party member, cadre or volunteer proves their
phone with a one-time code and asks to join the roster of the community where they live; the
community secretary approves (遴选) or declines with a reason. Approved, they are a responder
(kept by the API, so no bundle retires them) that the next activation calls."""

from __future__ import annotations

from collections.abc import Sequence

import shapely
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mobilize import validation
from mobilize.auth.actor import Actor
from mobilize.auth.policy import editors
from mobilize.auth.ratelimit import RateLimiter
from mobilize.auth.scope import in_place, visible
from mobilize.auth.signin import SignInLimits, claim_code, client_key, normalize_phone, verify_code
from mobilize.bundle.rules import PHONE
from mobilize.clock import Clock
from mobilize.errors import Forbidden, InvalidCode, InvalidInput, NotFound
from mobilize.events import record_event
from mobilize.mobilisation.locks import lock_people
from mobilize.models import (
    Community,
    District,
    Enrolment,
    EnrolmentKind,
    EnrolmentStatus,
    Grid,
    GridLevel,
    Responder,
    ResponderKind,
    Unit,
)
from mobilize.models.base import Origin


def submit(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    limiter: RateLimiter,
    limits: SignInLimits,
    secret_key: str,
    phone: str,
    code: str,
    device: str | None,
    community: str,
    kind: EnrolmentKind,
    name: str,
    address: str,
    consent: bool,
    unit: str | None = None,
    skills: Sequence[str] = (),
    availability: str = "",
) -> Enrolment | InvalidCode:
    """An application from a phone proved by its code (a wrong code is returned, as at
    sign-in, so the spent try is committed). Everything is checked before the code is spent:
    bad input changes nothing."""
    phone = normalize_phone(phone)
    if not PHONE.match(phone):
        raise InvalidInput("phone", f"{phone!r} is not a phone number")
    if not consent:
        raise InvalidInput(
            "consent", "报到须同意登记个人信息 consent to be kept on record is needed"
        )
    name = validation.text("name", name, max_len=200)
    address = validation.text("address", address, max_len=300)
    availability = validation.text("availability", availability, max_len=300, min_len=0)
    skills = [validation.text("skills", s, max_len=40) for s in skills][:20]
    found = session.execute(
        select(Community.id, Community.district_id).where(
            Community.code == community, Community.current()
        )
    ).all()
    if len(found) != 1:
        raise InvalidInput("community", f"no community with code {community!r}")
    community_id, district_id = found[0]
    unit_id = None
    if kind is EnrolmentKind.CADRE and not unit:
        raise InvalidInput("unit", "a cadre reports with the unit that sends them")
    if unit:
        unit_id = session.scalar(
            select(Unit.id).where(
                Unit.district_id == district_id, Unit.code == unit, Unit.current()
            )
        )
        if unit_id is None:
            raise InvalidInput("unit", f"no unit with code {unit!r} in this district")
    client = client_key(actor.address, device)
    proved = verify_code(
        session, actor=actor, clock=clock, limiter=limiter, limits=limits,
        secret_key=secret_key, phone=phone, code=code, client=client,
    )  # fmt: skip
    if isinstance(proved, InvalidCode):
        return proved
    # The phone is theirs: what stands in the way may be named to them.
    on_roster = session.execute(
        select(Responder.name, Responder.code).where(
            Responder.district_id == district_id, Responder.phone == phone, Responder.current()
        )
    ).first()
    if on_roster is not None:
        raise InvalidInput(
            "phone",
            f"此号码已在名册 this phone is on the roster already ({on_roster.name}, "
            f"{on_roster.code}): sign in instead",
        )
    waiting = session.scalar(
        select(Enrolment).where(
            Enrolment.district_id == district_id,
            Enrolment.phone == phone,
            Enrolment.status == EnrolmentStatus.PENDING.value,
        )
    )
    if waiting is not None:
        raise InvalidInput("phone", _already(waiting))
    now = clock.now()
    if not claim_code(session, proved[0], now):
        raise InvalidInput("code", "this code was used a moment ago")
    enrolment = Enrolment(
        district_id=district_id,
        community_id=community_id,
        kind=kind.value,
        name=name,
        phone=phone,
        unit_id=unit_id,
        address=address,
        skills=skills,
        availability=availability,
        consent_at=now,
        status=EnrolmentStatus.PENDING.value,
        submitted_at=now,
    )
    try:
        with session.begin_nested():
            session.add(enrolment)
            session.flush()
    except IntegrityError:
        raise InvalidInput("phone", "an application from this phone arrived a moment ago") from None
    _event(session, clock, actor.label, "enrolment.submitted", enrolment)
    return enrolment


def _already(waiting: Enrolment) -> str:
    return (
        f"此号码已提交报到 this phone applied already on {waiting.submitted_at:%Y-%m-%d %H:%M} "
        f"UTC ({waiting.name}), waiting for the community's answer"
    )


def decide(
    session: Session,
    *,
    actor: Actor,
    clock: Clock,
    enrolment_id: int,
    approve: bool,
    reason: str = "",
    home_grid_id: int | None = None,
) -> Enrolment:
    """The secretary's answer. Approved: a responder of the right kind, living in the
    community (their home grid if named, else the community's own point)."""
    keeper = editors(actor, "Mutation.decideEnrolment")
    enrolment = session.scalar(
        select(Enrolment)
        .where(Enrolment.id == enrolment_id, visible(keeper, Enrolment))
        .with_for_update()
    )
    if enrolment is None:
        raise NotFound(f"没有这个报到 No application {enrolment_id}")
    if not session.scalar(select(in_place(keeper, enrolment.community_id))):
        raise Forbidden("decideEnrolment: 不在您的社区 not in your place")
    if enrolment.status != EnrolmentStatus.PENDING:
        raise InvalidInput("enrolment", f"already {enrolment.status} by {enrolment.decided_by}")
    reason = validation.text("reason", reason, max_len=500, min_len=0 if approve else 1)
    now = clock.now()
    if approve:
        enrolment.responder_id = _enrol(session, enrolment, home_grid_id).id
    enrolment.status = EnrolmentStatus.APPROVED if approve else EnrolmentStatus.DECLINED
    enrolment.decided_at = now
    enrolment.decided_by = actor.label
    enrolment.reason = reason or None
    session.flush()
    _event(
        session,
        clock,
        actor.label,
        f"enrolment.{EnrolmentStatus(enrolment.status).value}",
        enrolment,
    )
    return enrolment


def _enrol(session: Session, enrolment: Enrolment, home_grid_id: int | None) -> Responder:
    community = session.get_one(Community, enrolment.community_id)
    grid = None
    if home_grid_id is not None:
        grid = session.get(Grid, home_grid_id)
        if grid is None or grid.community_id != community.id:
            raise InvalidInput("homeGrid", "not a grid of the community they reported to")
    lock_people(session, enrolment.district_id)
    on_roster = session.scalar(
        select(Responder.code).where(
            Responder.district_id == enrolment.district_id,
            Responder.phone == enrolment.phone,
            Responder.current(),
        )
    )
    if on_roster is not None:
        raise InvalidInput("enrolment", f"this phone joined the roster meanwhile ({on_roster})")
    kind = {
        EnrolmentKind.CADRE: ResponderKind.SUNK_CADRE,
        EnrolmentKind.PARTY_MEMBER: ResponderKind.VOLUNTEER,
        EnrolmentKind.VOLUNTEER: ResponderKind.VOLUNTEER,
    }[EnrolmentKind(enrolment.kind)]
    where = grid.centre if grid is not None else community.geom.representative_point()
    responder = Responder(
        district_id=enrolment.district_id,
        code=f"E{enrolment.id:06d}",
        name=enrolment.name,
        phone=enrolment.phone,
        kind=kind.value,
        unit_id=enrolment.unit_id,
        team_id=None,
        home_grid_id=grid.id if grid is not None and grid.level == GridLevel.MICRO else None,
        geom=shapely.Point(where.x, where.y),
        skills=list(enrolment.skills or []),
        seniority=0,
        origin=Origin.API,
    )
    session.add(responder)
    session.flush()
    return responder


def _event(session: Session, clock: Clock, by: str, kind: str, e: Enrolment) -> None:
    district = session.scalar(select(District.code).where(District.id == e.district_id))
    record_event(
        session,
        clock=clock,
        actor=by,
        kind=kind,
        subject_type="enrolment",
        subject_id=str(e.id),
        payload={
            "district": district,
            "community": e.community_id,
            "kind": e.kind,
            "responder": e.responder_id,
            "reason": e.reason,
        },
    )
