"""Real-time conversations, with the server really running under eventlet and real
clients (python-socketio, websocket-client): streamed replies, voice input, interrupt,
isolation, bad frames, idle close, and two web processes sharing a room through Redis."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import socketio
import websocket

from tests.helpers.realtime import Recorder, User, iter_names
from tests.helpers.web_server import LiveServer
from webapp.app import audio

QUESTION = "Could you tell me something about the weather today?"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03").start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def spoken_question() -> bytes:
    from webapp.app.providers.base import SynthesisOptions
    from webapp.app.providers.tts.piper import PiperTextToSpeech

    chunk = PiperTextToSpeech({}).synthesize("What is your favourite colour?",
                                             SynthesisOptions())
    return audio.encode(chunk.pcm, chunk.sample_rate, "wav")


@pytest.fixture
def user(server: LiveServer) -> User:
    return User(server.url)


@pytest.fixture
def talker(server: LiveServer, user: User) -> Iterator[Recorder]:
    recorder = Recorder(server.url, user.token)
    yield recorder
    recorder.close()


def test_connect_without_token_is_refused(server: LiveServer) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        Recorder(server.url, None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        Recorder(server.url, "not-a-token")


def test_text_turn_streams_text_and_audio_before_the_reply_ends(
        server: LiveServer, user: User, talker: Recorder) -> None:
    joined = talker.join(user.role_id)
    session_id = joined["session_id"]
    assert joined["role"]["name"] == "Ada" and joined["audio_format"] == "mp3"
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "message": QUESTION, "type": "text",
                                 "response_type": 1})
    done = talker.wait_for("response_complete", 60, mark)
    events = talker.turn_events(mark)
    names = list(iter_names(events))
    assert names[0] == "ai_text_chunk"
    assert names.index("tts_audio_chunk_start") < names.index("tts_audio_chunk")
    assert names[-3:] == ["tts_audio_chunk_end", "chat_response", "response_complete"]
    text_times = [t for t, name, _ in events if name == "ai_text_chunk"]
    first_audio = next(t for t, name, _ in events if name == "tts_audio_chunk")
    assert first_audio < text_times[-1], "audio must start while the reply is still written"
    seqs = [data["seq"] for _, name, data in events if name == "tts_audio_chunk"]
    assert seqs == list(range(len(seqs))) and len(seqs) >= 2
    streamed = talker.audio(mark)
    end = talker.wait_for("tts_audio_chunk_end", 1, mark)
    assert audio.probe(streamed).duration == pytest.approx(end["duration"], abs=0.3)
    reply = talker.wait_for("chat_response", 1, mark)
    assert reply["type"] == "voice" and reply["format"] == "mp3"
    assert reply["message"] == end["audio_url"] and reply["session_id"] == session_id
    assert requests.get(reply["message"], timeout=10).status_code == 200
    assert "not a language model" in "".join(
        data["text"] for _, name, data in events if name == "ai_text_chunk")
    assert done["interrupted"] is False and done["message_id"] == reply["message_id"]
    history = user.call("GET", f"/api/sessions/{session_id}/messages")["data"]["list"]
    assert [(m["role"], m["type"]) for m in history] == [("user", "text"),
                                                          ("assistant", "voice")]
    timings = history[1]["metadata"]["timings"]
    assert 0 < timings["llm_first_token_ms"] < timings["first_audio_ms"] < timings["total_ms"]
    assert history[1]["audio_url"] and history[0]["text"] == QUESTION


def test_text_reply_has_no_audio(user: User, talker: Recorder) -> None:
    talker.join(user.role_id)
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "message": "你好", "type": "text",
                                 "response_type": 0})
    talker.wait_for("response_complete", 60, mark)
    names = set(iter_names(talker.turn_events(mark)))
    assert "tts_audio_chunk" not in names and "tts_audio_chunk_start" not in names
    reply = talker.wait_for("chat_response", 1, mark)
    assert reply["type"] == "text" and "不是语言模型" in reply["message"]


def test_pcm_stream_is_raw_samples(user: User, talker: Recorder) -> None:
    joined = talker.join(user.role_id, audio_format="pcm")
    assert joined["audio_format"] == "pcm"
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "message": "Hi there", "type": "text",
                                 "response_type": 1})
    talker.wait_for("response_complete", 60, mark)
    start = talker.wait_for("tts_audio_chunk_start", 1, mark)
    end = talker.wait_for("tts_audio_chunk_end", 1, mark)
    pcm = talker.audio(mark)
    assert start["format"] == "pcm" and start["sample_rate"] == 22050 and len(pcm) % 2 == 0
    assert len(pcm) / 2 / start["sample_rate"] == pytest.approx(end["duration"], abs=0.05)


def test_voice_message_base64_is_recognised_and_answered(
        user: User, talker: Recorder, spoken_question: bytes) -> None:
    talker.join(user.role_id)
    mark = len(talker.events)
    talker.emit("voice_message", {"role_id": user.role_id, "format": "wav",
                                  "audio": base64.b64encode(spoken_question).decode()})
    asr = talker.wait_for("asr_result", 60, mark)
    assert "colour" in asr["text"].lower() or "color" in asr["text"].lower(), asr
    talker.wait_for("response_complete", 60, mark)
    session_id = talker.wait_for("chat_response", 1, mark)["session_id"]
    first = user.call("GET", f"/api/sessions/{session_id}/messages")["data"]["list"][0]
    assert first["type"] == "voice" and first["transcription"] == asr["text"]
    assert first["audio_url"] and first["metadata"]["asr_ms"] > 0


def test_voice_url_must_be_an_own_upload(server: LiveServer, user: User, talker: Recorder,
                                         spoken_question: bytes) -> None:
    talker.join(user.role_id)
    own = user.upload(spoken_question)
    mark = len(talker.events)
    talker.emit("voice_message", {"role_id": user.role_id, "voice_url": own["url"],
                                  "format": "wav"})
    assert talker.wait_for("asr_result", 60, mark)["text"]
    talker.wait_for("response_complete", 60, mark)
    stranger = User(server.url)
    theirs = stranger.upload(spoken_question)
    for url, code in ((theirs["url"], 404), ("http://169.254.169.254/x.mp3", 400),
                      ("file:///etc/passwd", 400)):
        mark = len(talker.events)
        talker.emit("voice_message", {"role_id": user.role_id, "voice_url": url})
        assert talker.wait_for("error", 20, mark)["code"] == code


def test_voice_messages_over_60_seconds_are_refused(user: User, talker: Recorder) -> None:
    long = audio.encode(bytes(16000 * 2 * 61), 16000, "mp3")
    talker.join(user.role_id)
    mark = len(talker.events)
    talker.emit("voice_message", {"role_id": user.role_id,
                                  "audio": base64.b64encode(long).decode()})
    error = talker.wait_for("error", 30, mark)
    assert error["code"] == 400 and error["error_code"] == "AUDIO_TOO_LONG"


def test_interrupt_stops_the_reply_and_stores_what_was_sent(user: User,
                                                            talker: Recorder) -> None:
    talker.join(user.role_id)
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "type": "text", "response_type": 1,
                                 "message": QUESTION + " Please answer at length."})
    talker.wait_for("tts_audio_chunk", 60, mark)
    talker.emit("interrupt", {})
    end = talker.wait_for("tts_audio_chunk_end", 10, mark)
    done = talker.wait_for("response_complete", 10, mark)
    assert end["reason"] == "interrupted" and done["interrupted"] is True
    # The reply stops: no audio follows its end. How soon is a figure of `bench realtime`.
    names = talker.names(mark)
    assert "tts_audio_chunk" not in names[names.index("tts_audio_chunk_end"):]
    streamed = talker.audio(mark)
    assert audio.probe(streamed).duration == pytest.approx(end["duration"], abs=0.3)
    stored = user.call("GET", f"/api/messages/{done['message_id']}")["data"]
    assert stored["metadata"]["interrupted"] is True
    assert stored["duration"] == pytest.approx(end["duration"], abs=0.05)


def test_one_user_cannot_join_another_users_session(server: LiveServer, user: User,
                                                    talker: Recorder) -> None:
    session_id = talker.join(user.role_id)["session_id"]
    stranger = User(server.url)
    intruder = Recorder(server.url, stranger.token)
    try:
        mark = len(intruder.events)
        intruder.emit("join", {"role_id": user.role_id, "session_id": session_id})
        assert intruder.wait_for("error", 10, mark)["code"] == 404
        intruder.emit("chat_message", {"role_id": user.role_id, "message": "hi", "type": "text",
                                       "session_id": session_id})
        assert intruder.wait_for("error", 10, mark + 1)["code"] == 404
    finally:
        intruder.close()


@pytest.mark.parametrize("frame", ["just a string", 42, {"role_id": "abc", "message": "x"},
                                   {"role_id": 1, "message": None}, {"message": "no role"},
                                   {"role_id": 99999, "message": "hi", "type": "text"}])
def test_malformed_frames_get_an_error_and_the_socket_stays_usable(
        user: User, talker: Recorder, frame: Any) -> None:
    mark = len(talker.events)
    talker.emit("chat_message", frame)
    error = talker.wait_for("error", 10, mark)
    assert error["code"] in (400, 404) and error["error"]
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "message": "still there?",
                                 "type": "text", "response_type": 0})
    assert talker.wait_for("chat_response", 60, mark)["type"] == "text"


def test_join_is_acknowledged_and_still_announced(server: LiveServer, user: User,
                                                  talker: Recorder) -> None:
    mark = len(talker.events)
    ack = talker.client.call("join", {"role_id": user.role_id, "audio_format": "pcm"},
                             namespace="/chat", timeout=20)
    assert ack["role_id"] == user.role_id and ack["audio_format"] == "pcm"
    assert ack["role"]["name"] == "Ada" and ack["session_id"]
    assert talker.wait_for("joined", 10, mark) == ack, "old clients still get joined"
    again = talker.client.call("join", {"role_id": user.role_id,
                                        "session_id": ack["session_id"]},
                               namespace="/chat", timeout=20)
    assert again["session_id"] == ack["session_id"] and again["audio_format"] == "pcm"
    stranger = User(server.url)
    refused = talker.client.call("join", {"role_id": stranger.role_id}, namespace="/chat",
                                 timeout=20)
    assert refused["code"] == 404 and refused["error_code"] == "ROLE_NOT_FOUND"
    bad = talker.client.call("join", {"role_id": "first"}, namespace="/chat", timeout=20)
    assert bad["code"] == 400 and bad["error_code"] == "BAD_MESSAGE"
    assert "role_id" in bad["error"]


@pytest.mark.parametrize(("event", "frame", "named"), [
    ("join", {"role_id": -1}, "role_id"),
    ("join", {"role_id": 1, "audio_format": "ogg"}, "audio_format"),
    ("chat_message", {"role_id": 1, "message": "hi", "response_type": 9}, "response_type"),
    ("voice_message", {"role_id": 1}, "voice_url"),
    ("voice_message", {"role_id": 1, "audio": "%%%"}, "base64"),
    ("interrupt", "now", "session_id"),
    ("call_start", {"role_id": 1, "sample_rate": 12345}, "sample_rate"),
    ("call_end", [1], "JSON object"),
])
def test_each_events_bad_frame_says_which_field_and_the_socket_stays_usable(
        user: User, talker: Recorder, event: str, frame: Any, named: str) -> None:
    mark = len(talker.events)
    talker.emit(event, frame)
    error = talker.wait_for("error", 10, mark)
    assert error["code"] == 400 and error["error_code"] == "BAD_MESSAGE", error
    assert named in error["error"], error
    assert talker.join(user.role_id)["role_id"] == user.role_id


def test_concurrent_conversations_all_complete(server: LiveServer) -> None:
    users = [User(server.url) for _ in range(4)]
    clients = [Recorder(server.url, u.token) for u in users]
    try:
        for client, u in zip(clients, users, strict=True):
            client.join(u.role_id)
        for client, u in zip(clients, users, strict=True):
            client.emit("chat_message", {"role_id": u.role_id, "message": QUESTION,
                                         "type": "text", "response_type": 1})
        for client in clients:
            done = client.wait_for("response_complete", 90)
            assert done["interrupted"] is False
            assert client.audio(0)
    finally:
        for client in clients:
            client.close()


def test_memory_summary_is_updated_after_a_reply(user: User, talker: Recorder) -> None:
    session_id = talker.join(user.role_id)["session_id"]
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "message": "My name is Lin.",
                                 "type": "text", "response_type": 0})
    talker.wait_for("response_complete", 60, mark)
    deadline = time.time() + 20
    summary = ""
    while time.time() < deadline and "Lin" not in summary:
        summary = user.call("GET", f"/api/sessions/{session_id}")["data"]["summary"]
        time.sleep(0.3)
    assert "My name is Lin." in summary


def _ws(server: LiveServer, path: str, token: str | None, header: bool = True) -> Any:
    url = server.url.replace("http", "ws") + path
    if token and not header:
        return websocket.create_connection(f"{url}?token={token}", timeout=60)
    headers = [f"Authorization: Bearer {token}"] if token else []
    return websocket.create_connection(url, header=headers, timeout=60)


def test_plain_websocket_needs_a_token(server: LiveServer) -> None:
    for path in ("/api/ws/chat", "/api/ws/voice_chat"):
        with pytest.raises(websocket.WebSocketBadStatusException) as raised:
            _ws(server, path, None)
        assert raised.value.status_code == 401


def test_plain_websocket_chat_text_and_voice_replies(user: User, server: LiveServer) -> None:
    ws = _ws(server, "/api/ws/chat", user.token, header=False)
    try:
        ws.send(json.dumps({"role_id": user.role_id, "message": "你好", "type": "text",
                            "response_type": 0}))
        text = json.loads(ws.recv())
        assert text["type"] == "text" and text["role_id"] == user.role_id and text["message"]
        ws.send(json.dumps({"role_id": user.role_id, "message": "再说一句", "type": "text",
                            "response_type": 1}))
        voice = json.loads(ws.recv())
        assert voice["type"] == "voice" and voice["format"] == "mp3"
        assert voice["session_id"] == text["session_id"]
        fetched = requests.get(voice["message"], timeout=10)
        assert fetched.status_code == 200 and audio.probe(fetched.content).duration > 0.5
        ws.send(json.dumps({"role_id": user.role_id, "message": "随便", "type": "text",
                            "response_type": 2}))
        assert json.loads(ws.recv())["type"] in ("text", "voice")
    finally:
        ws.close()


def test_plain_websocket_errors_keep_the_connection(user: User, server: LiveServer) -> None:
    ws = _ws(server, "/api/ws/chat", user.token)
    try:
        for frame in ("{not json", json.dumps({"message": "no role"}),
                      json.dumps({"role_id": 99999, "message": "x", "type": "text"})):
            ws.send(frame)
            error = json.loads(ws.recv())
            assert set(error) == {"error", "code"} and error["code"] in (400, 404)
        ws.send(json.dumps({"role_id": user.role_id, "message": "x", "response_type": 7}))
        error = json.loads(ws.recv())
        assert error["code"] == 400 and "response_type" in error["error"], error
        ws.send(json.dumps({"role_id": user.role_id, "message": "ok", "type": "text",
                            "response_type": 0}))
        assert json.loads(ws.recv())["type"] == "text"
    finally:
        ws.close()


def test_plain_voice_chat_streams_chunks_with_a_final_one(user: User, server: LiveServer,
                                                          spoken_question: bytes) -> None:
    own = user.upload(spoken_question)
    ws = _ws(server, "/api/ws/voice_chat", user.token)
    try:
        ws.send(json.dumps({"role_id": user.role_id, "voice_url": own["url"], "format": "wav"}))
        frames = []
        while True:
            frame = json.loads(ws.recv())
            frames.append(frame)
            if frame["is_final"]:
                break
        assert all(f["type"] == "audio" and f["format"] == "mp3" for f in frames)
        assert len(frames) >= 3
        whole = b"".join(base64.b64decode(f["data"]) for f in frames)
        assert audio.probe(whole).duration > 1.0
        ws.send(json.dumps({"role_id": user.role_id}))
        error = json.loads(ws.recv())
        assert error["type"] == "error" and error["is_final"] is True and error["data"]
        ws.send(json.dumps({"role_id": user.role_id, "voice_url": "https://example.com/a.mp3"}))
        assert json.loads(ws.recv())["type"] == "error"
        for frame in ("{not json", "[1, 2]", json.dumps({"role_id": 99999, "voice_url": "x"}),
                      json.dumps({"role_id": user.role_id, "audio": "%%%"})):
            ws.send(frame)
            error = json.loads(ws.recv())
            assert set(error) == {"type", "data", "format", "is_final"}
            assert error["type"] == "error" and error["format"] == "" and error["is_final"]
            assert isinstance(error["data"], str) and error["data"]
        # The speech itself (base64), as voice_message takes it, is answered too.
        ws.send(json.dumps({"role_id": user.role_id,
                            "audio": base64.b64encode(spoken_question).decode()}))
        inline = [json.loads(ws.recv())]
        while not inline[-1]["is_final"]:
            inline.append(json.loads(ws.recv()))
        assert {f["type"] for f in inline} == {"audio"} and len(inline) >= 3
    finally:
        ws.close()


def test_a_private_role_is_talked_to_only_by_its_owner(server: LiveServer, user: User,
                                                       spoken_question: bytes) -> None:
    stranger = User(server.url)
    intruder = Recorder(server.url, stranger.token)
    ws = _ws(server, "/api/ws/chat", stranger.token)
    voice_ws = _ws(server, "/api/ws/voice_chat", stranger.token)
    try:
        mark = len(intruder.events)
        intruder.emit("join", {"role_id": user.role_id})
        assert intruder.wait_for("error", 10, mark)["code"] == 404
        ws.send(json.dumps({"role_id": user.role_id, "message": "hi", "type": "text"}))
        assert json.loads(ws.recv())["code"] == 404
        own = stranger.upload(spoken_question)
        voice_ws.send(json.dumps({"role_id": user.role_id, "voice_url": own["url"]}))
        assert json.loads(voice_ws.recv())["type"] == "error"
        user.call("PUT", f"/api/role/{user.role_id}", json={"is_public": True})
        assert intruder.join(user.role_id)["role_id"] == user.role_id
        ws.send(json.dumps({"role_id": user.role_id, "message": "hi", "type": "text"}))
        assert json.loads(ws.recv())["type"] == "text"
    finally:
        intruder.close()
        ws.close()
        voice_ws.close()


def test_idle_connections_are_closed() -> None:
    live = LiveServer(CHAT_IDLE_SECONDS="2").start()
    try:
        u = User(live.url)
        ws = _ws(live, "/api/ws/chat", u.token)
        started = time.time()
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while time.time() - started < 15:
                ws.recv()
        assert time.time() - started < 10
        client = Recorder(live.url, u.token)
        client.wait_for("disconnect", 15)
        assert any(name == "error" and data["code"] == 408 for _, name, data in client.events)
    finally:
        live.stop()


def test_two_web_processes_share_a_room_through_redis(production_stack: Any) -> None:
    u = User(production_stack.url)
    watcher = Recorder(production_stack.url, u.token)
    speaker = Recorder(production_stack.url_b, u.token)
    try:
        session_id = watcher.join(u.role_id)["session_id"]
        speaker.join(u.role_id, session_id=session_id)
        mark = len(watcher.events)
        speaker.emit("chat_message", {"role_id": u.role_id, "message": QUESTION, "type": "text",
                                      "response_type": 1})
        done = watcher.wait_for("response_complete", 60, mark)
        names = list(iter_names(watcher.turn_events(mark)))
        assert "ai_text_chunk" in names and "tts_audio_chunk" in names
        assert done["session_id"] == session_id
        assert audio.probe(watcher.audio(mark)).duration > 0.5
    finally:
        watcher.close()
        speaker.close()


def test_barge_in_from_another_thread_keeps_order(user: User, talker: Recorder) -> None:
    talker.join(user.role_id)
    mark = len(talker.events)
    talker.emit("chat_message", {"role_id": user.role_id, "message": QUESTION, "type": "text",
                                 "response_type": 1})
    talker.wait_for("tts_audio_chunk", 60, mark)
    thread = threading.Thread(target=talker.emit, args=("chat_message", {
        "role_id": user.role_id, "message": "Stop, new question.", "type": "text",
        "response_type": 1}))
    thread.start()
    thread.join()
    first_end = talker.wait_for("tts_audio_chunk_end", 10, mark)
    assert first_end["reason"] == "interrupted"
    completes = []
    deadline = time.time() + 60
    while len(completes) < 2 and time.time() < deadline:
        completes = [d for _, n, d in talker.events[mark:] if n == "response_complete"]
        time.sleep(0.1)
    assert [c["interrupted"] for c in completes] == [True, False]
