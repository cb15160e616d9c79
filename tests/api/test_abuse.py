"""A scripted client must not hurt the service: limits on depth, size, aliases, cost, rate."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect

from mobilize.api.app import create_app
from mobilize.auth.ratelimit import Hit, Limit, MemoryCounter, RateLimiter, RedisCounter
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_sessionmaker, transaction
from mobilize.districts import queries
from mobilize.districts.importer import import_district
from mobilize.errors import RateLimited
from mobilize.models import Role
from mobilize.settings import Settings
from tests.people import make_user

REDIS_URL = "redis://127.0.0.1:6379/15"
# This file alone uses Redis database 15, and its tests run one at a time on one
# pytest-xdist worker: two of them at once would share its queues.
pytestmark = pytest.mark.xdist_group("redis-15")


@pytest.fixture
def token(engine: Engine, tiny_bundle: Bundle, clock: ManualClock) -> str:
    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    return make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)


def _client(engine: Engine, clock: ManualClock, token: str, **settings: Any) -> TestClient:
    # Rate-limit windows on a frozen clock: a burst never straddles two windows.
    limiter = RateLimiter(MemoryCounter(), now=lambda: 1_000_000.0)
    client = TestClient(
        create_app(Settings(**settings), engine=engine, clock=clock, limiter=limiter)
    )
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def client(engine: Engine, clock: ManualClock, token: str) -> Iterator[TestClient]:
    with _client(engine, clock, token) as test_client:
        yield test_client


def errors(client: TestClient, query: str, **variables: Any) -> list[str]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return [e["message"] for e in response.json().get("errors", [])]


def test_a_query_fifty_levels_deep_is_refused(client: TestClient) -> None:
    query = "{ grids { edges { node { " + "parent { " * 48 + "code" + " }" * 48 + " } } } }"
    found = errors(client, query)
    assert found and "exceeds maximum operation depth of 12" in found[0]


def test_a_thousand_aliases_are_refused_even_behind_fragments(
    engine: Engine, clock: ManualClock, token: str, client: TestClient
) -> None:
    direct = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(1000)) + " }"
    assert "more than 4000 tokens" in errors(client, direct)[0]  # the first wall it hits
    with _client(engine, clock, token, max_query_tokens=100_000) as roomy:
        assert "1000 aliases found. Allowed: 30" in errors(roomy, direct)[0]
    ten = " ".join(f"a{i}: me {{ name }}" for i in range(10))
    spreads = " ".join("...Ten" for _ in range(100))
    hidden = f"fragment Ten on Query {{ {ten} }} query {{ {spreads} }}"
    assert "1000 aliases found" in " ".join(errors(client, hidden))


def test_too_many_tokens_are_refused_before_parsing_finishes(
    engine: Engine, clock: ManualClock, token: str
) -> None:
    with _client(engine, clock, token, max_aliases=10_000) as client:
        query = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(1500)) + " }"
        assert "Document contains more than 4000 tokens" in errors(client, query)[0]


def test_a_two_megabyte_query_gets_413(client: TestClient) -> None:
    query = "{ me { name } }" + " " * 2_000_000
    response = client.post("/graphql", json={"query": query})
    assert response.status_code == 413
    assert "larger than 1000000 bytes" in response.json()["errors"][0]["message"]


def test_a_fragment_cycle_is_refused(client: TestClient) -> None:
    query = """fragment A on Grid { parent { ...B } } fragment B on Grid { parent { ...A } }
        query { grids { edges { node { ...A } } } }"""
    assert any("Cannot spread fragment 'A' within itself" in e for e in errors(client, query))


def test_an_expensive_query_is_refused_with_its_estimated_cost(client: TestClient) -> None:
    query = """{ grids(first: 500) { edges { node { code
        children { code households { code tags } } households { code size } } } } }"""
    found = errors(client, query)
    assert found and "Query too expensive: estimated cost" in found[0]
    assert (
        errors(client, "{ grids(first: 20) { edges { node { code households { code } } } } }") == []
    )


def test_batching_is_off(client: TestClient) -> None:
    response = client.post("/graphql", json=[{"query": "{ me { name } }"}] * 2)
    assert response.status_code == 400


def test_a_burst_past_the_rate_limit_gets_429_with_retry_after(
    engine: Engine, clock: ManualClock, token: str
) -> None:
    with _client(engine, clock, token, rate_limit_per_address="20/60") as client:
        statuses = [
            client.post("/graphql", json={"query": "{ me { name } }"}).status_code
            for _ in range(25)
        ]
        assert statuses[:20] == [200] * 20
        assert set(statuses[20:]) == {429}
        limited = client.post("/graphql", json={"query": "{ me { name } }"})
        assert int(limited.headers["retry-after"]) == 20  # 1,000,000 s is 40 s into its window


def test_a_token_past_its_limit_gets_429_while_others_from_the_same_address_go_on(
    engine: Engine, clock: ManualClock, tiny_bundle: Bundle, token: str
) -> None:
    """Phones behind one carrier gateway share an address: a scripted client is held back by
    its token's limit without stopping its neighbours."""
    other = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    with _client(engine, clock, token, rate_limit_per_token="5/60") as client:
        statuses = [
            client.post("/graphql", json={"query": "{ me { name } }"}).status_code for _ in range(7)
        ]
        assert statuses == [200] * 5 + [429] * 2
        neighbour = client.post(
            "/graphql",
            json={"query": "{ me { name } }"},
            headers={"Authorization": f"Bearer {other}"},
        )
        assert neighbour.status_code == 200 and "errors" not in neighbour.json()


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(
    engine: Engine, clock: ManualClock, token: str
) -> None:
    """A client that writes a new X-Forwarded-For on each request is still one address; the
    same header from the configured proxy names the real clients, each with its own limit."""

    def statuses(proxies: str, peer: str) -> list[int]:
        limiter = RateLimiter(MemoryCounter(), now=lambda: 1_000_000.0)
        settings = Settings(rate_limit_per_address="3/60", trusted_proxies=proxies)
        app = create_app(settings, engine=engine, clock=clock, limiter=limiter)
        with TestClient(app, client=(peer, 40000)) as client:
            return [
                client.post(
                    "/graphql",
                    json={"query": "{ me { name } }"},
                    headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": f"10.9.0.{i}"},
                ).status_code
                for i in range(6)
            ]

    assert statuses("", "192.0.2.7") == [200] * 3 + [429] * 3  # nobody trusted
    assert statuses("10.0.0.2", "192.0.2.7") == [200] * 3 + [429] * 3  # not that proxy
    assert statuses("10.0.0.0/24", "10.0.0.2") == [200] * 6  # the proxy: six clients
    with pytest.raises(ValueError, match=r"'proxy\.local' is not an address"):
        Settings(trusted_proxies="10.0.0.2, proxy.local")


