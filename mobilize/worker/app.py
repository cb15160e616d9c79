"""The Celery application, configured from MOBILIZE_* settings at import.

Tasks acknowledge late and are rejected back to the queue when their worker dies, one at a
time per worker process, so a killed worker's task runs again elsewhere; every task is
idempotent."""

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
            "visibility_timeout": 3600,
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
            "mobilize-tick": {
                "task": "mobilize.tick",
                "schedule": settings.scheduler_interval_seconds,
                "options": {"expires": settings.scheduler_interval_seconds * 2},
            }
        },
    }


# Set at import (a worker's settings come from its environment); tests override after.
app.conf.update(_config())
app.autodiscover_tasks(["mobilize.worker"], related_name="tasks", force=True)
