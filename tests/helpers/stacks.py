"""The production shape as the tests run it: web processes under eventlet and a Celery
worker sharing MariaDB, Redis and a storage folder, with DashScope played by the fake."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.paths import MODELS
from tests.helpers.processes import celery_worker, environment, start_all
from tests.helpers.web_server import WebServer


def dashscope_settings(fake: Any) -> dict[str, str]:
    """The app's settings that send every DashScope call to ``fake``."""
    return {"DASHSCOPE_API_KEY": fake.api_key, "DASHSCOPE_HTTP_BASE_URL": fake.http_url,
            "DASHSCOPE_WEBSOCKET_BASE_URL": fake.ws_url}


def stack_settings(name: str, work: Path, **settings: str) -> dict[str, str]:
    """What every process of a stack shares: a Celery queue of its own (named after
    ``name``), the instance folder, the models, keys for signing, and ``settings``."""
    return {"CELERY_QUEUE": f"{name}-" + uuid.uuid4().hex[:8], "INSTANCE_DIR": str(work),
            "HOST": "127.0.0.1", "MODEL_CACHE_DIR": str(MODELS), "LOG_LEVEL": "INFO",
            "SECRET_KEY": f"{name}-secret-0123456789abcdef",
            "JWT_SECRET_KEY": f"{name}-jwt-secret-0123456789abcdef", **settings}


@dataclass
class Stack:
    """Two web processes (``url``, ``url_b``) and a worker; ``env`` is what they run with."""

    url: str
    url_b: str
    env: dict[str, str]
    logs: dict[str, Path] = field(default_factory=dict)

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-4000:]


@contextmanager
def run_production_stack(database_url: str, redis_url: str, fake_dashscope: Any,
                     work: Path, **extra: str) -> Iterator[Stack]:
    """Two web processes and a worker on ``database_url`` and ``redis_url`` (Socket.IO
    rooms and SSE streams cross processes through Redis), sharing the folder ``work``;
    ``extra`` settings (engines, say) on top."""
    settings = stack_settings("stack", work, DATABASE_URL=database_url, REDIS_URL=redis_url,
                              STORAGE_DIR=str(work / "storage"), RATELIMIT_ENABLED="false",
                              **{**dashscope_settings(fake_dashscope), **extra})
    logs = {"worker": work / "worker.log", "web": work / "web.log", "web_b": work / "web_b.log"}
    web = WebServer(work, log=logs["web"], **settings)
    # Both serve one deployment: the links they hand out point at the first.
    web_b = WebServer(work, log=logs["web_b"], name="second web process",
                      **{**settings, "BASE_URL": web.url})
    env = environment({**settings, "BASE_URL": web.url})
    worker = celery_worker(settings["CELERY_QUEUE"], env, logs["worker"])
    try:
        start_all([worker, web, web_b])
        yield Stack(web.url, web_b.url, env, logs)
    finally:
        for process in (web, web_b, worker):
            process.stop()
