"""Sustained load on the production shape: two eventlet web processes, a Celery worker,
MariaDB, Redis and S3 (moto), for ``BENCH_SOAK_SECONDS`` (300).

- ``BENCH_SOAK_CONVERSATIONS`` (50) Socket.IO clients, spread over both web processes,
  each talking to its own role: a typed message, the spoken reply streamed back
  (scripted LLM at 0.03 s a piece, eSpeak NG), ``BENCH_SOAK_THINK`` (2 s) of quiet,
  again — until the time is up. Every reply is followed by a summary job on the worker.
- ``BENCH_SOAK_REST_CLIENTS`` (6) clients calling REST (profile, lists, a session's
  messages, and now and then a stored TTS) every ``BENCH_SOAK_REST_PACE`` (0.25) s.

Afterwards every turn is looked up in the database: each user message and each reply a
client was told about is stored exactly once. Printed: turns, errors, first audio (emit
→ first ``tts_audio_chunk``) p50/p95, whole turn p50/p95, REST p50/p95, the machine's
load average, and what the web processes logged as errors; the last line is JSON.

Redis (a server of its own) and S3 (moto) are started here; MariaDB is the machine's,
with a database of the benchmark's own (``BENCH_SOAK_DATABASE``, ``tingshuo_soak``).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.figures import publish
from bench.server import Server, mysql_url, register
from bench.stats import percentile
from tests.helpers.processes import celery_worker, start_all
from tests.helpers.services import MotoS3, RedisServer, new_bucket

SECONDS = float(os.environ.get("BENCH_SOAK_SECONDS", "300"))
CONVERSATIONS = int(os.environ.get("BENCH_SOAK_CONVERSATIONS", "50"))
THINK = float(os.environ.get("BENCH_SOAK_THINK", "2"))
REST_CLIENTS = int(os.environ.get("BENCH_SOAK_REST_CLIENTS", "6"))
REST_PACE = float(os.environ.get("BENCH_SOAK_REST_PACE", "0.25"))
VOICE = "espeak:en-us"
TURN_TIMEOUT = 60.0
MESSAGES = ("What should I see first in the old town?",
            "Tell me about the harbour and its boats.",
            "Which season is best for a walk by the river?")


@dataclass
class Turn:
    sent: float
    first_audio_ms: float | None = None
    total_ms: float | None = None
    user_message_id: str | None = None
    message_id: str | None = None
    error: str | None = None


@dataclass
class Talker:
    """One user over ``/chat``, taking turns until the end; remembers every turn."""

    url: str
    token: str
    role_id: int
    session_id: str = ""
    turns: list[Turn] = field(default_factory=list)
    disconnects: int = 0
    connect_failures: int = 0

    async def run(self, until: float) -> None:
        """Take turns until ``until``; a dropped connection fails the turn it cut (and
        is counted), then the talker connects and joins its session again."""
        await asyncio.sleep(random.uniform(0, THINK))
        while time.monotonic() < until:
            await self._connected_turns(until)

    async def _connected_turns(self, until: float) -> None:
        import socketio

        client = socketio.AsyncClient(reconnection=False)
        joined, done = asyncio.Event(), asyncio.Event()
        current: list[Turn] = []
        leaving = False

        def on_joined(data: dict[str, Any]) -> None:
            self.session_id = data["session_id"]
            joined.set()

        def on_chunk(_: Any) -> None:
            turn = current[-1]
            if turn.first_audio_ms is None:
                turn.first_audio_ms = (time.perf_counter() - turn.sent) * 1000

        def on_complete(data: dict[str, Any]) -> None:
            turn = current[-1]
            turn.total_ms = (time.perf_counter() - turn.sent) * 1000
            turn.message_id, turn.user_message_id = data["message_id"], data["user_message_id"]
            done.set()

        def on_error(data: Any) -> None:
            current[-1].error = str(data)
            done.set()

        def on_disconnect(*_: Any) -> None:
            if leaving:
                return
            if current and not done.is_set():
                current[-1].error = "disconnected during the turn"
            self.disconnects += 1
            done.set()

        for event, handler in (("joined", on_joined), ("tts_audio_chunk", on_chunk),
                               ("response_complete", on_complete), ("error", on_error),
                               ("disconnect", on_disconnect)):
            client.on(event, handler, namespace="/chat")
        try:
            await client.connect(self.url, namespaces=["/chat"], auth={"token": self.token},
                                 transports=["websocket"], wait_timeout=30)
            await client.emit("join", {"role_id": self.role_id, "audio_format": "mp3",
                                       **({"session_id": self.session_id}
                                          if self.session_id else {})}, namespace="/chat")
            await asyncio.wait_for(joined.wait(), 30)
        except (socketio.exceptions.SocketIOError, TimeoutError) as exc:
            self.connect_failures += 1
            print(f"connect failed ({exc!r}); trying again", flush=True)
            leaving = True
            await client.disconnect()
            await asyncio.sleep(1.0)
            return
        while time.monotonic() < until and client.connected:
            done.clear()
            turn = Turn(sent=time.perf_counter())
            current.append(turn)
            self.turns.append(turn)
            try:
                await client.emit("chat_message", {
                    "role_id": self.role_id, "message": random.choice(MESSAGES),
                    "type": "text", "response_type": 1}, namespace="/chat")
                await asyncio.wait_for(done.wait(), TURN_TIMEOUT)
            except socketio.exceptions.SocketIOError as exc:
                turn.error = f"could not send: {exc!r}"
            except TimeoutError:
                turn.error = f"no response_complete within {TURN_TIMEOUT:g} s"
            await asyncio.sleep(THINK * random.uniform(0.5, 1.5))
        leaving = True
        await client.disconnect()


class RestStream:
    """Paced REST clients over both web processes; latencies and failures."""

    def __init__(self, urls: list[str], tokens: list[str]) -> None:
        self.urls, self.tokens = urls, tokens
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()

    def _client(self, index: int, until: float) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.tokens[index % len(self.tokens)]}"
        calls = 0
        next_at = time.monotonic() + REST_PACE * index / max(1, REST_CLIENTS)
        while next_at < until:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += REST_PACE
            url = self.urls[(index + calls) % len(self.urls)]
            method, path, body = self._request(calls)
            calls += 1
            started = time.perf_counter()
            try:
                response = http.request(method, url + path, json=body, timeout=30)
                ok = response.ok and response.json().get("success", False)
                problem = None if ok else f"{method} {path}: {response.status_code}"
            except (requests.RequestException, ValueError) as exc:
                problem = f"{method} {path}: {exc.__class__.__name__}"
            elapsed = (time.perf_counter() - started) * 1000
            with self.lock:
                self.latencies.append(elapsed)
                if problem:
                    self.failures.append(problem)

    @staticmethod
    def _request(calls: int) -> tuple[str, str, dict[str, Any] | None]:
        if calls % 20 == 19:
            return "POST", "/api/tts", {"text": "A short note, kept for later.",
                                        "voice_type": VOICE}
        return random.choice([("GET", "/api/auth/me", None),
                              ("GET", "/api/role/list?page_size=10", None),
                              ("GET", "/api/sessions?page_size=10", None),
                              ("GET", "/api/voiceTypes", None)])

    def run(self, until: float) -> list[threading.Thread]:
        threads = [threading.Thread(target=self._client, args=(i, until), daemon=True)
                   for i in range(REST_CLIENTS)]
        for thread in threads:
            thread.start()
        return threads


def stored_exactly_once(database: str, talkers: list[Talker]) -> dict[str, int]:
    """Count, in the database, the messages of every completed turn."""
    from sqlalchemy import bindparam, create_engine, text

    engine = create_engine(database)
    wanted = [i for t in talkers for turn in t.turns if turn.message_id
              for i in (turn.message_id, turn.user_message_id)]
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = conn.execute(text("SELECT id, COUNT(*) FROM messages WHERE id IN :ids "
                                     "GROUP BY id").bindparams(bindparam("ids", expanding=True)),
                                {"ids": chunk})
            counts.update({row[0]: row[1] for row in rows})
        sessions = [t.session_id for t in talkers if t.session_id]
        per_session = dict(conn.execute(text(
            "SELECT session_id, COUNT(*) FROM messages WHERE session_id IN :ids "
            "AND role = 'user' GROUP BY session_id").bindparams(
            bindparam("ids", expanding=True)), {"ids": sessions}).all())
    engine.dispose()
    sent = {t.session_id: sum(1 for turn in t.turns if not (turn.error or "").startswith(
        "could not send")) for t in talkers}
    return {"checked": len(wanted),
            "missing": sum(1 for i in wanted if counts.get(i, 0) == 0),
            "duplicated": sum(1 for i in wanted if counts.get(i, 0) > 1),
            "sessions_with_other_user_message_counts": sum(
                1 for sid, n in sent.items() if per_session.get(sid, 0) != n)}


def problems(log: Path) -> dict[str, int]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return {"tracebacks": text.count("Traceback"),
            "error_lines": sum(1 for line in text.splitlines() if " ERROR " in line)}


def ms(values: list[float], fraction: float) -> float:
    return round(percentile(values, fraction), 1) if values else float("nan")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-soak-"))
    database = mysql_url(os.environ.get("BENCH_SOAK_DATABASE", "tingshuo_soak"))
    if database is None:
        raise RuntimeError("the soak needs MariaDB (BENCH_MYSQL_SERVER)")
    redis = RedisServer().start()
    load_before = os.getloadavg()
    wall = time.perf_counter()
    with MotoS3(work / "moto.log") as moto:
        env = {"REDIS_URL": redis.url(), "CELERY_QUEUE": "soak-" + uuid.uuid4().hex[:8],
               "LLM_ENGINE": "scripted", "SCRIPTED_LLM_DELAY": "0.03",
               "DEFAULT_VOICE_TYPE": VOICE, "WARM_UP": "false", "DASHSCOPE_API_KEY": "",
               "LLM_BASE_URL": "", "SECRET_KEY": "soak-secret-0123456789abcdef",
               "JWT_SECRET_KEY": "soak-jwt-secret-0123456789abcdef",
               **new_bucket(moto.endpoint, "soak/")}
        for i in range(2):
            (work / f"web{i}").mkdir()
        webs = [Server(work / f"web{i}", database, **env) for i in range(2)]
        webs[0].migrate()
        worker_log = work / "worker.log"
        worker = celery_worker(env["CELERY_QUEUE"], webs[0].env, worker_log)
        try:
            start_all([worker, *webs])
            print(f"stack up; {CONVERSATIONS} conversations and {REST_CLIENTS} REST clients "
                  f"for {SECONDS:g} s", flush=True)
            talkers = []
            for i in range(CONVERSATIONS):
                url = webs[i % 2].url
                data = register(url, "soak_" + uuid.uuid4().hex[:12])
                role = requests.post(f"{url}/api/role/add", json={
                    "name": "Ada", "description": "A patient guide to the city.",
                    "gender": "女", "age": 36, "voice_type": VOICE},
                    headers={"Authorization": f"Bearer {data['access_token']}"},
                    timeout=30).json()
                talkers.append(Talker(url, data["access_token"], role["data"]["role_id"]))
            until = time.monotonic() + SECONDS
            rest = RestStream([w.url for w in webs], [t.token for t in talkers])
            threads = rest.run(until)

            async def talk() -> None:
                await asyncio.gather(*(t.run(until) for t in talkers))

            asyncio.run(talk())
            for thread in threads:
                thread.join(timeout=60)
            time.sleep(2.0)
            storage = stored_exactly_once(database, talkers)
        finally:
            for web in webs:
                web.stop()
            worker.stop(timeout=30)
    redis.close()
    load_after = os.getloadavg()
    turns = [turn for t in talkers for turn in t.turns]
    errors = [turn.error for turn in turns if turn.error]
    first = [turn.first_audio_ms for turn in turns if turn.first_audio_ms is not None]
    total = [turn.total_ms for turn in turns if turn.total_ms is not None]
    logs = {f"web{i}": problems(web.log) for i, web in enumerate(webs)}
    logs["worker"] = problems(worker_log)
    result = {
        "bench": "soak", "seconds": SECONDS, "conversations": CONVERSATIONS,
        "rest_clients": REST_CLIENTS, "turns": len(turns), "turn_errors": len(errors),
        "first_audio_p50_ms": ms(first, 0.5), "first_audio_p95_ms": ms(first, 0.95),
        "turn_p50_ms": ms(total, 0.5), "turn_p95_ms": ms(total, 0.95),
        "disconnects": sum(t.disconnects for t in talkers),
        "connect_failures": sum(t.connect_failures for t in talkers),
        "rest_calls": len(rest.latencies), "rest_errors": len(rest.failures),
        "rest_p50_ms": ms(rest.latencies, 0.5), "rest_p95_ms": ms(rest.latencies, 0.95),
        "stored": storage, "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after], "log_problems": logs,
        "run_seconds": round(time.perf_counter() - wall, 1)}
    print(f"\nturns: {len(turns)} ({len(turns) / SECONDS:.1f}/s), errors {len(errors)}"
          f"{' e.g. ' + errors[0] if errors else ''}; dropped connections "
          f"{result['disconnects']}, failed connects {result['connect_failures']}")
    print(f"first audio: p50 {result['first_audio_p50_ms']} ms, "
          f"p95 {result['first_audio_p95_ms']} ms (n={len(first)})")
    print(f"whole turn: p50 {result['turn_p50_ms']} ms, p95 {result['turn_p95_ms']} ms")
    print(f"REST: {len(rest.latencies)} calls, {len(rest.failures)} errors"
          f"{' e.g. ' + rest.failures[0] if rest.failures else ''}, "
          f"p50 {result['rest_p50_ms']} ms, p95 {result['rest_p95_ms']} ms")
    print(f"stored exactly once: {storage}")
    print(f"load average before {result['load_average_before']}, "
          f"after {result['load_average_after']} (2 cores, shared)")
    print(f"logged problems: {logs} (logs in {work})")
    publish("soak", result)


if __name__ == "__main__":
    main()
