from typing import Any

from celery import shared_task

from webapp.app.services.platform import health


@shared_task(name="system.health")
def health_task() -> dict[str, Any]:
    """A worker's own view of the database and storage, for operators and tests."""
    return health.report()
