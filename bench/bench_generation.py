"""``/api/voice/generate``, cached versus uncached, and a history page of a session with
10,000 messages — against the web process under eventlet, on MariaDB when reachable.

Targets: a cached generate ≤ 20 ms median; a history page ≤ 50 ms median.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert

from bench.figures import publish
from bench.server import Server, mysql_url, register
from bench.stats import summary

MESSAGES = int(os.environ.get("BENCH_MESSAGES", 10_000))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", 200))
TEXTS = ["这个观点完全错误！我坚决反对。", "我们应该冷静地看待这个问题。",
         "Let me explain why I think so.", "每一个论点都需要证据来支持。",
         "The evidence points the other way.", "请允许我补充一点。"]


def seed_messages(database_url: str, owner_id: int, session_id: str, count: int) -> None:
    """Bulk-insert a long conversation (rows only: the history read never opens audio)."""
    from webapp.app.models import Message
    from webapp.app.models.common import utcnow

    engine = create_engine(database_url)
    start = utcnow() - timedelta(seconds=count)
    with engine.begin() as conn:
        for first in range(0, count, 2000):
            conn.execute(insert(Message.__table__), [
                {"id": secrets.token_hex(16), "session_id": session_id, "owner_id": owner_id,
                 "timestamp": start + timedelta(seconds=i), "role": ("user", "assistant")[i % 2],
                 "type": "text", "text": f"message number {i}", "transcription": None,
                 "audio_file_id": None, "voice_id": None, "format": None, "duration": None,
                 "metadata": {}}
                for i in range(first, min(first + 2000, count))])
    engine.dispose()


def timed(session: requests.Session, method: str, url: str, **kwargs: object) -> tuple[float, dict]:
    started = time.perf_counter()
    response = session.request(method, url, timeout=60, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()["data"]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-generation-"))
    database_url = mysql_url() or f"sqlite:///{work / 'bench.db'}"
    server = Server(work, database_url)
    server.migrate()
    results: dict[str, dict] = {}
    with server:
        user = register(server.url, "bench_generation")
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {user['access_token']}"
        while not http.get(f"{server.url}/api/health", timeout=5).json()["data"]["engines_warm"]:
            time.sleep(0.5)
        uncached = []
        generation_times = []
        for key, text in enumerate(TEXTS, start=1):
            elapsed, data = timed(http, "POST", f"{server.url}/api/voice/generate",
                                  json={"messageId": key, "text": text, "emotionType": "intense",
                                        "emotionIntensity": 0.7})
            assert data["cached"] is False
            uncached.append(elapsed)
            generation_times.append(data["generationTime"] * 1000)
        cached = []
        for i in range(ROUNDS):
            key = random.randrange(len(TEXTS))
            elapsed, data = timed(http, "POST", f"{server.url}/api/voice/generate",
                                  json={"messageId": 1000 + i, "text": TEXTS[key],
                                        "emotionType": "intense", "emotionIntensity": 0.7})
            assert data["cached"] is True
            cached.append(elapsed)
        results["generate uncached (HTTP round trip)"] = summary(uncached)
        results["generate cached (HTTP round trip)"] = summary(cached)
        session_id = http.post(f"{server.url}/api/sessions", json={}, timeout=10
                               ).json()["data"]["session_id"]
        seed_messages(database_url, user["user"]["id"], session_id, MESSAGES)
        pages = MESSAGES // 20
        history = []
        for _ in range(ROUNDS):
            elapsed, data = timed(http, "GET", f"{server.url}/api/sessions/{session_id}/messages",
                                  params={"page": random.randint(1, pages), "page_size": 20})
            assert data["total"] == MESSAGES and len(data["list"]) == 20
            history.append(elapsed)
        results[f"history page (20 of {MESSAGES})"] = summary(history)
    db_kind = "MariaDB" if database_url.startswith("mysql") else "SQLite"
    speedup = statistics.median(uncached) / statistics.median(cached)
    print(f"{db_kind}; sequential requests; uncached n={len(uncached)}, cached/history "
          f"n={ROUNDS}; synthesis inside an uncached generate: median "
          f"{statistics.median(generation_times):.0f} ms")
    print(f"{'measure':42} {'median':>9} {'p95':>9} {'max':>9}")
    for name, row in results.items():
        print(f"{name:42} {row['median_ms']:>7.1f}ms {row['p95_ms']:>7.1f}ms "
              f"{row['max_ms']:>7.1f}ms")
    print(f"cached is {speedup:.0f}x faster than uncached")
    print("targets: cached generate ≤ 20 ms median; history page ≤ 50 ms median")
    publish("generation", {"bench": "generation", "database": db_kind, "results": results,
                           "cached_speedup": round(speedup, 1)})


if __name__ == "__main__":
    main()
