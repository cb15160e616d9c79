"""The production topology: docker-compose.yml's structure, and the same processes started
locally (two API processes, a Celery worker, beat) against PostGIS and Redis."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from celery import Celery
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mobilize.api.app import create_app
from mobilize.api.relay import from_global_id
from mobilize.bundle import Bundle
from mobilize.clock import ManualClock
from mobilize.db import make_engine, make_sessionmaker, transaction
from mobilize.districts.importer import import_district
from mobilize.models import GridState, Role
from mobilize.settings import Settings
from mobilize.topology import Topology, free_port
from tests.conftest import wipe
from tests.people import make_user

ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/11"
# This file alone uses Redis database 11, and its tests run one at a time on one
# pytest-xdist worker: two of them at once would share its queues.
pytestmark = pytest.mark.xdist_group("redis-11")

ACTIVATE = """mutation { activateMobilisation(scope: {district: true}, kind: EPIDEMIC,
  title: "演练 drill") { __typename ... on Mobilisation { id status } } }"""


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_topology() -> None:
    services = compose()["services"]
    assert {"db", "redis", "migrate", "api", "worker", "beat", "flower"} <= set(services)
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
    assert "readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    assert services["worker"]["restart"] == "unless-stopped"  # a worker that ends itself
    for name in ("api", "worker"):  # several processes per container: metrics added up
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] in services[name]["tmpfs"]
        assert services[name]["environment"]["MOBILIZE_LOG_FORMAT"] == "json"
    assert services["worker"]["environment"]["MOBILIZE_WORKER_METRICS_PORT"]
    # reachable by Prometheus on the compose network, and closed by the metrics token
    assert services["worker"]["environment"]["MOBILIZE_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert "MOBILIZE_METRICS_TOKEN:?" in (ROOT / "docker-compose.yml").read_text()
    assert "flower" in services["flower"]["command"]
    assert any(a.startswith("--basic-auth=") for a in services["flower"]["command"])
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install" in docker and ".[ops]" in docker
    assert 'CMD ["mobilize", "serve"' in docker


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
    # An API that does not come up is diagnosed from its stacks, and the signal stops nothing.
    report = topology.diagnose("api-1")
    assert "still running" in report and "Thread 0x" in report and "uvicorn" in report, report
    assert httpx.get(f"{topology.url(1)}/healthz", timeout=5).status_code == 200
    # A worker that ends (as one whose consumer died ends itself) is started again, as
    # compose's restart policy does, and the new one answers.
    ended = topology.procs["worker"]
    os.killpg(ended.pid, signal.SIGKILL)
    ended.wait(30)
    deadline = time.monotonic() + 60
    replies = []
    while time.monotonic() < deadline and not replies:
        replies = control.ping(timeout=1.0) if topology.procs["worker"] is not ended else []
    assert replies and topology.restarts == {"worker": 1}, topology.log("worker")[-2000:]


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


@pytest.fixture
def topology_db(postgis_url: str) -> Iterator[Engine]:
    """The topology's database, wiped after the test."""
    eng = make_engine(postgis_url)
    yield eng
    wipe(eng)
    eng.dispose()


