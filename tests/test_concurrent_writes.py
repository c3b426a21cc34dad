"""The embedded default (``wsgi.py`` under eventlet, SQLite, jobs in-process) while voices
clone and other clients write at the same time: nothing answers 5xx, nothing is refused
for a locked database, and ``/api/health`` keeps answering."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.helpers.realtime import Recorder, User
from tests.helpers.sounds import tone
from tests.helpers.web_server import LiveServer

CLONES = 2
FREEZE_S = 3.0  # SQLite's old busy handler froze the whole process for 5 s at a time


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(DEFAULT_VOICE_TYPE="espeak:en-us").start()
    yield live
    live.stop()


def test_cloning_while_others_write_keeps_the_server_answering(
        server: LiveServer, speech_wav: bytes) -> None:
    cloners = [User(server.url, "espeak:en-us") for _ in range(CLONES)]
    writers = [User(server.url, "espeak:en-us") for _ in range(3)]
    talker = User(server.url, "espeak:en-us")
    clip = tone(1.5)
    outcomes: list[tuple[str, int | str]] = []
    health_s: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def record(kind: str, http: Any, method: str, path: str, **kwargs: Any
               ) -> requests.Response | None:
        try:
            response = http.request(method, server.url + path, timeout=30, **kwargs)
        except requests.RequestException as exc:
            with lock:
                outcomes.append((kind, exc.__class__.__name__))
            return None
        with lock:
            outcomes.append((kind, response.status_code))
        return response

    def write(user: User) -> None:
        turn = 0
        while not done.is_set():
            turn += 1
            record("upload", user.http, "POST", "/api/temfile/upload",
                   files={"file": ("clip.wav", clip)})
            record("tts", user.http, "POST", "/api/tts",
                   json={"text": f"Sentence number {turn}.", "voice_type": "espeak:en-us"})
            record("role", user.http, "POST", "/api/role/add",
                   json={"name": f"Role {turn}", "description": "A calm guide who listens.",
                         "gender": "女", "age": 30,
                         "voice_type": "espeak:en-us"})
            record("read", user.http, "GET", "/api/sessions")

    def probe() -> None:
        while not done.is_set():
            started = time.perf_counter()
            if record("health", requests, "GET", "/api/health") is not None:
                with lock:
                    health_s.append(time.perf_counter() - started)
            time.sleep(0.05)

    turns: list[Any] = []
    problems: list[BaseException] = []

    def guarded(body: Callable[..., None], *args: Any) -> Callable[[], None]:
        def run() -> None:
            try:
                body(*args)
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                problems.append(exc)
                done.set()

        return run

    def talk() -> None:
        recorder = Recorder(server.url, talker.token)
        recorder.join(talker.role_id)
        while not done.is_set():
            mark = len(recorder.events)
            recorder.emit("chat_message", {"role_id": talker.role_id, "message": "Hello!",
                                           "type": "text", "response_type": 1})
            turns.append(recorder.wait_for("response_complete", 60, mark))
            assert "error" not in [name for _, name, _ in recorder.events[mark:]]
        assert "disconnect" not in [name for _, name, _ in recorder.events]
        recorder.close()

    threads = [threading.Thread(target=guarded(write, user)) for user in writers]
    threads += [threading.Thread(target=guarded(probe)), threading.Thread(target=guarded(talk))]
    for thread in threads:
        thread.start()
    jobs = []
    for user in cloners:
        accepted = record(
            "clone", user.http, "POST", "/api/voices",
            data={"name": "mine", "provider": "local", "labels": '{"language": "en"}'},
            files={"files": ("sample.wav", speech_wav)})
        assert accepted is not None and accepted.status_code == 202, accepted
        jobs.append((user, accepted.json()["data"]["job_id"]))
    finished = []
    deadline = time.time() + 240
    try:
        for user, job_id in jobs:
            while time.time() < deadline:
                job = user.call("GET", f"/api/jobs/{job_id}")["data"]
                if job["status"] in ("succeeded", "failed"):
                    finished.append(job)
                    break
                time.sleep(0.3)
        time.sleep(1.0)
    finally:
        done.set()
        for thread in threads:
            thread.join(90)
    log = server.log.read_text(errors="replace")
    assert problems == []
    assert [job["status"] for job in finished] == ["succeeded"] * CLONES, finished
    failures = [(kind, status) for kind, status in outcomes if status not in (200, 202)]
    assert failures == [], failures
    assert {kind for kind, _ in outcomes} >= {"upload", "tts", "role", "read", "health"}
    assert turns, "no Socket.IO turn completed"
    assert health_s and max(health_s) < FREEZE_S, sorted(health_s)[-5:]
    assert "database is locked" not in log
    assert "HeldTransaction" not in log
