"""The web process as tests and benchmarks run it: ``wsgi.py`` under eventlet (or
gunicorn eventlet workers), on a free port, with an instance folder of its own."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

import requests

from tests.helpers.paths import MODELS, ROOT
from tests.helpers.processes import Process, answers, environment, free_port


def _engines_warm(response: requests.Response) -> bool:
    return response.ok and response.json()["data"]["engines_warm"]


class WebServer:
    """One web process, or ``workers`` gunicorn eventlet workers sharing the port as a
    production deployment runs them behind a load balancer.

    Its environment is this process's, less the names in ``unset``, plus what a server
    on 127.0.0.1 needs, plus ``env``. It is ready once ``/api/health`` answers, or with
    ``warm`` once that answer says the engines are loaded."""

    def __init__(self, workdir: Path, *, workers: int = 1, log: Path | None = None,
                 unset: Iterable[str] = (), warm: bool = False, start_timeout: float = 90,
                 name: str = "web process", **env: str) -> None:
        self.work = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = environment({
            "INSTANCE_DIR": str(workdir), "PORT": str(self.port), "HOST": "127.0.0.1",
            "BASE_URL": self.url, "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "INFO",
            "MODEL_CACHE_DIR": str(MODELS), "FLASK_APP": "webapp.app:create_app",
            # Many servers run side by side: none takes Wyoming's port unless asked to.
            "WYOMING_PORT": "0", **env},
            unset)
        self.log = log or workdir / "server.log"
        command = [sys.executable, "wsgi.py"]
        if workers > 1:
            command = [sys.executable, "-m", "gunicorn", "-k", "eventlet", "-w", str(workers),
                       "-b", f"127.0.0.1:{self.port}", "wsgi:app"]
        ready = answers(self.url + "/api/health", _engines_warm if warm else lambda r: r.ok)
        self.process = Process(name, command, self.env, self.log, ready, start_timeout)

    def migrate(self) -> None:
        """Bring its database up to date (``flask db upgrade``)."""
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT,
                       env=self.env, check=True, capture_output=True)

    def spawn(self) -> WebServer:
        self.process.spawn()
        return self

    def wait_ready(self) -> WebServer:
        self.process.wait_ready()
        return self

    def start(self) -> WebServer:
        return self.spawn().wait_ready()

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> WebServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


class LiveServer(WebServer):
    """The embedded mode (SQLite in its own folder, no Redis, S3 or DashScope, local
    engines) unless ``env`` says otherwise; ``start`` migrates its database first and
    returns once the engines are warm."""

    EMBEDDED_UNLESS_GIVEN = ("DATABASE_URL", "REDIS_URL", "S3_BUCKET", "DASHSCOPE_API_KEY")

    # Loading five local engines takes ≈30 s on two idle cores and several times that on
    # a busy machine; the limit only has to tell a hang from a slow start.
    START_TIMEOUT = 300

    def __init__(self, **env: str) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="tingshuo-live-")), warm=True,
                         start_timeout=self.START_TIMEOUT,
                         unset=[k for k in self.EMBEDDED_UNLESS_GIVEN if k not in env], **env)

    def start(self) -> LiveServer:
        self.migrate()
        super().start()
        return self
