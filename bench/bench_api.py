"""Paginated reads and an authenticated ``/api/auth/me`` at 20 concurrent clients, against
the web process under eventlet, on MariaDB with 100,000 rows in the table read.

Targets: median ≤ 15 ms, 95th percentile ≤ 50 ms, zero errors.
"""

from __future__ import annotations

import os
import random
import secrets
import tempfile
import time
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert, select

from bench.figures import publish
from bench.server import Server, mysql_url, register
from bench.stats import run_concurrently, summary

ROWS = int(os.environ.get("BENCH_ROWS", 100_000))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 20))
PER_CLIENT = int(os.environ.get("BENCH_REQUESTS", 50))
PACE = float(os.environ.get("BENCH_PACE", 0.1))
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", 1))


def seed_files(database_url: str, owner_id: int, rows: int) -> None:
    """Bulk-insert ``rows`` file rows for one user (rows only: the read path never opens them)."""
    from webapp.app.models import File
    from webapp.app.models.common import utcnow

    engine = create_engine(database_url)
    now = utcnow()
    batch = 5000
    with engine.begin() as conn:
        for start in range(0, rows, batch):
            conn.execute(insert(File.__table__), [
                {"id": f"{secrets.token_hex(16)}", "owner_id": owner_id,
                 "name": f"{secrets.token_hex(12)}.mp3", "original_name": f"clip{i}.mp3",
                 "storage_key": f"upload/bench/{i}.mp3", "format": "mp3",
                 "content_type": "audio/mpeg", "size": 1000 + i, "duration": 1.5,
                 "is_public": False, "kind": "upload", "created_at": now}
                for i in range(start, min(start + batch, rows))])
        count = conn.execute(select(File.__table__.c.id).limit(1)).first()
    engine.dispose()
    assert count is not None


def endpoints(base_url: str, token: str, pages: int) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"}
    sessions = [requests.Session() for _ in range(CLIENTS)]

    def page(client: int, _: int) -> bool:
        number = random.randint(1, pages)
        response = sessions[client].get(f"{base_url}/api/temfile/list",
                                        params={"page": number, "page_size": 10},
                                        headers=headers, timeout=10)
        return response.status_code == 200 and len(response.json()["data"]["list"]) == 10

    def me(client: int, _: int) -> bool:
        response = sessions[client].get(f"{base_url}/api/auth/me", headers=headers, timeout=10)
        return response.status_code == 200

    return {"GET /api/temfile/list (paginated)": page, "GET /api/auth/me": me}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-api-"))
    database_url = mysql_url() or f"sqlite:///{work / 'bench.db'}"
    server = Server(work, database_url, workers=WEB_WORKERS)
    server.migrate()
    results = {}
    with server:
        user = register(server.url, "bench_reader")
        seed_files(database_url, user["user"]["id"], ROWS)
        pages = min(ROWS // 10, 100)
        for name, call in endpoints(server.url, user["access_token"], pages).items():
            run_concurrently(CLIENTS, 5, call)
            for mode, interval in (("closed loop", None), (f"paced {1 / PACE:g}/s each", PACE)):
                started = time.perf_counter()
                latencies, errors = run_concurrently(CLIENTS, PER_CLIENT, call, interval)
                rate = len(latencies) / (time.perf_counter() - started)
                results[f"{name} [{mode}]"] = {**summary(latencies), "errors": errors,
                                               "req_per_s": round(rate, 1)}
    db_kind = "MariaDB" if database_url.startswith("mysql") else "SQLite"
    print(f"{db_kind}, {ROWS} rows, {CLIENTS} concurrent clients, {PER_CLIENT} requests each")
    print(f"web processes: {WEB_WORKERS}")
    print(f"{'endpoint [load]':58} {'median':>8} {'p95':>8} {'max':>8} {'req/s':>7} {'errors':>6}")
    for name, row in results.items():
        print(f"{name:58} {row['median_ms']:>6.1f}ms {row['p95_ms']:>6.1f}ms "
              f"{row['max_ms']:>6.1f}ms {row['req_per_s']:>7} {row['errors']:>6}")
    print("targets: median ≤ 15 ms, p95 ≤ 50 ms, 0 errors")
    publish("api", {"bench": "api", "database": db_kind, "rows": ROWS, "results": results})


if __name__ == "__main__":
    main()
