"""What the real-time transports accept: each event's schema (the same for Socket.IO and
the plain WebSockets), the messages a bad frame gets, and the one event sink that tells
a chat turn and a call turn alike."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from webapp.app.api import ApiError
from webapp.app.services.conversation.calls import CallOptions, ReplyOutput
from webapp.app.services.conversation.reply_events import ReplyEvents
from webapp.app.sockets import schemas


def refused(event: str, data: Any, lang: str = "en", **defaults: Any) -> str:
    with pytest.raises(ApiError) as caught:
        schemas.load(event, data, lang, **defaults)
    error = caught.value
    assert (error.status, error.code) == (400, "BAD_MESSAGE")
    return error.params["detail"]


def test_join_takes_a_role_and_optionally_a_session_and_a_format() -> None:
    assert schemas.load("join", {"role_id": "7", "session_id": "", "extra": 1}, "en") == {
        "role_id": 7, "session_id": None, "audio_format": "mp3"}
    assert schemas.load("join", {"role_id": 7}, "en", audio_format="pcm")["audio_format"] == "pcm"
    assert schemas.load("join", {"role_id": 7, "audio_format": "mp3"}, "en",
                        audio_format="pcm")["audio_format"] == "mp3"


@pytest.mark.parametrize(("data", "names"), [
    ("just a string", "role_id, session_id?, audio_format?"),
    ({"role_id": "abc"}, "role_id"),
    ({"role_id": 2**70}, "role_id"),
    ({"role_id": True}, "role_id"),
    ({"role_id": 3, "session_id": {"x": 1}}, "session_id"),
    ({"role_id": 3, "session_id": "\udc00"}, "session_id"),
    ({"role_id": 3, "session_id": "x" * 65}, "session_id"),
    ({"role_id": 3, "audio_format": "ogg"}, "audio_format"),
    ({}, "role_id"),
])
def test_a_bad_join_names_what_is_wrong(data: Any, names: str) -> None:
    assert names in refused("join", data)


def test_messages_follow_the_clients_language() -> None:
    assert refused("join", {}, "en") == "Missing required field role_id"
    assert refused("join", {}, "zh") == "缺少必填字段 role_id"
    assert refused("join", {"role_id": "x"}, "zh") == "role_id 必须是整数"


def test_chat_message_defaults_come_from_the_transport() -> None:
    frame = schemas.load("chat_message", {"message": "hi"}, "en", role_id=4)
    assert frame == {"role_id": 4, "message": "hi", "type": "text", "response_type": 1,
                     "session_id": None}
    plain = schemas.load("chat_message", {"role_id": 4, "message": "hi", "format": "mp3"}, "en",
                         response_type=0)
    assert plain["response_type"] == 0
    assert schemas.load("chat_message", {"role_id": 9, "message": "u", "type": "voice",
                                         "response_type": "2"}, "en", role_id=4)["role_id"] == 9
    # No role known to the connection and none in the frame.
    assert "role_id" in refused("chat_message", {"message": "hi"}, role_id=None)


@pytest.mark.parametrize(("data", "names"), [
    ({"role_id": 1, "message": None}, "message"),
    ({"role_id": 1, "message": 5}, "message"),
    ({"role_id": 1, "message": "a\ud800b"}, "surrogate"),
    ({"role_id": 1, "message": "x", "type": "image"}, "type"),
    ({"role_id": 1, "message": "x", "response_type": 3}, "response_type"),
    ({"role_id": 1, "message": "x", "response_type": 1.5}, "response_type"),
])
def test_a_bad_chat_message_names_what_is_wrong(data: Any, names: str) -> None:
    assert names in refused("chat_message", data)


def test_voice_message_takes_a_url_or_inline_audio() -> None:
    wav = b"RIFF....WAVE"
    inline = schemas.load("voice_message", {
        "role_id": 1, "audio": "data:audio/wav;base64," + base64.b64encode(wav).decode()}, "en")
    assert inline["audio"] == wav and inline["voice_url"] is None
    by_url = schemas.load("voice_message", {"role_id": 1, "voice_url": "/uploads/a.wav"}, "en")
    assert by_url["voice_url"] == "/uploads/a.wav" and by_url["audio"] is None
    assert "voice_url or audio" in refused("voice_message", {"role_id": 1})
    assert "voice_url or audio" in refused("voice_message", {"role_id": 1, "audio": ""})
    assert refused("voice_message", {"role_id": 1, "audio": "not base64!"}) == \
        "audio: not base64"


def test_interrupt_and_call_end_may_come_without_a_payload() -> None:
    assert schemas.load("interrupt", None, "en") == {"session_id": None}
    assert schemas.load("call_end", None, "en") == {}
    assert "session_id" in refused("interrupt", "stop")
    assert refused("call_end", [1]).startswith("expected a JSON object")


def test_call_start_becomes_the_calls_options() -> None:
    options = schemas.load("call_start", {"role_id": "5", "language": "en",
                                          "sample_rate": 48000}, "en", audio_format="pcm")
    assert options == CallOptions(role_id=5, session_id=None, sample_rate=48000,
                                  language="en", audio_format="pcm")
    assert schemas.load("call_start", {"role_id": 5, "language": ""}, "en").language is None
    assert "sample_rate" in refused("call_start", {"role_id": 5, "sample_rate": 12345})
    assert "sample_rate" in refused("call_start", {"role_id": 5, "sample_rate": "16000"})
    assert "language" in refused("call_start", {"role_id": 5, "language": "x" * 17})
    assert "audio_format" in refused("call_start", {"role_id": 5, "audio_format": "wav"})
    assert schemas.load("call_start", {"role_id": 5, "noise_reduction": "far_field"},
                        "en").noise_reduction == "far_field"
    assert "noise_reduction" in refused("call_start", {"role_id": 5, "noise_reduction": "on"})


def test_a_plain_websocket_call_frame_names_its_event() -> None:
    assert schemas.load("call_event", {"type": "call_end"}, "en") == {"type": "call_end"}
    assert "type" in refused("call_event", {"type": "call_audio"})
    assert "type" in refused("call_event", {"role_id": 1})
    with pytest.raises(ApiError) as caught:
        schemas.decode("{not json")
    assert caught.value.code == "BAD_MESSAGE"


def _recorded() -> tuple[list[tuple[str, dict[str, Any]]], Any]:
    sent: list[tuple[str, dict[str, Any]]] = []
    return sent, lambda event, payload: sent.append((event, payload))


def test_every_reply_event_names_the_session_current_when_it_is_sent() -> None:
    sent, emit = _recorded()
    sink = ReplyEvents(emit, "")
    sink.session_id = "s-1"  # the turn was prepared and got its session
    sink.asr_result("hello")
    sink.text_chunk("Hi")
    sink.audio_start("pcm", 22050, "m-1")
    sink.audio_chunk(b"\x01\x02")
    sink.audio_end("http://h/a.mp3", 0.5, None)
    sink.reply({"message_id": "m-1"})
    sink.complete({"message_id": "m-1", "user_message_id": "u-1"})
    assert [event for event, _ in sent] == [
        "asr_result", "ai_text_chunk", "tts_audio_chunk_start", "tts_audio_chunk",
        "tts_audio_chunk_end", "chat_response", "response_complete"]
    assert {payload["session_id"] for _, payload in sent} == {"s-1"}
    assert sent[3][1]["audio_data"] == base64.b64encode(b"\x01\x02").decode()
    assert sent[4][1]["chunks"] == 1 and "reason" not in sent[4][1]


def test_a_reply_cut_before_its_audio_still_ends_the_audio_stream() -> None:
    sent, emit = _recorded()
    ReplyEvents(emit, "s-2").audio_end(None, 0.0, "interrupted")
    assert sent == [("tts_audio_chunk_end", {"audio_url": None, "duration": 0.0, "chunks": 0,
                                             "reason": "interrupted", "session_id": "s-2"})]


def test_a_calls_reply_is_the_same_sink_paced_to_playback() -> None:
    sent, emit = _recorded()
    cancel = threading.Event()
    output = ReplyOutput(emit, "s-3", lead=0.4, cancel=cancel)
    assert isinstance(output, ReplyEvents)
    output.text_chunk("Hi")
    assert output.pace(0.2) and output.pace(0.2) and output.sent == pytest.approx(0.4)
    cancel.set()
    assert output.pace(0.2) is False
    assert sent == [("ai_text_chunk", {"text": "Hi", "session_id": "s-3"})]
