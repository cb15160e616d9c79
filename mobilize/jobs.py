"""Background jobs: work too long for a request (an activation's solve) is a `job_run` row
with a run id, written in the transaction that asks for it, and run after commit by a Celery
worker in production or a thread in the embedded default. Which work a kind of job runs is
the caller's to say (`mobilize.worker.kinds`): this module knows no domain.

A run may be delivered twice (a retried publish, a redelivery after its worker was killed):
the run's row is locked in the transaction that does the work and marked done in that same
transaction, so the work commits exactly once; a later delivery finds it done and stops."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from mobilize.bulkwork import without_gc_pauses
from mobilize.clock import Clock
from mobilize.db import transaction
from mobilize.db.bulk import refresh_statistics
from mobilize.db.engine import is_postgres
from mobilize.errors import DomainError
from mobilize.metrics import JOB_SECONDS
from mobilize.models import JobRun, JobStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # deliveries of one run before it is marked failed
QUEUED_GRACE = timedelta(seconds=30)  # queued this long without a start: publish it again
# Running this long with its row unlocked: its worker is gone (a live one holds the lock from
# a few milliseconds after it starts until it commits).
ORPHAN_GRACE = timedelta(seconds=20)
_OPEN = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)  # a delivery may still take these


class UnknownJob(DomainError):
    """A run of a kind this process has no work for: it fails, it is not retried."""

    code = "UNKNOWN_JOB"


@dataclass
class Done:
    """What a job's work returns: its result to keep, and the notification batches it queued
    (delivered after its transaction commits)."""

    result: dict[str, Any]
    batches: list[str] = field(default_factory=list)
    bulk_tables: tuple[str, ...] = ()  # written in bulk: their planner statistics are refreshed


class Work(Protocol):
    def __call__(self, session: Session, *, subject: str, clock: Clock, display_tz: str) -> Done:
        """Do the job for `subject` inside the caller's transaction."""
        ...


class Dispatcher(Protocol):
    """Background work after a commit: notification batches and job runs. The edges hold one
    (`mobilize.worker`); the domain only returns the batches and runs it queued."""

    def dispatch(self, batches: Sequence[str]) -> None:
        """Have these outbox batches delivered; called after their transaction committed."""
        ...

    def retry(self) -> None:
        """Have every notification whose retry is due delivered (the scheduler's tick)."""
        ...

    def run_jobs(self, run_ids: Sequence[str]) -> None:
        """Have these job runs done; called after the transaction that queued them committed."""
        ...


def queue(session: Session, *, kind: str, subject: str, clock: Clock) -> str:
    """A new run of `kind` for `subject`, in the caller's transaction; its run id."""
    run_id = uuid.uuid4().hex
    session.add(
        JobRun(
            id=run_id,
            kind=kind,
            subject=subject,
            status=JobStatus.QUEUED.value,
            attempts=0,
            created_at=clock.now(),
        )
    )
    session.flush()
    return run_id


def run_of(session: Session, kind: str, subject: str) -> JobRun | None:
    return runs_of(session, kind, [subject])[0]


def runs_of(session: Session, kind: str, subjects: Sequence[str]) -> list[JobRun | None]:
    """The run of `kind` for each subject, in their order (None where there is none)."""
    found = {
        r.subject: r
        for r in session.scalars(
            select(JobRun).where(JobRun.kind == kind, JobRun.subject.in_(set(subjects)))
        )
    }
    return [found.get(s) for s in subjects]


def status_of(session: Session, run_id: str) -> str | None:
    """The run's status as committed now (no identity map: callers poll with it)."""
    return session.execute(select(JobRun.status).where(JobRun.id == run_id)).scalar()


