"""The worker process: ``celery -A celery_worker:celery_app worker`` (or ``flower``)."""

import os

os.environ.setdefault("SOCKETIO_ASYNC_MODE", "threading")

from webapp.app import create_app

app = create_app()
celery_app = app.extensions["celery"]
