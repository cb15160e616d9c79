"""The Celery application, configured from MOBILIZE_* settings when first used.

Tasks acknowledge late and are rejected back to the queue when their worker dies, one at a
time per worker process, so a killed worker's task runs again elsewhere; every task is
idempotent."""

from __future__ import annotations

from celery import Celery

from mobilize.settings import get_settings

app = Celery("mobilize")


@app.on_configure.connect  # type: ignore[untyped-decorator]
def _configure(sender: Celery, **_kwargs: object) -> None:
    settings = get_settings()
    sender.conf.update(
        # An explicit broker (set before first use, e.g. by tests) wins over the environment.
        broker_url=sender.conf.get("broker_url") or settings.broker_url,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": 3600},
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
    )


app.autodiscover_tasks(["mobilize.worker"], related_name="tasks", force=True)
