"""What the people on call see: Prometheus metrics of the API (latency by operation, the
database's gauges) and JSON log lines that carry the request id, also into background work."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize import logs
from mobilize.api.app import create_app
from mobilize.api.relay import to_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.models import Assignment, GridState, Role
from mobilize.notify import LogNotifier
from mobilize.settings import Settings
from mobilize.worker.inprocess import InProcessDispatcher
from tests.people import make_user
from tests.wartime import activated


def samples(client: TestClient, name: str, **labels: str) -> list[float]:
    text = client.get("/metrics").text
    return [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and labels.items() <= s.labels.items()
    ]


def test_metrics_show_latency_by_operation_and_each_mobilisations_coverage(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock
) -> None:
    mobilisation = activated(engine, tiny_bundle, clock)
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    app = create_app(Settings(), engine=engine, clock=clock, scheduler=False)
    auth = {"Authorization": f"Bearer {commander}"}
    with TestClient(app) as client:
        before = sum(samples(client, "mobilize_graphql_seconds_count", operation="coverage"))
        for _ in range(3):
            answer = client.post(
                "/graphql",
                json={
                    "query": "query($m: ID!) { coverage(mobilisation: $m) { grids } }",
                    "variables": {"m": to_global_id("Mobilisation", mobilisation.id)},
                },
                headers=auth,
            )
            assert answer.json()["data"]["coverage"]["grids"] == 20
        client.post("/graphql", json={"query": "{ nosuchField }"}, headers=auth)
        counted = sum(samples(client, "mobilize_graphql_seconds_count", operation="coverage"))
        assert counted - before == 3
        assert samples(client, "mobilize_graphql_seconds_count", operation="invalid")
        assert not samples(client, "mobilize_graphql_seconds_count", operation="nosuchField")
        mid = str(mobilisation.id)
        with Session(engine) as session:
            grids = dict(
                session.execute(
                    select(GridState.status, func.count())
                    .where(GridState.mobilisation_id == mobilisation.id)
                    .group_by(GridState.status)
                ).all()
            )
            people = session.execute(
                select(func.count()).where(Assignment.mobilisation_id == mobilisation.id)
            ).scalar_one()
        for status, n in grids.items():
            assert samples(client, "mobilize_grids", mobilisation=mid, status=status) == [n]
        assert sum(samples(client, "mobilize_people", mobilisation=mid)) == people
        assert samples(client, "mobilize_jobs", status="done") == [1.0]
        assert samples(client, "mobilize_http_requests_total", path="/graphql", status="200")


def test_metrics_can_require_a_token(engine: Engine, clock: ManualClock) -> None:
    settings = Settings(metrics_token="scrape-me")
    app = create_app(settings, engine=engine, clock=clock, scheduler=False)
    with TestClient(app) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert right.status_code == 200 and "mobilize_grids" in right.text


def test_a_workers_metrics_listen_on_this_machine_only_and_want_the_token() -> None:
    """The worker's own Prometheus port: bound to 127.0.0.1 unless told otherwise, and, with
    the metrics token set, as closed as the API's /metrics."""
    import httpx

    from mobilize.metrics import serve_metrics
    from mobilize.topology import free_port

    assert Settings().worker_metrics_host == "127.0.0.1"
    server = serve_metrics(free_port(), host=Settings().worker_metrics_host, token="scrape-me")
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        assert (
            httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
        )
        right = httpx.get(url, headers={"Authorization": "Bearer scrape-me"}, timeout=5)
        assert right.status_code == 200 and "mobilize_task_seconds" in right.text
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    logs.configure_logging("json")
    stream = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    yield stream
    root.handlers[:] = kept[0]
    root.setLevel(kept[1])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stream.getvalue().splitlines()]


def test_log_lines_are_json_with_the_request_id_also_from_background_work(
    engine: Engine, tiny_bundle: Bundle, clock: ManualClock, json_log: io.StringIO
) -> None:
    """A request's id comes back in X-Request-ID and names its access line and the log lines
    of the job it queued (an activation solved on a background thread)."""
    from mobilize.db import make_sessionmaker, transaction
    from mobilize.districts.importer import import_district

    with transaction(make_sessionmaker(engine)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    commander = make_user(engine, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    dispatcher = InProcessDispatcher(engine, LogNotifier(), clock)
    app = create_app(Settings(), engine=engine, clock=clock, dispatcher=dispatcher)
    query = """mutation { activateMobilisation(scope: {district: true}, kind: EPIDEMIC,
      title: "演练") { __typename ... on Mobilisation { status } } }"""
    with TestClient(app) as client:
        answer = client.post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {commander}", "X-Request-ID": "cmd-7"},
        )
        mine = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
        dispatcher.wait()
    assert answer.headers["x-request-id"] == "cmd-7"
    assert answer.json()["data"]["activateMobilisation"]["status"] == "ACTIVE"
    assert mine.headers["x-request-id"] != "bad id with spaces"  # not taken: a new one
    found = lines(json_log)
    access = [x for x in found if x["logger"] == "mobilize.access" and x["path"] == "/graphql"]
    assert [x["request_id"] for x in access] == ["cmd-7"] and access[0]["status"] == 200
    job = [x for x in found if x.get("job")]
    assert [(x["request_id"], x["outcome"]) for x in job] == [("cmd-7", "done")]
    messages = [x for x in found if x["logger"] == "mobilize.notify"]
    assert messages and {x["request_id"] for x in messages} == {"cmd-7"}
