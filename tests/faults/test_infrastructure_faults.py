"""Infrastructure that fails under the running stack: Redis restarted during load, a
worker killed mid-clone, S3 unreachable, MariaDB's connections dropped.

Each is made on what the stack owns (its Redis server, its proxies, its worker); the
shared MariaDB and Redis of this machine are never touched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import requests

from tests.faults.stack import FaultStack, wait_until
from tests.helpers.realtime import Recorder, User


class RestLoad:
    """Clients calling REST endpoints on both web processes until stopped."""

    PATHS = ("/api/auth/me", "/api/role/list?page_size=5", "/api/sessions?page_size=5",
             "/api/voiceTypes")

    def __init__(self, urls: tuple[str, ...], token: str, clients: int = 4) -> None:
        self.urls, self.token, self.clients = urls, token, clients
        self.results: list[tuple[float, int, float]] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()

    def _client(self, index: int) -> None:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token}"
        call = 0
        while not self.stopping.is_set():
            url = self.urls[(index + call) % len(self.urls)]
            path = self.PATHS[call % len(self.PATHS)]
            call += 1
            started = time.perf_counter()
            try:
                status = http.get(url + path, timeout=15).status_code
            except requests.RequestException:
                status = 0
            with self.lock:
                self.results.append((time.monotonic(), status,
                                     time.perf_counter() - started))

    @contextmanager
    def running(self) -> Iterator[RestLoad]:
        threads = [threading.Thread(target=self._client, args=(i,), daemon=True)
                   for i in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stopping.set()
            for thread in threads:
                thread.join(timeout=20)

    def between(self, start: float, end: float) -> list[tuple[float, int, float]]:
        with self.lock:
            return [r for r in self.results if start <= r[0] <= end]


def _turn(client: Recorder, role_id: int, text: str) -> int:
    mark = len(client.events)
    client.emit("chat_message", {"role_id": role_id, "message": text, "type": "text",
                                 "response_type": 0})
    return mark


def _local_clone(user: User, wav: bytes) -> requests.Response:
    return user.http.post(user.url + "/api/voices", data={"name": "本地", "provider": "local",
                                                          "labels": '{"language": "en"}'},
                          files={"files": ("s.wav", wav)}, timeout=60)


def _job(user: User, job_id: str, timeout: float) -> dict[str, Any]:
    return wait_until(lambda: (job := user.call("GET", f"/api/jobs/{job_id}")["data"])[
        "status"] in ("succeeded", "failed") and job, timeout, f"job {job_id} to end")


@pytest.mark.services
def test_redis_restart_during_load(stack: FaultStack, speech_wav: bytes) -> None:
    user = User(stack.fallback, voice_type="espeak:cmn")
    session_id = user.call("POST", "/api/sessions", json={"role_id": user.role_id})[
        "data"]["session_id"]
    near = Recorder(stack.fallback, user.token)
    far = Recorder(stack.plain, user.token)
    for client in (near, far):
        client.join(user.role_id, session_id=session_id)
    load = RestLoad((stack.plain, stack.fallback), user.token)
    with load.running():
        time.sleep(1.0)
        down_at = time.monotonic()
        stack.redis.stop()
        login = requests.post(stack.plain + "/api/auth/login", json={
            "username": user.name, "password": "long-enough"}, timeout=15)
        queued = _local_clone(user, speech_wav)
        mark = _turn(near, user.role_id, "Redis is down right now.")
        near.wait_for("response_complete", 30, mark)
        time.sleep(1.0)
        stack.redis.start()
        up_at = time.monotonic()
        rejoined = Recorder(stack.plain, user.token)
        rejoined.join(user.role_id, session_id=session_id)

        def crosses() -> bool:
            mark = _turn(near, user.role_id, "Is Redis back?")
            near.wait_for("response_complete", 30, mark)
            try:
                rejoined.wait_for("response_complete", 3, len(rejoined.events) - 1)
            except AssertionError:
                return False
            return True

        wait_until(crosses, 30, "room events to cross processes again", every=0.5)
        crossed_at = time.monotonic()
        after = _local_clone(user, speech_wav)
        assert after.status_code == 202, after.text
        job = _job(user, after.json()["data"]["job_id"], 90)
    for client in (near, far, rejoined):
        client.close()
    during = load.between(down_at, up_at)
    statuses = [status for _, status, _ in load.results]
    print(f"\nFAULT redis_restart: {len(load.results)} REST calls, {len(during)} while Redis "
          f"was down, statuses {sorted(set(statuses))}, slowest "
          f"{max(s for _, _, s in load.results):.2f} s; login while down "
          f"{login.status_code}; job while down {queued.status_code} "
          f"{queued.json()['error']['code']}; rooms crossed again "
          f"{crossed_at - up_at:.1f} s after the restart")
    assert during and set(statuses) == {200}, "REST keeps answering"
    assert login.status_code == 200, "rate limits fail open"
    assert queued.status_code == 503 and queued.json()["error"]["code"] == \
        "JOB_QUEUE_UNAVAILABLE"
    failed = [v for v in user.call("GET", "/api/voices?page_size=50")["data"]["list"]
              if v["status"] == "failed"]
    assert failed and "queue" in failed[0]["error"], "the voice says why it was not made"
    assert job["status"] == "succeeded", "a job sent after the restart runs"
    counted = redis.Redis.from_url(stack.redis.url()).keys("LIMITS*")
    requests.post(stack.plain + "/api/auth/login", json={
        "username": user.name, "password": "long-enough"}, timeout=15)
    assert redis.Redis.from_url(stack.redis.url()).keys("LIMITS*") or counted, \
        "limits are counted in Redis again"


@pytest.mark.services
def test_worker_killed_mid_clone(stack: FaultStack, speech_wav: bytes) -> None:
    user = User(stack.plain)
    upload = user.call("POST", "/api/temfile/upload",
                       files={"file": ("sample.wav", speech_wav)})["data"]
    before = stack.objects()
    stack.dashscope.deploy_in(60)
    accepted = user.call("POST", "/api/voice/create_voice", json={
        "audio_file_id": upload["file_id"], "voice_name": "断电", "provider": "dashscope"})
    job_id, voice_id = accepted["data"]["job_id"], accepted["data"]["voice_id"]
    # Killed between DashScope's answer and the commit of its id, the enrolled voice
    # would be unknown to the next attempt (see the README): kill once it is recorded.
    first = wait_until(lambda: user.call("GET", f"/api/voices/{voice_id}")["data"][
        "provider_voice_id"], 60, "the enrolled voice to be recorded")
    killed_at = time.perf_counter()
    stack.kill_worker()
    assert user.call("GET", f"/api/jobs/{job_id}")["data"]["status"] == "running"
    stack.dashscope.deploy_in(0.3)
    stack.start_worker("worker-after-kill")
    job = _job(user, job_id, 90)
    seconds = time.perf_counter() - killed_at
    voices = stack.dashscope.stats()["voices"]
    print(f"\nFAULT worker_sigkill: job {job['status']} after {job['attempts']} attempts, "
          f"{seconds:.1f} s after the kill; DashScope voices {[v['voice_id'] for v in voices]}"
          f" (first enrolled {first})")
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert [v["voice_id"] for v in voices] == [job["result"]["provider_voice_id"]] != [first], \
        "the voice enrolled by the killed attempt was deleted"
    voice = user.call("GET", f"/api/voices/{voice_id}")["data"]
    assert voice["status"] == "ready"
    made = stack.objects() - before
    kept = {stack.env["S3_PREFIX"] + row.storage_key for row in stack.rows(
        "SELECT storage_key FROM files WHERE owner_id = :owner", owner=user.id)}
    assert made <= kept and len(made) == 2, f"only the training sample and the preview: {made}"
    assert "clearing what an interrupted attempt left" in stack.log("worker-after-kill")


@pytest.mark.services
def test_s3_unreachable_answers_503_and_recovers(stack: FaultStack, speech_wav: bytes) -> None:
    user = User(stack.plain, voice_type="espeak:cmn")
    assert user.upload(speech_wav)["success"]
    before = stack.objects()
    uploads = user.call("GET", "/api/temfile/list")["data"]["total"]
    session_id = user.call("POST", "/api/sessions", json={})["data"]["session_id"]
    stack.s3_proxy.cut()
    started = time.perf_counter()
    upload = user.http.post(stack.plain + "/api/temfile/upload",
                            files={"file": ("s.wav", speech_wav)}, timeout=60)
    upload_seconds = time.perf_counter() - started
    started = time.perf_counter()
    tts = user.http.post(stack.plain + "/api/tts", json={
        "text": "你好。", "voice_type": "espeak:cmn", "session_id": session_id}, timeout=60)
    tts_seconds = time.perf_counter() - started
    print(f"\nFAULT s3_unreachable: upload {upload.status_code} "
          f"{upload.json()['error']} in {upload_seconds:.2f} s; tts {tts.status_code} in "
          f"{tts_seconds:.2f} s")
    for response, seconds in ((upload, upload_seconds), (tts, tts_seconds)):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "STORAGE_UNAVAILABLE"
        assert seconds < 20
    assert user.call("GET", "/api/temfile/list")["data"]["total"] == uploads
    assert user.call("GET", f"/api/sessions/{session_id}/messages")["data"]["total"] == 0
    stack.s3_proxy.restore()
    assert user.upload(speech_wav)["success"], "recovers without a restart"
    assert user.call("POST", "/api/tts", json={"text": "你好。", "voice_type": "espeak:cmn",
                                               "session_id": session_id})["success"]
    made = stack.objects() - before
    kept = {stack.env["S3_PREFIX"] + row.storage_key for row in stack.rows(
        "SELECT storage_key FROM files WHERE owner_id = :owner", owner=user.id)}
    assert made <= kept and len(made) == 2, f"nothing half-written: {made}"


@pytest.mark.services
def test_database_connections_dropped_pool_recovers(stack: FaultStack,
                                                    speech_wav: bytes) -> None:
    user = User(stack.plain)
    urls = (stack.plain, stack.fallback)
    for _ in range(3):
        for url in urls:
            assert user.http.get(url + "/api/auth/me", timeout=10).status_code == 200
    assert stack.db_proxy.connections > 0
    stack.db_proxy.cut()
    during = []
    for url in urls:
        started = time.perf_counter()
        response = user.http.get(url + "/api/role/list", timeout=30)
        during.append((response.status_code, response.json()["error"]["code"],
                       time.perf_counter() - started))
    time.sleep(1.0)
    stack.db_proxy.restore()
    after = []
    for _ in range(5):
        for url in urls:
            started = time.perf_counter()
            response = user.http.get(url + "/api/role/list", timeout=30)
            after.append((response.status_code, time.perf_counter() - started))
    print(f"\nFAULT database_dropped: during {during}; after "
          f"{sorted(set(s for s, _ in after))}, slowest {max(t for _, t in after):.2f} s")
    assert all(status == 503 and code == "DATABASE_UNAVAILABLE" and seconds < 10
               for status, code, seconds in during), during
    assert all(status == 200 for status, _ in after), after
    accepted = _local_clone(user, speech_wav)
    assert accepted.status_code == 202, accepted.text
    assert _job(user, accepted.json()["data"]["job_id"], 90)["status"] == "succeeded"
