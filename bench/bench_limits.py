"""What the per-user limits add to a request: one daily count (a conditional ``UPDATE``)
on SQLite and MariaDB, alone and with 8 threads at once, and one per-minute hit and one
place taken and given back, in memory and in Redis.

Run with ``python -m bench limits``; ``BENCH_LIMIT_ROUNDS`` (300) counts per figure,
``BENCH_REDIS_URL`` (``redis://127.0.0.1:6379/0``) the Redis used.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.figures import publish
from bench.server import mysql_url
from bench.stats import summary

ROUNDS = int(os.environ.get("BENCH_LIMIT_ROUNDS", 300))
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
THREADS = 8


def _app(url: str, instance: Path) -> Any:
    from flask_migrate import upgrade

    from webapp.app import create_app
    from webapp.app.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                      "STORAGE_DIR": instance / "storage", "USER_DAILY_CHARACTERS": 0,
                      "WARM_UP": False})
    with app.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        db.engine.dispose()
    return app


def _timed(fn: Callable[[], Any], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _daily(app: Any) -> dict[str, Any]:
    from webapp.app.extensions import db
    from webapp.app.models import User
    from webapp.app.services.platform import limits

    with app.app_context():
        user = User(username="bench_" + uuid.uuid4().hex[:8], password_hash="x")
        db.session.add(user)
        db.session.commit()
        user_id = user.id
        alone = summary(_timed(lambda: limits.charge(user_id, characters=10), ROUNDS))
        db.session.remove()

    def work() -> None:
        with app.app_context():
            for _ in range(ROUNDS // THREADS):
                limits.charge(user_id, characters=1)
            db.session.remove()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    with app.app_context():
        counted = limits.usage(user_id)["characters"]
        db.session.remove()
    expected = ROUNDS * 10 + THREADS * (ROUNDS // THREADS)
    return {"alone": alone, "per_second_8_threads": round(THREADS * (ROUNDS // THREADS) / elapsed),
            "exact": counted == expected}


def _rates_and_places(storage: str, redis_url: str | None) -> dict[str, Any]:
    from webapp.app.services.platform import limits

    rates = limits.Rates({"RATELIMIT_ENABLED": True, "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
                          "RATELIMIT_STORAGE_URI": storage, "RATELIMIT_SPEECH": "",
                          "RATELIMIT_CLONING": "", "RATELIMIT_UPLOADS": "",
                          "RATELIMIT_SESSIONS": "", "RATELIMIT_TURNS": "1000000 per minute"})
    slots = limits.Slots(redis_url)
    user_id = uuid.uuid4().int % 10**9

    def place() -> None:
        token = uuid.uuid4().hex
        slots.take("streams", user_id, token, 60, limit=10)
        slots.release("streams", user_id, token)

    return {"rate_hit": summary(_timed(lambda: rates.hit("turns", user_id), ROUNDS)),
            "place_take_release": summary(_timed(place, ROUNDS))}


def main() -> None:
    load = open("/proc/loadavg").read().split()[:3]
    figures: dict[str, Any] = {"rounds": ROUNDS, "loadavg": load}
    with tempfile.TemporaryDirectory() as work:
        sqlite_app = _app(f"sqlite:///{work}/bench.db", Path(work))
        figures["daily_sqlite"] = _daily(sqlite_app)
        url = mysql_url(os.environ.get("BENCH_MYSQL_DATABASE", "tingshuo_bench") + "_limits")
        if url:
            figures["daily_mariadb"] = _daily(_app(url, Path(work)))
    figures["memory"] = _rates_and_places("memory://", None)
    figures["redis"] = _rates_and_places(REDIS_URL, REDIS_URL)
    for name in ("daily_sqlite", "daily_mariadb"):
        if name in figures:
            f = figures[name]
            print(f"{name:16} one count median {f['alone']['median_ms']:.2f} ms, "
                  f"p95 {f['alone']['p95_ms']:.2f} ms; {THREADS} threads: "
                  f"{f['per_second_8_threads']}/s; exact: {f['exact']}")
    for name in ("memory", "redis"):
        f = figures[name]
        print(f"{name:16} rate hit median {f['rate_hit']['median_ms']:.3f} ms, "
              f"place take+release median {f['place_take_release']['median_ms']:.3f} ms")
    print(f"load average {' '.join(load)}")
    publish("limits", {"bench": "limits", **figures})