def test_a_body_nested_fifty_thousand_deep_gets_a_clear_400(client: TestClient) -> None:
    deep = '{"query": "{ me { name } }", "variables": ' + '{"a":' * 50_000 + "1" + "}" * 50_001
    response = client.post("/graphql", content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "nests deeper than 64 levels" in response.json()["errors"][0]["message"]
    # brackets inside strings are text, not nesting
    text = {"query": "query($t: String!) { me { name } }", "variables": {"t": "[" * 5000}}
    assert client.post("/graphql", json=text).status_code == 200
    # a WebSocket message as deep is refused with a reason, not a dropped connection
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": {}})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_text('{"type": "subscribe", "id": "1", "payload": ' + deep[:-1])
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4400 and "valid JSON" in closed.value.reason


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode()


ODD_IDS = [
    ("query($v: ID!) { node(id: $v) { id } }", _b64("Grid:12345678901234567890")),
    ("query($v: ID!) { node(id: $v) { id } }", _b64("Grid:2147483648")),
    ("query($v: ID!) { node(id: $v) { id } }", _b64("Grid: 1")),
    ("query($v: ID!) { node(id: $v) { id } }", _b64("Grid:1_0")),
    ("query($v: ID!) { node(id: $v) { id } }", _b64("Grid:01")),
    ("query($v: ID!) { node(id: $v) { id } }", _b64("Grid:12").rstrip("=")),
    ("query($v: ID!) { node(id: $v) { id } }", "not base64 at all!"),
    ("query($v: String) { grids(after: $v) { totalCount } }", _b64("cursor:12345678901234567890")),
    ("query($v: String) { grids(after: $v) { totalCount } }", _b64("cursor:1 ")),
]


def test_odd_ids_and_cursors_get_a_clear_error_naming_them(client: TestClient) -> None:
    for query, value in ODD_IDS:
        body = client.post("/graphql", json={"query": query, "variables": {"v": value}}).json()
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_INPUT", (value, error)
        assert error["message"].startswith(("malformed ID", "malformed cursor")), (value, error)


def test_a_time_outside_what_utc_can_hold_is_refused_by_name(client: TestClient) -> None:
    query = """query($at: DateTime!) { stateAt(mobilisation: "TW9iaWxpc2F0aW9uOjE=", at: $at)
      { seq } }"""
    for at in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"):
        body = client.post("/graphql", json={"query": query, "variables": {"at": at}}).json()
        [error] = body["errors"]
        assert "outside the years 1 to 9999 in UTC" in error["message"], error
        assert "$at" in error["message"]
    body = client.post("/graphql", json={"query": query, "variables": {"at": "tomorrow"}}).json()
    assert "is not an ISO 8601 time" in body["errors"][0]["message"]


def test_a_megabyte_syntax_error_and_a_denial_leave_short_log_lines(
    engine: Engine, clock: ManualClock, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        TestClient(create_app(Settings(max_body_bytes=2_000_000), engine=engine, clock=clock))
        as anonymous,
        caplog.at_level(logging.DEBUG),
    ):  # fmt: skip
        anonymous.post("/graphql", json={"query": "{" + "x" * 1_000_000})
        assert len(caplog.text) < 2_000, caplog.text[:500]
        caplog.clear()
        body = anonymous.post("/graphql", json={"query": "{ district { code } }"}).json()
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    lines = [r for r in caplog.records if r.name != "httpx"]
    assert [r.levelname for r in lines if r.levelno >= logging.WARNING] == []
    assert caplog.text.count('"audit": "access.denied"') == 1
    assert "Traceback" not in caplog.text


def test_unexpected_errors_are_masked_with_an_error_id(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret connection string leaked here")

    monkeypatch.setattr(queries, "district_by_code", broken)
    with caplog.at_level(logging.ERROR, logger="mobilize.api"):
        body = client.post("/graphql", json={"query": "{ district { code } }"}).json()
    error = body["errors"][0]
    assert "secret" not in error["message"]
    assert error["extensions"]["code"] == "INTERNAL"
    ref = error["extensions"]["errorId"]
    assert ref in error["message"]
    assert ref in caplog.text and "secret connection string" in caplog.text
    assert "Traceback" in caplog.text


def test_production_hides_introspection_and_graphiql(
    engine: Engine, clock: ManualClock, token: str
) -> None:
    production = {"env": "production", "secret_key": "s3cret", "metrics_token": "m3trics"}
    with _client(engine, clock, token, **production) as client:
        found = errors(client, "{ __schema { types { name } } }")
        assert found and "introspection" in found[0].lower()
        assert client.get("/graphql", headers={"Accept": "text/html"}).status_code != 200
        assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "Bearer m3trics"})
        assert scraped.status_code == 200
    with pytest.raises(RuntimeError, match="MOBILIZE_SECRET_KEY"):
        create_app(Settings(env="production", metrics_token="m"), engine=engine)
    with pytest.raises(RuntimeError, match="MOBILIZE_METRICS_TOKEN must be set"):
        create_app(Settings(env="production", secret_key="s3cret"), engine=engine)


