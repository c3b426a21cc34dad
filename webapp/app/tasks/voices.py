from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from webapp.app.providers.base import ProviderError
from webapp.app.services.platform import jobs
from webapp.app.services.voice_library import cloning


@shared_task(bind=True, name=cloning.CLONE_TASK, max_retries=3, acks_late=True)
def clone_voice_task(self: Any, job_id: str) -> dict[str, Any] | None:
    """Clone a voice; provider errors that may pass are retried with back-off."""
    try:
        return cloning.run(job_id)
    except ProviderError as exc:
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 30)) from exc
    except SoftTimeLimitExceeded:
        job = jobs.start(job_id)
        if job is not None:
            jobs.fail(job, "job exceeded its time limit")
        return None