@without_gc_pauses()  # jobs are bulk work: activations, reports
def run(
    factory: sessionmaker[Session],
    run_id: str,
    *,
    kinds: Mapping[str, Work],
    clock: Clock,
    display_tz: str,
    worker: str,
) -> list[str]:
    """Do one delivery of a run; the notification batches to dispatch (none when the run was
    already done, failed, or unknown). A domain refusal fails the run for good; any other
    error is raised for the caller to retry, and fails the run after MAX_ATTEMPTS. `kinds`:
    the work each kind of job runs."""
    with transaction(factory) as session:
        attempt = session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status.in_(_OPEN))
            .values(
                status=JobStatus.RUNNING.value,
                attempts=JobRun.attempts + 1,
                started_at=clock.now(),
                worker=worker,
            )
            .returning(JobRun.attempts, JobRun.kind)
        ).one_or_none()
    if attempt is None:
        return []
    attempts, kind = attempt
    started = time.perf_counter()
    outcome = "error"
    try:
        with transaction(factory) as session:
            job = session.scalars(select(JobRun).where(JobRun.id == run_id).with_for_update()).one()
            if job.status != JobStatus.RUNNING.value:
                outcome = "skipped"
                return []  # another delivery finished it while this one waited for the lock
            work = kinds.get(kind)
            if work is None:
                raise UnknownJob(f"no work is registered for job kind {kind!r}")
            done = work(session, subject=job.subject, clock=clock, display_tz=display_tz)
            job.status = JobStatus.DONE
            job.result = done.result
            job.error = None
            job.finished_at = clock.now()
            outcome = "done"
        if done.bulk_tables:
            _refresh_statistics(factory, done.bulk_tables)
        return done.batches
    except DomainError as exc:
        outcome = "refused"
        _fail(factory, run_id, clock, str(exc))
        return []
    except Exception as exc:
        if attempts >= MAX_ATTEMPTS:
            _fail(factory, run_id, clock, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        took = time.perf_counter() - started
        JOB_SECONDS.labels(kind, outcome).observe(took)
        logger.info(
            "job %s %s: %s after %.1f s (attempt %d)",
            kind,
            run_id,
            outcome,
            took,
            attempts,
            extra={"job": run_id, "kind": kind, "outcome": outcome, "attempt": attempts},
        )


def _refresh_statistics(factory: sessionmaker[Session], tables: tuple[str, ...]) -> None:
    """After the work committed: a failure here costs speed, not correctness, so it is logged
    and the run stays done."""
    try:
        with transaction(factory) as session:
            refresh_statistics(session, tables)
    except Exception:
        logger.warning("could not refresh planner statistics of %s", tables, exc_info=True)


def _fail(factory: sessionmaker[Session], run_id: str, clock: Clock, error: str) -> None:
    logger.error("job %s failed: %s", run_id, error)
    with transaction(factory) as session:
        session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(status=JobStatus.FAILED.value, error=error[:2000], finished_at=clock.now())
        )


def stalled(session: Session, *, now: datetime, lease: timedelta) -> list[str]:
    """Runs to publish again: queued and never started (their publish was lost, the broker was
    down); running with nobody working on them (their worker was killed: on PostgreSQL the
    row lock its solving transaction held went with its connection, so the row is free to
    lock; seen within `ORPHAN_GRACE` of starting, plus a beat tick); or, where no lock tells
    (SQLite), running for longer than `lease`. A second delivery of a live run is harmless:
    the run commits once."""
    late = list(
        session.scalars(
            select(JobRun.id).where(
                or_(
                    (JobRun.status == JobStatus.QUEUED.value)
                    & (JobRun.created_at < now - QUEUED_GRACE),
                    (JobRun.status == JobStatus.RUNNING.value) & (JobRun.started_at < now - lease),
                )
            )
        )
    )
    orphaned: list[str] = []
    if is_postgres(session.get_bind()):
        # Locked only by a transaction working on it; skipped, so a live run is not waited on.
        orphaned = list(
            session.scalars(
                select(JobRun.id)
                .where(
                    JobRun.status == JobStatus.RUNNING.value,
                    JobRun.started_at < now - ORPHAN_GRACE,
                )
                .with_for_update(skip_locked=True)
            )
        )
    wanted = set(late) | set(orphaned)
    if not wanted:
        return []
    return list(
        session.scalars(select(JobRun.id).where(JobRun.id.in_(wanted)).order_by(JobRun.created_at))
    )
