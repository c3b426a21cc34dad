"""Jobs through a real Celery worker process and Redis, as production runs them."""

from __future__ import annotations

from flask import Flask

from tests.helpers.environment import only_mysql
from webapp.app.tasks import health_task


@only_mysql
def test_worker_round_trip_through_redis(worker_app: Flask) -> None:
    with worker_app.app_context():
        result = health_task.delay().get(timeout=60)
    assert result["status"] == "ok"
    assert result["database"] == "mysql"
    assert result["jobs"] == "celery"


def test_tasks_run_in_process_without_a_broker(app: Flask) -> None:
    with app.app_context():
        result = health_task.apply().get()
    assert result["jobs"] == "in-process"
