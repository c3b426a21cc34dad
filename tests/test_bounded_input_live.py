"""The hostile corpus against ``wsgi.py`` under eventlet, on every transport: each file
answered with a 4xx, the server's resident memory growing less than 100 MB over all of
it, nothing stored, and another user's call going on unharmed. Frames too big for a
socket, call audio faster than speech, a second decode on one socket, and another
user's session named on the sockets."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import websocket

from tests.helpers import hostile_audio
from tests.helpers.call_client import Caller
from tests.helpers.hostile_clients import FITS_A_FRAME, Attacker, resident_mb
from tests.helpers.realtime import Recorder, User
from tests.helpers.sounds import RATE, speech, tone
from tests.helpers.web_server import LiveServer


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(SCRIPTED_LLM_DELAY="0.02", CALL_IDLE_SECONDS="120").start()
    yield live
    live.stop()


def _stored(server: LiveServer) -> tuple[int, int, int]:
    with sqlite3.connect(server.work / "tingshuo.db") as db:
        rows = tuple(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                     for table in ("files", "messages", "voices"))
    objects = [p for p in Path(server.work / "storage").rglob("*")
               if p.is_file() and "health" not in p.parts]
    return (*rows[:2], rows[2] + len(objects))


def test_the_corpus_is_refused_everywhere_within_bounded_memory(server: LiveServer) -> None:
    pid = server.process.popen.pid
    honest = User(server.url)
    caller = Caller(server.url, honest.token)
    attacker = Attacker(server.url)
    try:
        assert "sample_rate" in caller.start(honest.role_id, language="en")
        # Warm every route once with real audio, so what follows measures the corpus.
        attacker.rest("ok.wav", tone(1.0, "wav"), clone=False)
        stored = _stored(server)
        baseline = peak = resident_mb(pid)
        answers: dict[str, dict[str, int]] = {}
        for item in hostile_audio.corpus():
            answers[item.name] = attacker.rest(f"{item.name}.wav", item.data)
            if len(item.data) <= FITS_A_FRAME:
                answers[item.name].update(attacker.sockets(item.data))
            peak = max(peak, resident_mb(pid))
        for name, by_route in answers.items():
            for route, status in by_route.items():
                assert status in (400, 413, 415), (name, route, status)
        assert peak - baseline < 100, (baseline, peak)
        assert _stored(server) == stored
        # The honest caller's call went on through all of it and still answers.
        mark = len(caller.events)
        caller.say(speech("What is your favourite colour?"))
        assert caller.wait_for("response_complete", 90, mark)
        assert "call_ended" not in caller.names()
    finally:
        caller.close()
        attacker.close()


def test_a_28_mb_websocket_frame_is_refused_while_it_arrives(server: LiveServer) -> None:
    pid = server.process.popen.pid
    attacker = Attacker(server.url)
    try:
        before = resident_mb(pid)
        assert attacker.huge_frame().startswith("closed")
        assert resident_mb(pid) - before < 20
        # The user's other sockets and new ones work as before.
        ws = websocket.create_connection(server.url.replace("http://", "ws://")
                                         + f"/api/ws/chat?token={attacker.user.token}",
                                         timeout=60)
        ws.send(json.dumps({"role_id": attacker.user.role_id, "message": "hi", "type": "text",
                            "response_type": 0}))
        assert json.loads(ws.recv())["message"]
        ws.close()
        # Socket.IO: engine.io's own cap, set from the same setting, drops the connection.
        talker = Recorder(server.url, attacker.user.token)
        mark = len(talker.events)
        talker.emit("voice_message", {"role_id": attacker.user.role_id,
                                      "audio": "A" * 1_500_000})
        talker.wait_for("disconnect", 30, mark)
        assert resident_mb(pid) - before < 40
    finally:
        attacker.close()


@pytest.mark.parametrize("use_websocket", [False, True])
def test_call_audio_faster_than_speech_ends_the_call(server: LiveServer,
                                                     use_websocket: bool) -> None:
    user = User(server.url)
    caller = Caller(server.url, user.token, use_websocket=use_websocket)
    try:
        assert "sample_rate" in caller.start(user.role_id, language="en")
        caller.hung_up.set()  # the microphone thread stays quiet: this test sends itself
        piece = bytes(RATE * 2 // 5)  # 200 ms
        mark = len(caller.events)
        for _ in range(100):  # 20 s of audio, as fast as the socket takes it
            if caller.names(mark).count("error"):
                break
            caller.send("call_audio", piece)
        error = caller.wait_for("error", 30, mark)
        assert error["code"] == 400 and error["error_code"] == "AUDIO_TOO_FAST"
        ended = caller.wait_for("call_ended", 30, mark)
        assert ended["reason"] == "too_fast"
    finally:
        caller.close()


def test_one_decode_per_socket(server: LiveServer) -> None:
    """A voice message sent while the previous one is still being read is refused; the
    first goes on to its reply."""
    user = User(server.url)
    talker = Recorder(server.url, user.token)
    try:
        talker.join(user.role_id)
        first = base64.b64encode(tone(55.0, "opus")).decode()
        second = base64.b64encode(tone(2.0, "wav")).decode()
        mark = len(talker.events)
        talker.emit("voice_message", {"role_id": user.role_id, "audio": first})
        talker.emit("voice_message", {"role_id": user.role_id, "audio": second})
        error = talker.wait_for("error", 60, mark)
        assert error["error_code"] == "VOICE_MESSAGE_BUSY"
        # The first message was read: its turn goes on (a tone says nothing, so it ends
        # with the recogniser's answer or an error of its own, not a busy one).
        talker.wait_for(("asr_result", "error"), 120, mark,
                        where=lambda data: data.get("error_code") != "VOICE_MESSAGE_BUSY")
        assert [data.get("error_code") for _, name, data in talker.events[mark:]
                if name == "error"].count("VOICE_MESSAGE_BUSY") == 1
    finally:
        talker.close()


def test_another_users_session_cannot_be_joined_or_spoken_into(server: LiveServer) -> None:
    """Every Socket.IO event that names a session (join, chat and voice messages, a call)
    refuses one that belongs to someone else, and its owner's room hears nothing."""
    owner, stranger = User(server.url), User(server.url)
    listener = Recorder(server.url, owner.token)
    intruder = Recorder(server.url, stranger.token)
    caller = Caller(server.url, stranger.token)
    try:
        session_id = listener.join(owner.role_id)["session_id"]
        heard = len(listener.events)
        cases = [("join", {"role_id": stranger.role_id, "session_id": session_id}),
                 ("chat_message", {"role_id": stranger.role_id, "message": "hi", "type": "text",
                                   "session_id": session_id}),
                 ("voice_message", {"role_id": stranger.role_id, "session_id": session_id,
                                    "audio": base64.b64encode(tone(1.0, "wav")).decode()})]
        for event, payload in cases:
            mark = len(intruder.events)
            intruder.emit(event, payload)
            assert intruder.wait_for("error", 30, mark)["code"] == 404, event
        answer = caller.start(stranger.role_id, session_id=session_id)
        assert answer["code"] == 404
        time.sleep(1.0)
        assert listener.names(heard) == []
    finally:
        listener.close()
        intruder.close()
        caller.close()
