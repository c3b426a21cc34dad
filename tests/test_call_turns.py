"""End of turn by meaning, on recorded human speech (``tests/data/speech``) streamed into
a call at real-time pace against the real server under eventlet: a caller who pauses
mid-sentence keeps the turn, a finished answer ends at the short silence, and noise
mixed in (other people talking, a fan, music, at 10–15 dB SNR) changes neither."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.helpers import recordings
from tests.helpers.call_client import Caller
from tests.helpers.realtime import User
from tests.helpers.sounds import silence
from tests.helpers.web_server import LiveServer

END_SILENCE_MS = 400
UNFINISHED_SILENCE_MS = 2000
# English and Mandarin with a pause inside a sentence lengthened to what a person thinking
# aloud makes (0.9–1.2 s): after "but the fantasy," and after "…感染，". The English pause
# after "…of his life." stays as spoken (0.35 s): that sentence is finished, so a longer
# pause there may rightly end the turn.
PAUSED = {
    "en": ("en-librispeech-1995-1837-0001", {1: 1.2}, ("sorrow", "dreams")),
    "zh": ("zh-wenet-long", {0: 0.9}, ("印度", "产量")),
}


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="30",
                      CALL_END_SILENCE_MS=str(END_SILENCE_MS),
                      CALL_UNFINISHED_SILENCE_MS=str(UNFINISHED_SILENCE_MS)).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def hurried_server() -> Iterator[LiveServer]:
    """Every pause's read comes too late for its verdict: how it sounds judges alone."""
    live = LiveServer(SCRIPTED_LLM_DELAY="0.03", CALL_IDLE_SECONDS="30",
                      CALL_END_SILENCE_MS=str(END_SILENCE_MS),
                      CALL_UNFINISHED_SILENCE_MS=str(UNFINISHED_SILENCE_MS),
                      CALL_JUDGE_WORDS_MS="0").start()
    yield live
    live.stop()


@pytest.fixture
def user(server: LiveServer) -> User:
    return User(server.url)


@pytest.fixture
def caller(server: LiveServer, user: User) -> Iterator[Caller]:
    client = Caller(server.url, user.token)
    yield client
    client.close()


def turn_states(caller: Caller, mark: int) -> list[str]:
    return [d["state"] for _, n, d in caller.events[mark:] if n == "vad"]


def verdicts(server: LiveServer, session_id: str) -> list[int]:
    """The silence (ms) each judged pause of the session was given, in order."""
    found = re.findall(rf"pause \d+ in session {session_id} judged: (\d+) ms",
                       server.log.read_text())
    return [int(ms) for ms in found]


def answered(caller: Caller, mark: int) -> None:
    """Wait until the turn is answered (its reply's audio begins), then hang up: the
    reply itself is not what these tests are about."""
    caller.wait_for("tts_audio_chunk_start", 120, mark)
    caller.end()
    caller.wait_for("call_ended", 60, mark)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_sentence_with_pauses_stays_one_turn(server: LiveServer, user: User,
                                               caller: Caller, language: str) -> None:
    name, pauses, words = PAUSED[language]
    session_id = caller.start(user.role_id, language=language)["session_id"]
    mark = len(caller.events)
    caller.say(recordings.with_pauses(name, pauses), then_silence=0.5)
    answered(caller, mark)
    assert turn_states(caller, mark) == ["speech_start", "speech_end"], \
        "every pause kept the turn"
    assert caller.names(mark).count("asr_result") == 1
    heard = caller.wait_for("asr_result", 1, mark)["text"].lower()
    assert all(word in heard for word in words), heard
    # The mid-sentence pauses were judged (and kept the turn), then the end was.
    assert len(verdicts(server, session_id)) >= 2


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_sentence_with_pauses_stays_one_turn_when_its_words_are_late(
        hurried_server: LiveServer, language: str) -> None:
    user = User(hurried_server.url)
    caller = Caller(hurried_server.url, user.token)
    try:
        name, pauses, words = PAUSED[language]
        session_id = caller.start(user.role_id, language=language)["session_id"]
        mark = len(caller.events)
        caller.say(recordings.with_pauses(name, pauses), then_silence=0.5)
        answered(caller, mark)
        assert turn_states(caller, mark) == ["speech_start", "speech_end"]
        heard = caller.wait_for("asr_result", 1, mark)["text"].lower()
        assert all(word in heard for word in words), heard
        log = hurried_server.log.read_text()
        assert f"in session {session_id}: its words are late, judged by how it sounds" in log
        assert len(verdicts(hurried_server, session_id)) >= 2
    finally:
        caller.close()


def test_a_finished_answer_ends_at_the_short_silence(server: LiveServer, user: User,
                                                     caller: Caller) -> None:
    # "Ask what you can do for your country." — Smart Turn hears it finished (0.97).
    answer = recordings.excerpt("en-jfk-ask-not", 7.9)
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    caller.say(answer, then_silence=0.5)
    answered(caller, mark)
    assert turn_states(caller, mark) == ["speech_start", "speech_end"]
    assert "country" in caller.wait_for("asr_result", 1, mark)["text"].lower()
    assert verdicts(server, session_id)[-1] == END_SILENCE_MS


def test_an_unfinished_clause_waits_for_the_rest(server: LiveServer, user: User,
                                                 caller: Caller) -> None:
    # "…the loss of the cotton itself but the fantasy," then nothing: it sounds unfinished,
    # so the turn ends only after a long silence, and is still answered.
    unfinished = recordings.excerpt("en-librispeech-1995-1837-0001", 2.75, 6.56)
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    caller.say(unfinished, then_silence=2 * UNFINISHED_SILENCE_MS / 1000)
    answered(caller, mark)
    assert turn_states(caller, mark) == ["speech_start", "speech_end"]
    assert verdicts(server, session_id)[-1] > END_SILENCE_MS


@pytest.mark.parametrize("noise", ["babble", "fan", "music"])
def test_noise_mixed_in_keeps_one_turn(server: LiveServer, user: User, caller: Caller,
                                      noise: str) -> None:
    name, pauses, words = PAUSED["en"]
    spoken = recordings.with_pauses(name, pauses)
    snr = 15 if noise == "babble" else 10
    noisy = recordings.mix(spoken, getattr(recordings, noise)(len(spoken) / 32000, seed=5), snr)
    session_id = caller.start(user.role_id, language="en")["session_id"]
    mark = len(caller.events)
    caller.say(noisy + silence(0.2), then_silence=0.5)
    answered(caller, mark)
    assert turn_states(caller, mark) == ["speech_start", "speech_end"]
    heard = caller.wait_for("asr_result", 1, mark)["text"].lower()
    assert any(word in heard for word in words), heard
    assert verdicts(server, session_id)
