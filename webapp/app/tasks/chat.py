from celery import shared_task

from webapp.app.services import memory


@shared_task(name="chat.summarize", acks_late=True, max_retries=2)
def summarize_session_task(session_id: str) -> str | None:
    """Update a conversation's rolling summary after a reply."""
    return memory.update_summary(session_id)
