"""API keys (create, list, revoke, quotas) and the ``/v1`` rules that need the database:
on SQLite and on MariaDB, through Flask's test client.

The OpenAI SDK against the real server is in ``test_openai_api.py``.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Any

import srt
import webvtt
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.helpers.environment import engine_bound
from webapp.app.extensions import db
from webapp.app.models import ApiKey, ApiKeyUsage, Conversation, File, Message


def _key(client: FlaskClient, user: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = client.post("/api/keys", headers=user["headers"], json={"name": "bot", **fields})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _counts(app: Flask, owner_id: int) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model).where(
            model.owner_id == owner_id)) for model in (Conversation, Message, File))


def test_key_is_shown_once_and_kept_only_as_a_hash(app: Flask, client: FlaskClient,
                                                   user: dict[str, Any]) -> None:
    created = _key(client, user, monthly_characters=1000)
    secret = created["key"]
    assert secret.startswith("tsk-") and created["prefix"] == secret[:11]
    listed = client.get("/api/keys", headers=user["headers"]).get_json()["data"]["list"]
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert "key" not in listed[0] and listed[0]["usage"]["characters"] == 0
    with app.app_context():
        row = db.session.get(ApiKey, created["key_id"])
        assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in (row.prefix, row.key_hash, row.name)


def test_key_and_jwt_both_open_v1(client: FlaskClient, user: dict[str, Any]) -> None:
    secret = _key(client, user)["key"]
    for headers in (_bearer(secret), user["headers"]):
        body = client.get("/v1/models", headers=headers).get_json()
        assert "whisper-1" in {m["id"] for m in body["data"]}
    listed = client.get("/api/keys", headers=user["headers"]).get_json()["data"]["list"]
    assert listed[0]["last_used_at"] is not None


def test_unknown_and_revoked_keys_get_401_in_openai_shape(client: FlaskClient,
                                                          make_user: Any) -> None:
    owner, other = make_user(), make_user()
    created = _key(client, owner)
    assert client.delete(f"/api/keys/{created['key_id']}",
                         headers=other["headers"]).status_code == 404
    assert client.get("/v1/audio/voices", headers=_bearer(created["key"])).status_code == 200
    assert client.delete(f"/api/keys/{created['key_id']}",
                         headers=owner["headers"]).status_code == 200
    for secret in (created["key"], "tsk-unknown", "sk-something-else"):
        response = client.get("/v1/audio/voices", headers=_bearer(secret))
        assert response.status_code == 401
        error = response.get_json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "authentication_error"
        assert error["message"]
    assert client.get("/api/keys", headers=owner["headers"]).get_json()["data"]["list"] == []
    assert client.delete(f"/api/keys/{created['key_id']}",
                         headers=owner["headers"]).status_code == 404


def test_v1_errors_are_openai_shaped_and_api_errors_keep_the_envelope(
        client: FlaskClient, user: dict[str, Any]) -> None:
    secret = _key(client, user)["key"]
    missing = client.get("/v1/nothing-here", headers=_bearer(secret)).get_json()
    assert set(missing) == {"error"} and missing["error"]["type"] == "invalid_request_error"
    no_token = client.get("/v1/models").get_json()
    assert set(no_token) == {"error"} and no_token["error"]["type"] == "authentication_error"
    bad = client.post("/api/keys", headers=user["headers"], json={"monthly_characters": 5})
    assert bad.status_code == 400 and bad.get_json()["success"] is False
    assert bad.get_json()["error"]["code"] == "VALIDATION_ERROR"
    too_long = client.post("/v1/audio/speech", headers=_bearer(secret), json={
        "model": "tts-1", "voice": "alloy", "input": "a" * 4097})
    error = too_long.get_json()["error"]
    assert too_long.status_code == 400 and error["param"] == "input" and "4096" in error["message"]


def test_character_quota_answers_429_and_changes_nothing(app: Flask, client: FlaskClient,
                                                         user: dict[str, Any]) -> None:
    created = _key(client, user, monthly_characters=30)
    headers = _bearer(created["key"])
    first = client.post("/v1/audio/speech", headers=headers, json={
        "model": "espeak", "voice": "espeak:en-us", "input": "Twenty characters ok."})
    assert first.status_code == 200 and len(first.data) > 1000
    before = _counts(app, user["id"])
    refused = client.post("/v1/audio/speech", headers=headers, json={
        "model": "espeak", "voice": "espeak:en-us", "input": "Another twenty chars."})
    assert refused.status_code == 429
    assert refused.get_json()["error"]["type"] == "insufficient_quota"
    assert _counts(app, user["id"]) == before
    usage = client.get("/api/keys", headers=user["headers"]).get_json()["data"]["list"][0]
    assert usage["usage"]["characters"] == len("Twenty characters ok.")


def test_audio_quota_answers_429_before_storing(app: Flask, client: FlaskClient,
                                                user: dict[str, Any], speech_wav: bytes) -> None:
    headers = _bearer(_key(client, user, monthly_audio_seconds=5)["key"])
    before = _counts(app, user["id"])
    refused = client.post("/v1/audio/transcriptions", headers=headers, data={
        "file": (io.BytesIO(speech_wav), "speech.wav"), "model": "whisper-1"})
    assert refused.status_code == 429 and refused.get_json()["error"]["code"] == "quota_exceeded"
    assert _counts(app, user["id"]) == before


def test_concurrent_charges_never_pass_the_quota(app: Flask, user: dict[str, Any],
                                                 client: FlaskClient) -> None:
    """Eight threads race for 40 characters, one at a time: exactly 40 get through."""
    from webapp.app.api import ApiError
    from webapp.app.services.platform import api_keys

    key_id = _key(client, user, monthly_characters=40)["key_id"]
    granted: list[int] = []
    refused: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def spend() -> None:
        with app.app_context():
            start.wait()
            for _ in range(8):
                try:
                    api_keys.charge(key_id, characters=1)
                    granted.append(1)
                except ApiError as exc:
                    assert exc.status == 429
                    refused.append(1)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    failures.append(exc)
            db.session.remove()

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert len(granted) == 40 and len(refused) == 24
    with app.app_context():
        usage = db.session.scalar(select(ApiKeyUsage).where(ApiKeyUsage.key_id == key_id))
        assert usage.characters == 40


def test_calls_are_messages_of_the_keys_session(app: Flask, client: FlaskClient,
                                                user: dict[str, Any], speech_wav: bytes) -> None:
    headers = _bearer(_key(client, user)["key"])
    spoken = client.post("/v1/audio/speech", headers=headers, json={
        "model": "espeak", "voice": "espeak:en-us", "input": "Kept in history."})
    assert len(spoken.data) > 1000  # the whole stream is read: now its audio is stored
    heard = client.post("/v1/audio/transcriptions", headers=headers, data={
        "file": (io.BytesIO(speech_wav), "speech.wav"), "model": "whisper-1"})
    assert spoken.status_code == heard.status_code == 200
    session_id = spoken.headers["X-Session-Id"]
    messages = client.get(f"/api/sessions/{session_id}/messages", headers=user["headers"]
                          ).get_json()["data"]["list"]
    assert [(m["role"], m["type"]) for m in messages] == [("assistant", "voice"),
                                                          ("user", "voice")]
    assert messages[0]["text"] == "Kept in history." and messages[0]["audio_url"]
    assert messages[1]["transcription"] == heard.get_json()["text"]
    assert client.get(messages[1]["audio_url"].removeprefix("http://tingshuo.test")).data == \
        speech_wav


def test_history_off_keeps_nothing(app: Flask, client: FlaskClient, user: dict[str, Any],
                                   speech_wav: bytes) -> None:
    headers = _bearer(_key(client, user, history=False)["key"])
    before = _counts(app, user["id"])
    spoken = client.post("/v1/audio/speech", headers=headers, json={
        "model": "espeak", "voice": "espeak:en-us", "input": "Not kept."})
    heard = client.post("/v1/audio/transcriptions", headers=headers, data={
        "file": (io.BytesIO(speech_wav), "speech.wav"), "model": "whisper-1"})
    assert spoken.status_code == heard.status_code == 200 and len(spoken.data) > 1000
    assert "X-Session-Id" not in spoken.headers and heard.get_json()["text"]
    assert _counts(app, user["id"]) == before
    usage = client.get("/api/keys", headers=user["headers"]).get_json()["data"]["list"][0]
    assert usage["usage"]["characters"] == len("Not kept.")
    assert usage["usage"]["audio_seconds"] > 5


@engine_bound
def test_api_stt_gives_word_times_and_subtitles(client: FlaskClient, user: dict[str, Any],
                                                speech_wav: bytes) -> None:
    data = client.post("/api/stt", headers=user["headers"], data={
        "file": (io.BytesIO(speech_wav), "speech.wav"), "response_format": "verbose_json",
        "timestamp_granularities[]": "word"}).get_json()["data"]
    words = data["words"]
    assert len(words) >= 20 and "voice" in {w["word"].strip(".,").lower() for w in words}
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and all(
        0 <= w["start"] <= w["end"] <= data["duration"] for w in words)
    assert data["segments"][0]["words"][0] == {**words[0], "probability":
                                               data["segments"][0]["words"][0]["probability"]}
    cues = list(srt.parse(data["subtitles"]["srt"]))
    assert cues and " ".join(c.content for c in cues) == " ".join(
        s["text"] for s in data["segments"])
    vtt = webvtt.from_string(data["subtitles"]["vtt"])
    assert [c.text for c in vtt.captions] == [c.content for c in cues]
    as_srt = client.post("/api/stt", headers=user["headers"], data={
        "file": (io.BytesIO(speech_wav), "speech.wav"), "response_format": "srt"}
                         ).get_json()["data"]
    assert list(srt.parse(as_srt["content"]))
    plain = client.post("/api/stt", headers=user["headers"], data={
        "file": (io.BytesIO(speech_wav), "speech.wav")}).get_json()["data"]
    assert "words" not in plain and "words" not in plain["segments"][0]


def test_openapi_describes_keys_and_stt_options(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert {"post", "get"} <= set(spec["paths"]["/api/keys"])
    assert "delete" in spec["paths"]["/api/keys/{key_id}"]
    stt_form = spec["components"]["schemas"]["SttForm"]["properties"]
    assert {"response_format", "timestamp_granularities[]"} <= set(stt_form)
    assert not any(path.startswith("/v1") for path in spec["paths"])
    v1 = client.get("/v1/openapi.json").get_json()
    assert "/v1/audio/speech" in v1["paths"]

