"""Prometheus metrics. Latency by GraphQL operation and HTTP requests (API), task and job
durations (workers, and the embedded default's threads), and gauges read from the database at
scrape time: each live mobilisation's grids by status and people by status, jobs and
notifications waiting. With several processes behind one port (uvicorn --workers, Celery's
prefork pool) set PROMETHEUS_MULTIPROC_DIR to an empty directory: each process writes there
and a scrape adds them up."""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from mobilize.models import (
    LIVE,
    Assignment,
    GridState,
    JobRun,
    Mobilisation,
    Notification,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

GRAPHQL_SECONDS = Histogram(
    "mobilize_graphql_seconds",
    "GraphQL operation latency, by root fields (e.g. checkIn) and type.",
    ["operation", "type"],
    buckets=SECONDS,
)
HTTP_REQUESTS = Counter(
    "mobilize_http_requests", "HTTP requests answered, by path and status.", ["path", "status"]
)
TASK_SECONDS = Histogram(
    "mobilize_task_seconds",
    "Celery task durations, by task and outcome.",
    ["task", "outcome"],
    buckets=SECONDS,
)
JOB_SECONDS = Histogram(
    "mobilize_job_seconds",
    "Background job durations (an activation's solve), by kind and outcome.",
    ["kind", "outcome"],
    buckets=SECONDS,
)

PATHS = ("/graphql", "/healthz", "/readyz", "/metrics")


def path_label(path: str) -> str:
    """Known paths as they are, anything else as `other` (labels must stay few)."""
    return path if path in PATHS else "other"


class DatabaseGauges(Collector):
    """Read at each scrape: what a district's on-call engineer watches during a mobilisation."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        grids = GaugeMetricFamily(
            "mobilize_grids",
            "Micro-grids of each live mobilisation, by coverage status.",
            labels=["mobilisation", "status"],
        )
        mobilised = GaugeMetricFamily(
            "mobilize_grids_mobilised_ratio",
            "Share of a live mobilisation's micro-grids whose minimum is on site.",
            labels=["mobilisation"],
        )
        people = GaugeMetricFamily(
            "mobilize_people",
            "People in each live mobilisation, by assignment status.",
            labels=["mobilisation", "status"],
        )
        jobs = GaugeMetricFamily(
            "mobilize_jobs", "Background job runs by status.", labels=["status"]
        )
        outbox = GaugeMetricFamily(
            "mobilize_notifications", "Notifications in the outbox by status.", labels=["status"]
        )
        with self._engine.connect() as conn:
            live = select(Mobilisation.id).where(Mobilisation.status.in_(LIVE))
            totals: dict[int, list[int]] = {}
            for mid, status, n in conn.execute(
                select(GridState.mobilisation_id, GridState.status, func.count())
                .where(GridState.mobilisation_id.in_(live))
                .group_by(GridState.mobilisation_id, GridState.status)
            ):
                grids.add_metric([str(mid), status], n)
                total = totals.setdefault(mid, [0, 0])
                total[0] += n
                total[1] += n if status in ("mobilised", "checked") else 0
            for mid, (grid_count, done) in sorted(totals.items()):
                mobilised.add_metric([str(mid)], done / grid_count if grid_count else 0.0)
            for mid, person_status, n in conn.execute(
                select(Assignment.mobilisation_id, Assignment.status, func.count())
                .where(Assignment.mobilisation_id.in_(live))
                .group_by(Assignment.mobilisation_id, Assignment.status)
            ):
                people.add_metric([str(mid), person_status], n)
            for job_status, n in conn.execute(
                select(JobRun.status, func.count()).group_by(JobRun.status)
            ):
                jobs.add_metric([job_status], n)
            for message_status, n in conn.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            ):
                outbox.add_metric([message_status], n)
        yield from (grids, mobilised, people, jobs, outbox)


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every process's under PROMETHEUS_MULTIPROC_DIR."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def exposition(engine: Engine | None) -> bytes:
    """The text a scrape gets: process metrics, then the database's gauges."""
    body = generate_latest(process_registry())
    if engine is not None:
        gauges = CollectorRegistry(auto_describe=False)
        gauges.register(DatabaseGauges(engine))
        body += generate_latest(gauges)
    return body


def serve_metrics(port: int, *, host: str, token: str | None) -> ThreadingHTTPServer:
    """This process's metrics (every pool process's, under PROMETHEUS_MULTIPROC_DIR) on
    `host:port`/metrics, in a daemon thread: what a Celery worker serves. With a token, a
    scrape must bring `Authorization: Bearer <token>`, as the API's /metrics wants."""
    expected = f"Bearer {token}" if token else None

    class Scrape(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self._answer(404, b"not found\n", "text/plain")
            elif expected and not hmac.compare_digest(
                self.headers.get("Authorization", ""), expected
            ):
                self._answer(401, b"metrics need the metrics token\n", "text/plain")
            else:
                self._answer(200, generate_latest(process_registry()), CONTENT_TYPE)

        def _answer(self, status: int, body: bytes, media: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # scrapes are not worth a log line
            return

    server = ThreadingHTTPServer((host, port), Scrape)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
