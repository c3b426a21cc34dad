"""A voice turn works on the audio it already holds: the upload is decoded once and
recognised from those samples, stored beside the recognition and never read back; the
reply is encoded once, as it streams, and those very bytes are stored. Voice chat works
with every recogniser the service offers, whichever form of input it takes."""

from __future__ import annotations

import base64
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests.fakes.fake_dashscope import DEFAULT_ASR_TEXT
from tests.helpers.stacks import dashscope_settings
from webapp.app import audio
from webapp.app.extensions import db, socketio
from webapp.app.models import File
from webapp.app.providers.base import Transcription
from webapp.app.services.conversation import turns

NAMESPACE = "/chat"
DECODERS = ("probe", "decode_pcm", "probe_and_decode")


def _counting(counts: Counter[str], key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[key] += 1
        return fn(*args, **kwargs)

    return counted


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every decode and encode of audio, wherever a module imported the function from."""
    tally: Counter[str] = Counter()
    for name in (*DECODERS, "encode"):
        original = getattr(audio, name, None)
        if original is None:
            continue
        counted = _counting(tally, "decode" if name in DECODERS else "encode", original)
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("webapp.") \
                    and getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counted)
    init = audio.StreamEncoder.__init__

    def encoder_init(self: audio.StreamEncoder, *args: Any, **kwargs: Any) -> None:
        tally["stream_encoder"] += 1
        init(self, *args, **kwargs)

    monkeypatch.setattr(audio.StreamEncoder, "__init__", encoder_init)
    return tally


def _count_storage(app: Flask, counts: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    store = app.extensions["storage"]
    for name in ("get", "put"):
        monkeypatch.setattr(store, name, _counting(counts, f"storage_{name}", getattr(store, name)))


def _role(client: Any, headers: dict[str, str]) -> int:
    body = client.post("/api/role/add", headers=headers, json={
        "name": "Ada", "description": "A patient teacher.", "gender": "女", "age": 36,
        "voice_type": "piper:en_US-joe-medium"}).get_json()
    return body["data"]["role_id"]


def _talk(app: Flask, user: dict[str, Any], event: str, payload: dict[str, Any],
          timeout: float = 120, fails: bool = False) -> dict[str, list[Any]]:
    """Send one event on ``/chat`` and collect what comes back until the turn ends (or,
    with ``fails``, until it fails)."""
    talker = socketio.test_client(app, namespace=NAMESPACE, auth={"token": user["access_token"]})
    assert talker.is_connected(NAMESPACE)
    talker.emit(event, payload, namespace=NAMESPACE)
    received: dict[str, list[Any]] = {}
    deadline = time.time() + timeout
    while time.time() < deadline:
        for packet in talker.get_received(NAMESPACE):
            received.setdefault(packet["name"], []).append(packet["args"][0])
        if "response_complete" in received or "error" in received:
            break
        time.sleep(0.05)
    talker.disconnect(namespace=NAMESPACE)
    if fails:
        assert "error" in received and "response_complete" not in received, sorted(received)
        return received
    assert "error" not in received, received["error"]
    assert "response_complete" in received, sorted(received)
    return received


def _history(client: Any, user: dict[str, Any], session_id: str) -> list[dict[str, Any]]:
    return client.get(f"/api/sessions/{session_id}/messages",
                      headers=user["headers"]).get_json()["data"]["list"]


def _streamed(received: dict[str, list[Any]]) -> bytes:
    return b"".join(base64.b64decode(chunk["audio_data"])
                    for chunk in received.get("tts_audio_chunk", []))


def test_an_uploaded_voice_turn_decodes_once_and_never_reads_storage_back(
        app: Flask, client: Any, user: dict[str, Any], speech_wav: bytes,
        counts: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    role_id = _role(client, user["headers"])
    _count_storage(app, counts, monkeypatch)
    received = _talk(app, user, "voice_message", {
        "role_id": role_id, "format": "wav", "audio": base64.b64encode(speech_wav).decode()})
    assert "voice" in received["asr_result"][0]["text"].lower()
    assert counts == {"decode": 1, "stream_encoder": 1, "storage_put": 2}, counts
    session_id = received["chat_response"][0]["session_id"]
    said, reply = _history(client, user, session_id)
    assert said["type"] == "voice" and said["audio_url"]
    stored = client.get(reply["audio_url"].removeprefix(app.config["BASE_URL"])).data
    assert stored == _streamed(received), "the reply is stored as it was streamed"
    assert audio.probe(stored).format == "mp3"


def test_a_voice_turn_on_a_stored_file_reads_it_once(
        app: Flask, client: Any, user: dict[str, Any], speech_wav: bytes,
        counts: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    role_id = _role(client, user["headers"])
    url = client.post("/api/upload_voice", headers=user["headers"], data={
        "file": (io.BytesIO(speech_wav), "question.wav")}).get_json()["data"]["url"]
    counts.clear()
    _count_storage(app, counts, monkeypatch)
    received = _talk(app, user, "voice_message", {"role_id": role_id, "voice_url": url})
    assert "voice" in received["asr_result"][0]["text"].lower()
    assert counts == {"storage_get": 1, "decode": 1, "stream_encoder": 1, "storage_put": 1}, counts


def test_a_call_turn_stores_the_speech_it_heard_without_decoding_it(
        app: Flask, client: Any, user: dict[str, Any], speech_wav: bytes,
        counts: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
    role_id = _role(client, user["headers"])
    pcm = audio.decode_pcm(speech_wav, 16000)
    counts.clear()
    _count_storage(app, counts, monkeypatch)
    events: list[str] = []

    class Sink:
        """Notes each step of the turn; unpaced, so it is sent audio at once."""

        paced = False

        def pace(self, seconds: float) -> bool:
            return True

        def heard_seconds(self) -> float | None:
            return None

        def __getattr__(self, name: str) -> Callable[..., None]:
            return lambda *args: events.append(name)

    with app.app_context():
        request = turns.TurnRequest(
            user_id=user["id"], role_id=role_id, pcm=pcm,
            recognised=Transcription("What is your favourite colour?", "en"))
        done = turns.run_turn(request, Sink())  # type: ignore[arg-type]
    assert events[0] == "asr_result" and events[-1] == "complete"
    # The one encode is the WAV header the call's samples are stored under.
    assert counts == {"encode": 1, "stream_encoder": 1, "storage_put": 2}, counts
    said = _history(client, user, done["session_id"])[0]
    assert said["transcription"] == "What is your favourite colour?" and said["audio_url"]


@pytest.fixture
def served(app_factory: Callable[..., Flask], fake_dashscope: Any
           ) -> Iterator[Callable[[str], Flask]]:
    """An app with DashScope (the local stand-in) that also answers on a real port, so
    a provider that fetches the audio itself (Qwen-Audio) can reach its signed URLs."""
    servers: list[Any] = []

    def make(stt_engine: str) -> Flask:
        app = app_factory(**dashscope_settings(fake_dashscope), STT_ENGINE=stt_engine)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        app.config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return app

    yield make
    for server in servers:
        server.shutdown()


def _register(client: Any) -> dict[str, Any]:
    body = client.post("/api/auth/register", json={
        "username": f"u{uuid.uuid4().hex[:10]}", "password": "s3cret-pass"}).get_json()
    return {**body["data"], "id": body["data"]["user"]["id"],
            "headers": {"Authorization": f"Bearer {body['data']['access_token']}"}}


@pytest.mark.parametrize("engine", ["whisper", "paraformer", "qwen-audio"])
def test_voice_chat_with_each_recogniser(served: Callable[[str], Flask], speech_wav: bytes,
                                         engine: str) -> None:
    app = served(engine)
    client = app.test_client()
    user = _register(client)
    role_id = _role(client, user["headers"])
    received = _talk(app, user, "voice_message", {
        "role_id": role_id, "format": "wav", "audio": base64.b64encode(speech_wav).decode()})
    heard = received["asr_result"][0]["text"]
    if engine == "whisper":
        assert "voice" in heard.lower()
    else:
        assert heard == DEFAULT_ASR_TEXT
    said = _history(client, user, received["chat_response"][0]["session_id"])[0]
    assert said["transcription"] == heard and said["metadata"]["asr"] == engine
    assert said["audio_url"]


@pytest.mark.parametrize("engine", ["whisper", "paraformer", "qwen-audio"])
def test_a_failed_voice_turn_leaves_no_file_and_no_row(
        served: Callable[[str], Flask], fake_dashscope: Any, speech_wav: bytes,
        tmp_path: Path, engine: str) -> None:
    """Whisper hears nothing in silence; the DashScope recognisers fail outright (Qwen-Audio
    after its audio was stored for it to fetch)."""
    app = served(engine)
    client = app.test_client()
    user = _register(client)
    role_id = _role(client, user["headers"])
    sent = speech_wav
    if engine == "whisper":
        sent = audio.encode(bytes(16000 * 2 * 2), 16000, "wav")
    else:
        fake_dashscope.control("task_failed", count=1,
                               kinds=["asr" if engine == "paraformer" else "multimodal"])
    received = _talk(app, user, "voice_message", {
        "role_id": role_id, "format": "wav", "audio": base64.b64encode(sent).decode()},
        fails=True)
    assert received["error"][0]["code"] in (400, 502, 503), received["error"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(File)) == 0
    assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
