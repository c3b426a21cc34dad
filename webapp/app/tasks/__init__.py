"""Celery tasks: thin calls into services, each running inside the app context."""

from webapp.app.tasks.summary import summarize_session_task
from webapp.app.tasks.system import health_task
from webapp.app.tasks.voices import clone_voice_task

__all__ = ["clone_voice_task", "health_task", "summarize_session_task"]
