"""The production shape end to end over HTTP: the web process under eventlet, a real
Celery worker on Redis, MariaDB, and DashScope (the fake) reached through the real SDK.

A user uploads a sample, gets a voice, hears its preview, gives it to a role and lists
it — by REST alone."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers.processes import flower, free_port
from tests.helpers.stacks import Stack
from webapp.app import audio


class Api:
    def __init__(self, stack: Stack) -> None:
        self.url = stack.url
        self.session = requests.Session()
        name = "u" + uuid.uuid4().hex[:10]
        self.session.post(f"{self.url}/api/auth/register",
                          json={"username": name, "password": "stack-password"}, timeout=10)
        token = self.session.post(f"{self.url}/api/auth/login",
                                  json={"username": name, "password": "stack-password"},
                                  timeout=10).json()["data"]["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, timeout=30, **kwargs)

    def wait(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.call("GET", f"/api/jobs/{job_id}").json()["data"]
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(0.25)
        raise AssertionError(f"job {job_id} still running")

    def upload(self, data: bytes) -> dict[str, Any]:
        return self.call("POST", "/api/temfile/upload",
                         files={"file": ("sample.wav", data)}).json()["data"]


@pytest.fixture
def api(production_stack: Stack, fake_dashscope: Any) -> Api:
    fake_dashscope.reset()
    return Api(production_stack)


def test_stack_reports_production_shape(api: Api) -> None:
    health = api.call("GET", "/api/health").json()["data"]
    assert health == {**health, "database": "mysql", "jobs": "celery", "storage": "local"}
    providers = api.call("GET", "/api/providers").json()["data"]
    configured = {p["name"] for p in providers["tts"] if p["configured"]}
    assert {"dashscope", "piper", "espeak"} <= configured


def test_dashscope_clone_through_worker_and_sdk(api: Api, fake_dashscope: Any,
                                                speech_wav: bytes, production_stack: Stack
                                                ) -> None:
    upload = api.upload(speech_wav)
    started = time.perf_counter()
    accepted = api.call("POST", "/api/voice/create_voice", json={
        "audio_file_id": upload["file_id"], "voice_name": "云端音色", "voice_gender": "female",
        "voice_description": "通过 DashScope 复刻", "is_public": False, "provider": "dashscope"})
    assert accepted.status_code == 202, accepted.text
    data = accepted.json()["data"]
    job = api.wait(data["job_id"])
    elapsed = time.perf_counter() - started
    assert job["status"] == "succeeded", (job, production_stack.log("worker"))
    print(f"dashscope clone end to end: {elapsed:.2f} s")
    provider_voice = job["result"]["provider_voice_id"]
    stats = fake_dashscope.stats()
    enrolled = stats["voices"][provider_voice] if isinstance(stats["voices"], dict) else next(
        v for v in stats["voices"] if v["voice_id"] == provider_voice)
    assert enrolled["audio_seconds"] == pytest.approx(job["result"]["sample_seconds"], abs=0.2)
    voice = api.call("GET", f"/api/voices/{data['voice_id']}").json()["data"]
    assert voice["status"] == "ready" and voice["provider"] == "dashscope"
    assert voice["model"]["local_training"] is False
    preview = api.call("GET", f"/api/voices/{data['voice_id']}/preview")
    assert preview.status_code == 200 and audio.probe(preview.content).duration > 0.5
    role = api.call("POST", "/api/role/add", json={
        "name": "云端角色", "description": "说话用的是复刻出来的云端音色", "gender": "女",
        "age": 28, "voice_type": data["voice_id"]}).json()
    assert role["code"] == 200, role
    listed = api.call("GET", "/api/role/list?page_size=100").json()["data"]["list"]
    assert any(r["id"] == role["data"]["role_id"] and r["voice_type"] == data["voice_id"]
               for r in listed)
    types = api.call("GET", "/api/voiceTypes").json()["data"]
    mine = next(t for t in types if t["voice_type"] == data["voice_id"])
    assert mine["provider"] == "dashscope"
    assert requests.get(mine["sample_url"], timeout=10).status_code == 200
    assert api.call("DELETE", f"/api/voices/{data['voice_id']}").status_code == 200
    voices_left = fake_dashscope.stats()["voices"]
    assert provider_voice not in (voices_left if isinstance(voices_left, dict)
                                  else [v["voice_id"] for v in voices_left])


def test_local_clone_through_worker(api: Api, speech_wav: bytes) -> None:
    started = time.perf_counter()
    accepted = api.call("POST", "/api/voices", data={"name": "本地音色", "provider": "local",
                                                     "labels": '{"language": "en"}'},
                        files={"files": ("s.wav", speech_wav)})
    assert accepted.status_code == 202, accepted.text
    job = api.wait(accepted.json()["data"]["job_id"])
    print(f"local clone end to end: {time.perf_counter() - started:.2f} s")
    assert job["status"] == "succeeded", job
    voice = api.call("GET", f"/api/voices/{job['result']['voice_id']}").json()["data"]
    assert voice["model"]["metadata"]["approximation"] is True


def test_transient_provider_error_is_retried(api: Api, fake_dashscope: Any,
                                             speech_wav: bytes) -> None:
    upload = api.upload(speech_wav)
    fake_dashscope.control("quota", count=1, kinds=["enrollment"])
    accepted = api.call("POST", "/api/voice/create_voice", json={
        "audio_file_id": upload["file_id"], "voice_name": "重试", "provider": "dashscope"})
    job = api.wait(accepted.json()["data"]["job_id"])
    assert job["status"] == "succeeded" and job["attempts"] == 2, job


def test_permanent_provider_error_fails_and_leaves_nothing(api: Api, fake_dashscope: Any,
                                                           speech_wav: bytes) -> None:
    upload = api.upload(speech_wav)
    fake_dashscope.control("task_failed", kinds=["tts"])
    try:
        accepted = api.call("POST", "/api/voice/create_voice", json={
            "audio_file_id": upload["file_id"], "voice_name": "失败", "provider": "dashscope"})
        job = api.wait(accepted.json()["data"]["job_id"])
    finally:
        fake_dashscope.control("ok")
    assert job["status"] == "failed" and "dashscope" in job["error"], job
    voice = api.call("GET", f"/api/voices/{accepted.json()['data']['voice_id']}").json()["data"]
    assert voice["status"] == "failed" and voice["preview_url"] is None
    assert fake_dashscope.stats()["voices"] in ({}, [])


def test_jobs_are_visible_in_flower(api: Api, production_stack: Stack, speech_wav: bytes,
                                    tmp_path: Path) -> None:
    port = free_port()
    env = {**production_stack.env, "FLOWER_UNAUTHENTICATED_API": "true"}
    with flower(port, env, tmp_path / "flower.log"):
        accepted = api.call("POST", "/api/voices", data={"name": "看得见", "provider": "local"},
                            files={"files": ("s.wav", speech_wav)}).json()["data"]
        api.wait(accepted["job_id"])
        task: dict[str, Any] = {}
        deadline = time.time() + 60
        while time.time() < deadline and task.get("state") != "SUCCESS":
            answer = requests.get(f"http://127.0.0.1:{port}/api/task/info/{accepted['job_id']}",
                                  timeout=5)
            task = answer.json() if answer.ok else {}
            time.sleep(0.5)
        assert task.get("name") == "voices.clone" and task.get("state") == "SUCCESS", task
