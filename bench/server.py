"""The web process for a benchmark (``wsgi.py`` under eventlet, or gunicorn eventlet
workers), a database of the benchmarks' own, and a user to drive it with."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import requests

from tests.helpers.web_server import WebServer


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


class Server(WebServer):
    """The web process(es) with their own database, folder and port, logging warnings
    only (unless ``LOG_LEVEL`` is given) so that logging costs the figures nothing."""

    def __init__(self, workdir: Path, database_url: str, workers: int = 1,
                 warm: bool = False, **env: str) -> None:
        super().__init__(workdir, workers=workers, warm=warm, start_timeout=180 if warm else 60,
                         **{"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env})


def register(base_url: str, username: str, password: str = "bench-password") -> dict[str, Any]:
    requests.post(f"{base_url}/api/auth/register",
                  json={"username": username, "password": password}, timeout=10)
    body = requests.post(f"{base_url}/api/auth/login",
                         json={"username": username, "password": password}, timeout=10).json()
    return body["data"]
