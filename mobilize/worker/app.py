"""The Celery application, configured from MOBILIZE_* settings at import.

Tasks acknowledge late and are rejected back to the queue when their worker process dies,
one at a time per worker process, so a killed worker's task runs again elsewhere; every task
is idempotent. Results live in the database (`job_run`), never in the broker."""

from __future__ import annotations

from celery import Celery

from mobilize.settings import get_settings

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
