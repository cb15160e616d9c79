"""The production topology: docker-compose.yml's structure, and the same processes started
locally (two API processes, a Celery worker, beat) against PostGIS and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from mobilize.api.app import create_app
from mobilize.clock import ManualClock
from mobilize.db import make_engine
from mobilize.settings import Settings
from mobilize.topology import Topology, free_port

ROOT = Path(__file__).resolve().parents[1]
BROKER = "redis://127.0.0.1:6379/13"


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_has_the_production_topology() -> None:
    services = compose()["services"]
    assert {"db", "redis", "migrate", "api", "worker", "beat"} <= set(services)
    assert services["db"]["image"].startswith("postgis/postgis:15")
    for name in ("db", "redis", "api"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    assert any("/var/lib/postgresql/data" in v for v in services["db"]["volumes"])
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert set(compose()["volumes"]) >= {"pgdata", "redisdata"}
    assert services["migrate"]["command"] == ["mobilize", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("api", "worker", "beat"):
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", name
        env = services[name]["environment"]
        assert env["MOBILIZE_DATABASE_URL"].startswith("postgresql://")
        assert env["MOBILIZE_BROKER_URL"].startswith("redis://redis:6379")
    api = services["api"]["command"]
    assert int(api[api.index("--workers") + 1]) > 1, "the API runs several processes"
    assert "beat" in services["beat"]["command"] and "replicas" not in services["beat"].get(
        "deploy", {}
    )
    assert "healthz" in " ".join(services["api"]["healthcheck"]["test"])
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install" in docker and 'CMD ["mobilize", "serve"' in docker


@pytest.fixture
def topology(postgis_url: str, tmp_path: Path) -> Iterator[Topology]:
    with Topology(postgis_url, BROKER, tmp_path / "logs", apis=2) as running:
        yield running


def test_the_local_topology_runs_every_process(topology: Topology) -> None:
    for i in range(2):
        assert httpx.get(f"{topology.url(i)}/healthz", timeout=5).status_code == 200
    control = Celery(broker=BROKER).control  # as an operator's tool would ask
    replies: list[Any] = []
    for _ in range(40):
        replies = control.ping(timeout=1.0)
        if replies:
            break
    assert replies, topology.log("worker")[-2000:]
    assert topology.procs["beat"].poll() is None, topology.log("beat")[-2000:]
    topology.restart("api-1")
    assert httpx.get(f"{topology.url(1)}/healthz", timeout=5).status_code == 200


def test_readyz_names_what_is_down(engine: Engine, clock: ManualClock) -> None:
    def ready(settings: Settings, db: Engine) -> tuple[int, dict[str, Any]]:
        app = create_app(settings, engine=db, clock=clock, scheduler=False)
        with TestClient(app) as client:
            answer = client.get("/readyz")
            assert client.get("/healthz").status_code == 200  # alive all the same
        return answer.status_code, answer.json()

    assert ready(Settings(), engine) == (
        200,
        {"status": "ready", "database": "ok", "broker": "none"},
    )
    code, body = ready(Settings(broker_url=BROKER), engine)
    assert code == 200 and body["broker"] == "ok"
    dead_port = f"redis://127.0.0.1:{free_port()}/0"
    code, body = ready(Settings(broker_url=dead_port), engine)
    assert code == 503 and body["broker"].startswith("down") and body["database"] == "ok"
    nowhere = make_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    code, body = ready(Settings(), nowhere)
    assert code == 503 and body["database"].startswith("down")
    nowhere.dispose()
