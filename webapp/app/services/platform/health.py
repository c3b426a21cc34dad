"""What operators check first: can this process reach its database and storage."""

from __future__ import annotations

import socket
import time
from typing import Any

from flask import current_app
from sqlalchemy import text

from webapp.app.extensions import db
from webapp.app.services.platform.files import storage

PUBLIC = ("status", "engines_warm")
"""What anyone may see: whether this process answers and is ready. The rest (host name,
database and storage kinds, job mode) describes the deployment, for signed-in callers."""


def report() -> dict[str, Any]:
    started = time.perf_counter()
    db.session.execute(text("SELECT 1"))
    storage().exists("health/probe")
    return {"status": "ok", "host": socket.gethostname(),
            "database": db.engine.dialect.name,
            "storage": current_app.config["STORAGE_BACKEND"],
            "jobs": "in-process" if current_app.config["JOBS_IN_PROCESS"] else "celery",
            "engines_warm": current_app.extensions["providers"].warm,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 2)}
