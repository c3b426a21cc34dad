"""Background jobs as their owners see them: pending → running → succeeded | failed.

A job is a row plus a Celery task whose id is the job id (so Flower shows the same id).
Tasks are sent by name (``webapp.app.tasks`` defines them and calls back into services),
so services never import the tasks. Without a broker (``JOBS_IN_PROCESS``) the task runs
in this process, in the background. A job past its deadline is failed with the reason
when anyone looks at it, and its target is told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from webapp.app.concurrency import spawn
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Job
from webapp.app.models.common import new_uuid, utcnow
from webapp.app.ownership import owned
from webapp.app.services.platform import limits

log = logging.getLogger(__name__)

QUEUE_ERRORS = (BrokerError, RedisError, ConnectionError)
TIMED_OUT = "job exceeded its time limit of {seconds} s"
ON_FAILURE: dict[str, Callable[[Job, str], None]] = {}


def on_failure(job_type: str) -> Callable[[Callable[[Job, str], None]], Callable[[Job, str], None]]:
    """Register what must be undone when a job of ``job_type`` fails or times out."""

    def register(fn: Callable[[Job, str], None]) -> Callable[[Job, str], None]:
        ON_FAILURE[job_type] = fn
        return fn

    return register


def create(owner_id: int, job_type: str, target_id: str | None = None) -> Job:
    """A pending job, holding one of its owner's places for jobs (``USER_MAX_JOBS``;
    429 when all are taken) until it succeeds or fails."""
    limit = current_app.config["JOB_TIME_LIMIT"]
    job_id = new_uuid()
    limits.hold("jobs", owner_id, limits.job_seconds(), token=job_id)
    job = Job(id=job_id, owner_id=owner_id, type=job_type, target_id=target_id,
              status="pending", deadline_at=utcnow() + timedelta(seconds=limit + 60))
    db.session.add(job)
    return job


def dispatch(job: Job, task: str, *args: Any) -> None:
    """Send the job's task to the workers, or run it here in the background.

    When the queue cannot be reached the job fails at once with that reason (its type's
    undo runs) and the caller gets a 503: no job is left pending that no worker will see.
    """
    try:
        background(task, *args, task_id=job.id)
    except QUEUE_ERRORS as exc:
        log.error("job %s could not be queued: %s", job.id, exc)
        db.session.rollback()
        fail(job, "the job queue was unreachable; the job did not start")
        raise ApiError(503, "queue_unavailable", "JOB_QUEUE_UNAVAILABLE") from exc


def follow_up(task: str, *args: Any) -> None:
    """Queue work nobody waits for (a conversation summary): if the queue is down it is
    skipped with a warning rather than failing what was already done."""
    try:
        background(task, *args)
    except QUEUE_ERRORS as exc:
        log.warning("skipped %s: the job queue was unreachable (%s)", task, exc)


def background(task: str, *args: Any, task_id: str | None = None) -> None:
    """Run the task named ``task`` on the workers (production) or in this process's
    background (embedded)."""
    celery = current_app.extensions["celery"]
    if current_app.config["JOBS_IN_PROCESS"]:
        app = current_app._get_current_object()
        registered = celery.tasks[task]

        def run() -> None:
            with app.app_context():
                try:
                    registered.apply(args=args, task_id=task_id)
                finally:
                    db.session.remove()

        spawn(run)
        return
    # The job's row is its result. Without ignore_result the sender subscribes to the
    # result backend on every send, which fails a send for 20 s during a Redis outage
    # and leaves the backend asking for a restart afterwards.
    celery.send_task(task, args=args, task_id=task_id, ignore_result=True)


def get_for(job_id: str, user_id: int) -> Job:
    job = owned(Job, job_id, user_id, ApiError(404, "job_not_found", "JOB_NOT_FOUND"))
    expire_if_overdue(job)
    return job


def start(job_id: str) -> Job | None:
    """Mark a job running; None when it already ended (a retry after a time-out)."""
    job = db.session.get(Job, job_id)
    if job is None or job.status in ("succeeded", "failed"):
        return None
    job.status = "running"
    job.attempts += 1
    job.started_at = job.started_at or utcnow()
    db.session.commit()
    return job


def succeed(job: Job, result: dict[str, Any]) -> None:
    job.status = "succeeded"
    job.result = result
    job.error = None
    job.finished_at = utcnow()
    db.session.commit()
    limits.release("jobs", job.owner_id, job.id)


def fail(job: Job, reason: str) -> None:
    """Fail the job and undo what its type registered; idempotent."""
    if job.status == "failed":
        return
    job.status = "failed"
    job.error = reason
    job.finished_at = utcnow()
    handler = ON_FAILURE.get(job.type)
    if handler is not None:
        handler(job, reason)
    db.session.commit()
    limits.release("jobs", job.owner_id, job.id)


def expire_if_overdue(job: Job) -> None:
    if job.status in ("pending", "running") and utcnow() > job.deadline_at:
        limit = current_app.config["JOB_TIME_LIMIT"]
        log.warning("job %s timed out", job.id)
        fail(job, TIMED_OUT.format(seconds=limit))