def test_a_request_id_runs_from_the_api_into_the_worker_and_metrics_are_served(
    topology: Topology, topology_db: Engine, tiny_bundle: Bundle
) -> None:
    """An activation sent with X-Request-ID: the API answers with it, its JSON access line and
    the worker's JSON lines about the solve carry it; the worker's metrics count the task,
    the API's count the operation and show the mobilisation's grids; Flower shows the queue."""
    clock = ManualClock(datetime.now(UTC))
    with transaction(make_sessionmaker(topology_db)) as session:
        import_district(session, bundle=tiny_bundle, actor="test", clock=clock)
    commander = make_user(topology_db, clock, Role.DISTRICT_COMMANDER, tiny_bundle.district_code)
    answer = httpx.post(
        f"{topology.url(0)}/graphql",
        json={"query": ACTIVATE},
        headers={"Authorization": f"Bearer {commander}", "X-Request-ID": "drill-42"},
        timeout=60,
    )
    assert answer.headers["x-request-id"] == "drill-42"
    mobilisation = answer.json()["data"]["activateMobilisation"]
    assert mobilisation["status"] == "ACTIVE", mobilisation
    mid = from_global_id(mobilisation["id"])[1]

    def lines(name: str) -> list[dict[str, Any]]:
        return [json.loads(x) for x in topology.log(name).splitlines() if x.startswith("{")]

    def logged(name: str, wanted: Any) -> list[dict[str, Any]]:
        """The process's JSON lines that `wanted` picks, once there are some (the access line
        is written just after the answer is sent)."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = [x for x in lines(name) if wanted(x)]
            if found:
                return found
            time.sleep(0.2)
        raise AssertionError(topology.log(name)[-3000:])

    access = logged(
        "api-0", lambda x: x["logger"] == "mobilize.access" and x["request_id"] == "drill-42"
    )
    assert [x["path"] for x in access] == ["/graphql"]
    solved = logged("worker", lambda x: x.get("job") and x["request_id"] == "drill-42")
    assert [x["outcome"] for x in solved] == ["done"]

    def metric(url: str, name: str, **labels: str) -> float:
        """The sum of the samples with these labels (and any others)."""
        text = httpx.get(url, timeout=10).text
        found = [
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and labels.items() <= sample.labels.items()
        ]
        assert found, f"{name}{labels} not in {url}"
        return float(sum(found))

    worker = f"http://127.0.0.1:{topology.worker_metrics_port}/metrics"
    deadline = time.monotonic() + 20  # the task's postrun lands just after its commit
    while time.monotonic() < deadline:
        with contextlib.suppress(AssertionError):
            if metric(worker, "mobilize_task_seconds_count", task="mobilize.run_job") >= 1:
                break
        time.sleep(0.5)
    assert metric(worker, "mobilize_task_seconds_count", task="mobilize.run_job") >= 1
    assert metric(worker, "mobilize_job_seconds_count", kind="activation", outcome="done") == 1
    api = f"{topology.url(0)}/metrics"
    assert metric(api, "mobilize_graphql_seconds_count", operation="activateMobilisation") == 1
    with Session(topology_db) as session:
        grids = session.execute(
            select(func.count()).where(GridState.mobilisation_id == mid)
        ).scalar_one()
    assert metric(api, "mobilize_grids", mobilisation=str(mid)) == grids == 20
    assert metric(api, "mobilize_grids_mobilised_ratio", mobilisation=str(mid)) == 0.0
    user, password = topology.flower_auth.split(":")
    deadline = time.monotonic() + 30
    queues: dict[str, Any] = {}
    while time.monotonic() < deadline and not queues.get("active_queues"):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            queues = httpx.get(
                f"http://127.0.0.1:{topology.flower_port}/api/queues/length",
                auth=(user, password),
                timeout=5,
            ).json()
        time.sleep(0.5)
    assert {q["name"] for q in queues["active_queues"]} >= {"celery"}, queues
    denied = httpx.get(f"http://127.0.0.1:{topology.flower_port}/api/queues/length", timeout=5)
    assert denied.status_code == 401


def test_mobilize_topology_restarts_what_dies_and_stops_only_when_asked(
    postgis_url: str, tmp_path: Path
) -> None:
    """The command an operator runs: on the ports asked for; a worker and an API killed -9
    come back (it used to stop everything when its worker died), and SIGTERM stops it all."""
    ports = [free_port(), free_port()]
    logs = tmp_path / "logs"
    env = {**os.environ, "MOBILIZE_DATABASE_URL": postgis_url, "MOBILIZE_BROKER_URL": BROKER}
    command = subprocess.Popen(
        [sys.executable, "-m", "mobilize.cli", "topology", "--ports", ",".join(map(str, ports)),
         "--logs", str(logs)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def healthy(port: int, within_s: float = 120) -> bool:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return True
            time.sleep(0.3)
        return False

    def pids() -> dict[str, int]:
        found: dict[str, int] = json.loads((logs / "pids.json").read_text())
        return found

    try:
        assert command.stdout is not None
        started = command.stdout.readline()  # its first line comes once every API answers
        assert all(healthy(p) for p in ports), started
        first = pids()
        assert set(first) == {"api-0", "api-1", "worker", "beat", "flower"}
        for name in ("worker", "api-1"):
            os.killpg(first[name], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = pids()
            if now["worker"] != first["worker"] and now["api-1"] != first["api-1"]:
                break
            time.sleep(0.3)
        assert healthy(ports[1]), (logs / "api-1.log").read_text()[-3000:]
        assert command.poll() is None, "the topology stopped when a process died"
        again = pids()
        assert again["worker"] != first["worker"] and again["api-1"] != first["api-1"]
        os.kill(again["worker"], 0)  # the new worker is alive
    finally:
        command.send_signal(signal.SIGTERM)
        output, _ = command.communicate(timeout=90)
    assert command.returncode == 0, output
    assert "started again" in output
    for pid in again.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
