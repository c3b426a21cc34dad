"""Celery tasks: thin calls into services, each running inside the app context."""

from webapp.app.tasks.system import health_task

__all__ = ["health_task"]
