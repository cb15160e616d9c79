"""Phone sign-in, tokens that expire and are revoked, and the audit trail they leave."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.auth.actor import Actor
from mobilize.auth.cache import ActorCache
from mobilize.auth.ratelimit import MemoryCounter, RateLimiter
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.models import Event, Role, RoleBinding, User
from mobilize.notify import Message, Notifier
from mobilize.settings import Settings
from tests.people import make_user
from tests.statements import statements


class Outbox:
    """The phones' channel. A code goes out after the answer (its time must not tell a known
    phone from an unknown one), so reading one waits for it a moment."""

    name = "phones"

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def accepts(self, message: Message) -> bool:
        return True

    def send(self, message: Message, *, key: str = "") -> None:
        self.messages.append(message)

    def code(self, count: int | None = None) -> str:
        """The newest code, once `count` messages (default: any) have arrived."""
        deadline = time.monotonic() + 5
        while len(self.messages) < (count or 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        match = re.search(r"\b(\d{6})\b", self.messages[-1].text)
        assert match
        return match.group(1)


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def client(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, outbox: Outbox
) -> Iterator[TestClient]:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    frozen = RateLimiter(MemoryCounter(), now=lambda: 1_000_000.0)  # no window boundary mid-test
    app = create_app(
        Settings(), engine=engine, clock=clock, notifier=Notifier([outbox]), limiter=frozen
    )
    with TestClient(app) as test_client:
        yield test_client


REQUEST = """mutation($phone: String!) { requestSignInCode(phone: $phone) {
    __typename ... on SignInCodeSent { message } ... on Error { message }
    ... on RateLimitedError { retryAfterSeconds } ... on ValidationError { field } } }"""
SIGN_IN = """mutation($phone: String!, $code: String!) {
    signInWithCode(phone: $phone, code: $code) {
    __typename ... on SignInSuccess { token expiresAt } ... on InvalidCodeError { attemptsLeft }
    ... on ValidationError { field } ... on RateLimitedError { retryAfterSeconds } } }"""
ME = "{ me { name roles { role scopeCode } } }"
REQUEST_FROM = """mutation($phone: String!, $device: String) {
    requestSignInCode(phone: $phone, device: $device) { __typename ... on Error { message } } }"""
SIGN_IN_FROM = """mutation($phone: String!, $code: String!, $device: String) {
    signInWithCode(phone: $phone, code: $code, device: $device) {
    __typename ... on SignInSuccess { token } ... on InvalidCodeError { attemptsLeft } } }"""


def gql(client: TestClient, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def run(client: TestClient, query: str, token: str | None = None, **variables: Any) -> Any:
    response = gql(client, query, token, **variables)
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def test_phone_sign_in_end_to_end(
    client: TestClient,
    tiny_bundle: Bundle,
    outbox: Outbox,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mobilize.audit")
    person = next(r for r in tiny_bundle.responders if r.kind == "micro_grid_member")
    sent = run(client, REQUEST, phone=person.phone)
    assert sent["__typename"] == "SignInCodeSent"
    code = outbox.code(1)
    assert outbox.messages[-1].to == person.phone and outbox.messages[-1].kind == "sign_in_code"
    assert "验证码" in outbox.messages[-1].text
    result = run(client, SIGN_IN, phone=person.phone, code=code)
    assert result["__typename"] == "SignInSuccess"
    me = run(client, ME, result["token"])
    assert me == {"name": person.name, "roles": [{"role": "responder", "scopeCode": person.code}]}
    # A second sign-in reuses the same user instead of creating another.
    run(client, REQUEST, phone=person.phone)
    again = run(client, SIGN_IN, phone=person.phone, code=outbox.code(2))
    assert run(client, ME, again["token"]) == me
    with Session(engine) as session:
        kinds = session.scalars(select(Event.kind).order_by(Event.seq)).all()
    assert kinds.count("user.created") == 1 and kinds.count("token.issued") == 2
    assert kinds.count("auth.code_requested") == 2
    audit = caplog.text
    assert '"audit": "auth.signed_in"' in audit and '"audit": "token.issued"' in audit
    assert outbox.code() not in audit  # secrets never reach the log


def test_unknown_phones_look_the_same_and_get_nothing(
    client: TestClient, outbox: Outbox, tiny_bundle: Bundle, engine: Engine
) -> None:
    """Same answers, same tries left, the same statements in the same order (so the same
    work, and no timing to tell them apart); only the registered phone is sent a code."""
    known = tiny_bundle.responders[5].phone
    unknown = "13000000000"
    assert unknown not in {r.phone for r in tiny_bundle.responders}
    run(client, REQUEST, phone=tiny_bundle.responders[4].phone)  # first-time work done
    outbox.code(1)
    seen: dict[str, list[str]] = {}
    for phone in (known, unknown):
        with statements(engine) as said:
            answers = [
                run(client, REQUEST, phone=phone),
                run(client, SIGN_IN, phone=phone, code="000000"),
                run(client, SIGN_IN, phone=phone, code="000001"),
            ]
        assert answers[0] == {"__typename": "SignInCodeSent", "message": answers[0]["message"]}
        assert [a.get("attemptsLeft") for a in answers[1:]] == [4, 3], phone
        seen[phone] = said
    assert seen[known] == seen[unknown]
    outbox.code(2)
    time.sleep(0.2)  # nothing more is coming
    assert [m.to for m in outbox.messages][1:] == [known]


def test_a_slow_message_channel_does_not_slow_the_answer(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """A registered phone's answer must not wait for its message to go out: the wait alone
    would tell registered phones from the rest."""
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    release = threading.Event()
    sent: list[Message] = []

    class SlowChannel:
        name = "slow"

        def accepts(self, message: Message) -> bool:
            return True

        def send(self, message: Message, *, key: str = "") -> None:
            release.wait(10)
            sent.append(message)

    app = create_app(Settings(), engine=engine, clock=clock, notifier=Notifier([SlowChannel()]))
    phone = tiny_bundle.responders[6].phone
    with TestClient(app) as client:
        began = time.monotonic()
        assert run(client, REQUEST, phone=phone)["__typename"] == "SignInCodeSent"
        assert time.monotonic() - began < 5  # answered while the channel still holds it
        assert sent == []
        release.set()
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
    assert [m.to for m in sent] == [phone]


def test_someone_spending_a_phones_codes_and_tries_cannot_lock_its_owner_out(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, outbox: Outbox
) -> None:
    """An attacker asks for the owner's codes and guesses, from a new device id each time,
    until the phone's shared allowance refuses them; the owner's phone, which signed in
    before, still asks for a code and signs in, and the attacker never spent its tries.
    (Both come from one test address here, so the per-address limits are set out of reach.)"""
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    settings = Settings(
        sign_in_requests_per_address="10000/900", sign_in_tries_per_address="10000/900"
    )
    frozen = RateLimiter(MemoryCounter(), now=lambda: 1_000_000.0)
    app = create_app(
        settings, engine=engine, clock=clock, notifier=Notifier([outbox]), limiter=frozen
    )
    phone = tiny_bundle.responders[7].phone
    owner, attacker = "owner-device-0123456789", "attacker-device-0"
    with TestClient(app) as client:
        run(client, REQUEST_FROM, phone=phone, device=owner)
        first = run(client, SIGN_IN_FROM, phone=phone, code=outbox.code(1), device=owner)
        assert first["__typename"] == "SignInSuccess"
        run(client, REQUEST_FROM, phone=phone, device=owner)
        owners_code = outbox.code(2)
        answers = []
        for i in range(40):
            device = f"{attacker}{i:04d}"
            answers.append(run(client, REQUEST_FROM, phone=phone, device=device)["__typename"])
            run(client, SIGN_IN_FROM, phone=phone, code="999999", device=device)
        sent = answers.count("SignInCodeSent")
        # the shared allowance (20 an hour) less the owner's first request: their second came
        # from a device that had signed in, which the allowance does not count
        assert sent == 20 - 1
        assert answers[sent:] == ["RateLimitedError"] * (40 - sent)
        # the owner's code kept every try, and their device may still ask
        again = run(client, SIGN_IN_FROM, phone=phone, code=owners_code, device=owner)
        assert again["__typename"] == "SignInSuccess"
        asked = run(client, REQUEST_FROM, phone=phone, device=owner)
        assert asked["__typename"] == "SignInCodeSent"
        code = outbox.code(2 + sent + 1)  # the owner's two, the attacker's, this one
        # a code asked for by one device does not open the door for another
        stolen = run(client, SIGN_IN_FROM, phone=phone, code=code, device=f"{attacker}0000")
        assert stolen["__typename"] == "InvalidCodeError"
        assert run(client, SIGN_IN_FROM, phone=phone, code=code, device=owner)["token"]


def test_a_brute_forced_code_locks_after_five_tries(
    client: TestClient, tiny_bundle: Bundle, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mobilize.audit")
    phone = tiny_bundle.responders[0].phone
    run(client, REQUEST, phone=phone)
    right = outbox.code(1)
    wrong = [f"{(int(right) + i) % 1_000_000:06d}" for i in range(1, 13)]
    outcomes = [run(client, SIGN_IN, phone=phone, code=guess) for guess in wrong]
    assert [o["attemptsLeft"] for o in outcomes[:5]] == [4, 3, 2, 1, 0]
    # Past five tries the code is dead; past ten the phone is rate-limited outright.
    assert {o["__typename"] for o in outcomes[5:10]} == {"InvalidCodeError"}
    assert outcomes[10]["__typename"] == "RateLimitedError"
    assert run(client, SIGN_IN, phone=phone, code=right)["__typename"] != "SignInSuccess"
    assert caplog.text.count('"audit": "auth.sign_in_failed"') >= 10


def test_codes_expire_after_five_minutes(
    client: TestClient, tiny_bundle: Bundle, outbox: Outbox, clock: ManualClock
) -> None:
    phone = tiny_bundle.responders[1].phone
    run(client, REQUEST, phone=phone)
    clock.advance(timedelta(minutes=5, seconds=1))
    result = run(client, SIGN_IN, phone=phone, code=outbox.code(1))
    assert result == {"__typename": "InvalidCodeError", "attemptsLeft": 0}


def test_code_requests_are_rate_limited_per_phone(client: TestClient, tiny_bundle: Bundle) -> None:
    phone = tiny_bundle.responders[2].phone
    results = [run(client, REQUEST, phone=phone)["__typename"] for _ in range(6)]
    assert results == ["SignInCodeSent"] * 5 + ["RateLimitedError"]


def test_inputs_are_checked_and_the_field_named(client: TestClient) -> None:
    assert run(client, REQUEST, phone="call me") == {
        "__typename": "ValidationError",
        "message": "phone: 不是有效的手机号 not a phone number (digits, optional +)",
        "field": "phone",
    }
    assert run(client, REQUEST, phone="1" * 40)["field"] == "phone"
    assert run(client, SIGN_IN, phone="13900000000", code="12ab")["field"] == "code"


def test_expired_and_revoked_tokens_are_refused(
    client: TestClient,
    engine: Engine,
    clock: ManualClock,
    tiny_bundle: Bundle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mobilize.audit")
    token = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    assert run(client, ME, token)["roles"][0]["role"] == "district_commander"

    revoked = run(
        client, "mutation { signOut { __typename ... on TokenRevoked { revokedAt } } }", token
    )
    assert revoked["__typename"] == "TokenRevoked"
    refused = gql(client, ME, token)
    assert refused.status_code == 401
    assert "token revoked" in refused.json()["detail"]
    assert refused.headers["www-authenticate"].startswith("Bearer")

    fresh = make_user(engine, clock, Role.REVIEWER, tiny_bundle.district_code)
    clock.advance(timedelta(days=31))
    expired = gql(client, ME, fresh)
    assert expired.status_code == 401 and "token expired" in expired.json()["detail"]
    assert gql(client, ME, "mbz_not-a-token").status_code == 401
    assert (
        client.post(
            "/graphql", json={"query": ME}, headers={"Authorization": "Basic abc"}
        ).status_code
        == 401
    )
    assert caplog.text.count('"audit": "auth.rejected"') >= 3
    assert '"audit": "token.revoked"' in caplog.text


def test_a_token_checked_while_it_was_being_revoked_is_not_trusted_afterwards(
    clock: ManualClock,
) -> None:
    """A request reads the token as valid, the revocation commits and clears the cache, then
    the request caches what it read: that stale answer must not be kept for a minute."""
    cache = ActorCache(60)
    actor = Actor(user_id=7, name="某干部", bindings=())
    expires = clock.now() + timedelta(days=30)
    before = cache.generation()  # the look-up starts
    cache.clear()  # a revocation commits meanwhile
    cache.put("token", actor, expires, before)
    assert cache.get("token", clock.now()) is None
    cache.put("token", actor, expires, cache.generation())  # a look-up after the clear
    assert cache.get("token", clock.now()) == actor


def test_a_disabled_users_token_is_refused_and_a_binding_to_a_missing_place_opens_nothing(
    client: TestClient, engine: Engine, clock: ManualClock, tiny_bundle: Bundle
) -> None:
    street = tiny_bundle.streets[0].code
    token = make_user(engine, clock, Role.STREET_COMMANDER, street, name="街道指挥")
    with transaction(make_sessionmaker(engine)) as session:
        user = session.scalars(select(User).where(User.name == "街道指挥")).one()
        user.disabled_at = clock.now()
    refused = gql(client, ME, token)
    assert refused.status_code == 401 and "user disabled" in refused.json()["detail"]

    orphan = make_user(engine, clock, Role.STREET_COMMANDER, street, name="撤并街道")
    with transaction(make_sessionmaker(engine)) as session:
        user = session.scalars(select(User).where(User.name == "撤并街道")).one()
        session.execute(
            update(RoleBinding).where(RoleBinding.user_id == user.id).values(scope_code="GONE")
        )
    errors = gql(client, ME, orphan).json()["errors"]
    assert "Not allowed: Query.me" in errors[0]["message"]


def test_only_admins_revoke_other_peoples_tokens(
    client: TestClient,
    engine: Engine,
    clock: ManualClock,
    tiny_bundle: Bundle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="mobilize.audit")
    victim = make_user(engine, clock, Role.REVIEWER, tiny_bundle.district_code)
    other = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    admin = make_user(engine, clock, Role.ADMIN, tiny_bundle.district_code)
    with Session(engine) as session:
        victim_token = session.scalars(
            select(Event.payload).where(Event.kind == "token.issued").order_by(Event.seq)
        ).all()[0]["token_id"]
    from mobilize.api.relay import to_global_id

    revoke = """mutation($id: ID!) { revokeToken(tokenId: $id) { __typename
        ... on Error { message } } }"""
    token_id = to_global_id("Token", victim_token)
    assert run(client, revoke, other, id=token_id)["__typename"] == "NotFoundError"
    assert run(client, ME, victim)["name"] == "reviewer"
    assert run(client, revoke, admin, id=token_id)["__typename"] == "TokenRevoked"
    assert gql(client, ME, victim).status_code == 401
    anonymous = gql(client, revoke, id=token_id).json()
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert '"audit": "access.denied"' in caplog.text


def test_racing_phones_cannot_use_one_code_twice_or_exceed_five_tries(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    """Sixteen clients at once, each in its own thread and transaction: one code, one token;
    wrong guesses together spend at most five tries."""
    from concurrent.futures import ThreadPoolExecutor

    from mobilize.auth import signin
    from mobilize.auth.actor import ANONYMOUS
    from mobilize.auth.ratelimit import Limit, MemoryCounter, RateLimiter
    from mobilize.auth.users import IssuedToken
    from mobilize.errors import InvalidCode

    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    factory = make_sessionmaker(engine)
    roomy = Limit(1000, 900)
    limits = signin.SignInLimits(roomy, roomy, roomy, roomy, roomy)
    limiter = RateLimiter(MemoryCounter())
    actor = ANONYMOUS.with_address("10.0.0.1")

    def request(phone: str) -> str:
        with transaction(factory) as session:
            [message] = signin.request_code(
                session,
                actor=actor,
                clock=clock,
                limiter=limiter,
                limits=limits,
                secret_key="k",
                phone=phone,
            )
        found = re.search(r"\b(\d{6})\b", message.text)
        assert found
        return found.group(1)

    def attempt(phone: str, code: str) -> IssuedToken | InvalidCode:
        with transaction(factory) as session:
            return signin.sign_in_with_code(
                session,
                actor=actor,
                clock=clock,
                limiter=limiter,
                limits=limits,
                secret_key="k",
                phone=phone,
                code=code,
            )

    phone = tiny_bundle.responders[3].phone
    code = request(phone)
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda _: attempt(phone, code), range(16)))
    assert sum(isinstance(o, IssuedToken) for o in outcomes) == 1

    other = tiny_bundle.responders[4].phone
    right = request(other)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    with ThreadPoolExecutor(16) as pool:
        guesses = list(pool.map(lambda _: attempt(other, wrong), range(16)))
    spent = [g for g in guesses if isinstance(g, InvalidCode) and g.attempts_left > 0]
    assert len(spent) <= 4  # tries that still left a try: at most 4 of the 5
    assert isinstance(attempt(other, right), InvalidCode)  # all five are gone
