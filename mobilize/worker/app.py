"""The Celery application, configured from MOBILIZE_* settings at import.

Tasks acknowledge late and are rejected back to the queue when their worker process dies,
one at a time per worker process, so a killed worker's task runs again elsewhere; every task
is idempotent. Results live in the database (`job_run`), never in the broker."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery, Task, signals

from mobilize import logs
from mobilize.metrics import TASK_SECONDS, serve_metrics
from mobilize.settings import get_settings
from mobilize.worker.watch import ConsumerWatch

app = Celery("mobilize")


def _config() -> dict[str, object]:
    settings = get_settings()
    return {
        "broker_url": settings.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            # Unacknowledged messages of a worker that died are delivered again after this:
            # longer than the longest task (a district's solve), or a live one runs twice.
            "visibility_timeout": settings.job_lease_seconds,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        # A publish while the broker is down gives up within about a second; the outbox
        # keeps the work for the next tick (see CeleryDispatcher).
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.3,
            "interval_max": 0.5,
        },
        "task_ignore_result": True,
        # Losing Redis mid-task: give the task back (acks_late) and reconnect, keep serving.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "beat_schedule": {
            name: {
                "task": f"mobilize.{name}",
                "schedule": settings.scheduler_interval_seconds,
                "options": {"expires": settings.scheduler_interval_seconds * 2},
            }
            for name in ("escalate", "snapshot", "republish_jobs")
        },
    }


# Set at import (a worker's settings come from its environment); tests override after.
app.conf.update(_config())
app.autodiscover_tasks(["mobilize.worker"], related_name="tasks", force=True)

_started: dict[str, float] = {}


@signals.setup_logging.connect
def _logging(**_: Any) -> None:
    """Our handler (text or JSON, with request ids) instead of Celery's."""
    logs.configure_logging(get_settings().log_format)


@signals.before_task_publish.connect
def _carry_request_id(headers: dict[str, Any], **_: Any) -> None:
    """The request that queued a task is named in everything the task logs."""
    headers.setdefault("request_id", logs.REQUEST_ID.get())


@signals.task_prerun.connect
def _begin(task_id: str, task: Task, **_: Any) -> None:
    logs.REQUEST_ID.set(getattr(task.request, "request_id", None))
    _started[task_id] = time.perf_counter()


@signals.task_postrun.connect
def _end(task_id: str, task: Task, state: str | None = None, **_: Any) -> None:
    began = _started.pop(task_id, None)
    if began is not None:
        outcome = (state or "unknown").lower()
        TASK_SECONDS.labels(task.name, outcome).observe(time.perf_counter() - began)


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """Task durations for Prometheus, from every pool process (PROMETHEUS_MULTIPROC_DIR)."""
    settings = get_settings()
    if settings.worker_metrics_port is not None:
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
        serve_metrics(settings.worker_metrics_port, host=settings.worker_metrics_host, token=token)


@signals.worker_ready.connect
def _watch_consumer(sender: Any = None, **_: Any) -> None:
    """See `mobilize.worker.watch`: a worker whose consumer died ends itself."""
    every_s = get_settings().worker_watch_seconds
    if every_s > 0 and sender is not None:
        ConsumerWatch(app, sender.hostname, every_s).start()
