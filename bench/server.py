"""Start the real web process (``wsgi.py`` under eventlet) for a benchmark, and stop it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mysql_url(name: str | None = None) -> str | None:
    """A database of the benchmarks' own on MariaDB, made afresh; None if unreachable.

    ``name`` defaults to ``BENCH_MYSQL_DATABASE`` (``tingshuo_bench``).
    """
    from sqlalchemy import create_engine, text

    server = os.environ.get("BENCH_MYSQL_SERVER", "mysql+pymysql://root@127.0.0.1:3306")
    name = name or os.environ.get("BENCH_MYSQL_DATABASE", "tingshuo_bench")
    try:
        engine = create_engine(f"{server}/?charset=utf8mb4")
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means no MariaDB here
        print(f"MariaDB unavailable ({exc.__class__.__name__}); using SQLite")
        return None
    return f"{server}/{name}?charset=utf8mb4"


class Server:
    """The web process(es) in a subprocess with their own database, folder and port.

    One process is ``python wsgi.py``; several are gunicorn eventlet workers sharing the
    port, as a production deployment runs them behind a load balancer.
    """

    def __init__(self, workdir: Path, database_url: str, workers: int = 1, **env: str) -> None:
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_DIR": str(workdir),
                    "PORT": str(self.port), "HOST": "127.0.0.1", "BASE_URL": self.url,
                    "RATELIMIT_ENABLED": "false", "LOG_LEVEL": "WARNING",
                    "MODEL_CACHE_DIR": str(ROOT / "instance" / "models"),
                    "FLASK_APP": "webapp.app:create_app", **env}
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def migrate(self) -> None:
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=self.env,
                       check=True, capture_output=True)

    def start(self) -> Server:
        with open(self.log, "wb") as log:
            command = [sys.executable, "wsgi.py"]
            if self.workers > 1:
                command = [sys.executable, "-m", "gunicorn", "-k", "eventlet", "-w",
                           str(self.workers), "-b", f"127.0.0.1:{self.port}", "wsgi:app"]
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/api/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start:\n" + self.log.read_text()[-2000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def register(base_url: str, username: str, password: str = "bench-password") -> dict[str, Any]:
    requests.post(f"{base_url}/api/auth/register",
                  json={"username": username, "password": password}, timeout=10)
    body = requests.post(f"{base_url}/api/auth/login",
                         json={"username": username, "password": password}, timeout=10).json()
    return body["data"]
