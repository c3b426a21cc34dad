"""Turn detection on real audio: Silero VAD (faster-whisper's ONNX model) scoring Piper
speech, silence and noise, and the state machine deciding where turns are; plus what
counts as a backchannel and Moonshine reading only the audio it is given."""

from __future__ import annotations

import pytest

from tests.helpers.sounds import noise, silence, speech
from webapp.app.audio.vad import SpeechScorer
from webapp.app.services.conversation.calls import is_backchannel
from webapp.app.services.conversation.turn_detection import TurnDetector, TurnSettings


@pytest.fixture(scope="module")
def sentence() -> bytes:
    return speech("Could you tell me a little about the history of this old city?")


def turns(pcm: bytes, settings: TurnSettings | None = None, piece: int = 1280) -> list[str]:
    """The detector's events for ``pcm`` fed in 40 ms pieces, as a call feeds it."""
    scorer, detector, kinds = SpeechScorer(), TurnDetector(settings or TurnSettings()), []
    for start in range(0, len(pcm), piece):
        kinds += [e.kind for e in detector.push(scorer.score(pcm[start:start + piece]))]
    return kinds


def test_scoring_in_pieces_equals_scoring_whole(sentence: bytes) -> None:
    pcm = silence(0.5) + sentence + silence(0.5)
    whole = [p for _, p in SpeechScorer().score(pcm)]
    scorer, pieces = SpeechScorer(), []
    for start in range(0, len(pcm), 666):  # odd sizes: windows straddle the pieces
        pieces += [p for _, p in scorer.score(pcm[start:start + 666])]
    assert pieces == pytest.approx(whole, abs=1e-6)
    assert max(whole) > 0.9 and max(whole[:10]) < 0.1


def test_one_sentence_is_one_turn_with_its_audio(sentence: bytes) -> None:
    scorer, detector = SpeechScorer(), TurnDetector()
    events = detector.push(scorer.score(silence(0.5) + sentence + silence(1.0)))
    kinds = [e.kind for e in events]
    assert kinds[0] == "speech_start" and kinds[-1] == "speech_end"
    assert kinds.count("speech_start") == 1 and kinds.count("speech_end") == 1
    end = events[-1]
    assert abs(len(end.audio) - len(sentence)) / 32000 < 0.4
    assert end.voiced_ms > 1500


def test_silence_and_noise_are_never_a_turn() -> None:
    assert turns(silence(2.0)) == []
    assert turns(noise(3.0, 300) + noise(2.0, 3000, seed=5)) == []


def test_short_sounds_are_dropped_and_long_turns_are_cut(sentence: bytes) -> None:
    click = b"\xff\x7f" * 80 + silence(0.5)
    assert "speech_end" not in turns(click)
    cut = turns(sentence + sentence + silence(1.0), TurnSettings(max_turn_ms=2000))
    assert cut.count("speech_end") >= 2


def test_a_short_pause_is_not_the_end_of_the_turn(sentence: bytes) -> None:
    kinds = turns(sentence + silence(0.2) + sentence + silence(1.0))
    assert kinds.count("speech_end") == 1 and "pause" in kinds


def test_backchannels() -> None:
    for text in ("", "Uh-huh.", "okay", "Mm-hmm", "嗯", "对对", "好的。", "Yeah, right."):
        assert is_backchannel(text), text
    for text in ("Stop there.", "Wait, tell me about the weather", "不对，我想问天气"):
        assert not is_backchannel(text), text


def test_moonshine_reads_only_the_audio_it_is_given(sentence: bytes) -> None:
    from webapp.app.providers.stt.moonshine import MoonshineSpeechToText

    engine = MoonshineSpeechToText({})
    long_text = engine.transcribe_pcm(sentence + silence(0.3) + sentence)
    assert "history" in long_text.lower()
    short = engine.transcribe_pcm(speech("Okay."))
    assert "history" not in short.lower() and "city" not in short.lower()
    assert engine.transcribe_pcm(b"") == ""


def test_moonshine_reads_from_several_threads_at_once(sentence: bytes) -> None:
    # Moonshine's native library crashes the process when two reads overlap; the engine
    # keeps each model in a process of its own, so calls recognising at the same moment
    # are safe, and two of them read side by side.
    import threading

    from webapp.app.providers.stt.moonshine import MoonshineSpeechToText

    engine, texts = MoonshineSpeechToText({"MOONSHINE_PROCESSES": 2}), []

    def read() -> None:
        for _ in range(4):
            texts.append(engine.transcribe_pcm(sentence))

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(texts) == 12 and all("history" in text.lower() for text in texts)
