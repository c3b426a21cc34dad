from celery import shared_task
from sqlalchemy.exc import OperationalError

from webapp.app.services.conversation import memory


@shared_task(name=memory.SUMMARY_TASK, acks_late=True, max_retries=2,
             autoretry_for=(OperationalError,), retry_backoff=True)
def summarize_session_task(session_id: str) -> str | None:
    """Update a conversation's rolling summary after a reply; a deadlock with the
    session's next turn (MySQL 1213) or a dropped connection is retried."""
    return memory.update_summary(session_id)