def test_redis_shares_one_limit_between_processes() -> None:
    key = uuid.uuid4().hex
    first = RateLimiter(RedisCounter(REDIS_URL))
    second = RateLimiter(RedisCounter(REDIS_URL))  # as another API process would
    limit = Limit(3, 60)
    first.hit(Hit("test", key, limit))
    second.hit(Hit("test", key, limit))
    first.hit(Hit("test", key, limit))
    with pytest.raises(RateLimited) as caught:
        second.hit(Hit("test", key, limit))
    assert 1 <= caught.value.retry_after_s <= 60
    # A request counts its address and its token together: the one past its count refuses.
    roomy, tight = Hit("roomy", key, Limit(100, 60)), Hit("tight", key, Limit(1, 60))
    first.hit(roomy, tight)
    with pytest.raises(RateLimited, match="tight"):
        second.hit(roomy, tight)


def test_the_limiter_keeps_counting_when_redis_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limiter = RateLimiter(RedisCounter("redis://127.0.0.1:1/0"))
    start = time.monotonic()
    limiter.hit(Hit("test", "k", Limit(1, 60)))
    with pytest.raises(RateLimited):
        limiter.hit(Hit("test", "k", Limit(1, 60)))
    assert time.monotonic() - start < 10
    assert "Redis unreachable" in caplog.text
