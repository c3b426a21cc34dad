"""Turn detection on real audio: Silero VAD (faster-whisper's ONNX model) scoring Piper
speech, silence and noise, and the state machine deciding where turns are; plus what
counts as a backchannel and Moonshine reading only the audio it is given; and the end
of a turn judged by Smart Turn on recorded speech and by the words."""

from __future__ import annotations

import pytest

from tests.helpers import recordings
from tests.helpers.sounds import noise, silence, speech
from webapp.app.audio import end_of_turn
from webapp.app.audio.vad import SpeechScorer
from webapp.app.services.conversation import turn_completion
from webapp.app.services.conversation.calls import is_backchannel, is_hallucinated
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


def test_a_judged_pause_ends_the_turn_after_the_silence_its_verdict_names(
        sentence: bytes) -> None:
    settings = TurnSettings(judged=True, undecided_ms=3000)
    scorer, detector = SpeechScorer(), TurnDetector(settings)
    events = detector.push(scorer.score(silence(0.3) + sentence + silence(0.6)))
    pause = [e for e in events if e.kind == "pause"][-1]  # the one after the sentence
    assert [e.kind for e in events][-1] == "pause", "no verdict yet: the turn goes on"
    assert detector.decide(pause.pause_no - 1, 100) is None, "a stale verdict is ignored"
    assert detector.decide(pause.pause_no, 2000) is None, "unfinished: wait longer"
    ended = detector.decide(pause.pause_no, 400)
    assert ended is not None and ended.kind == "speech_end" and ended.silence_ms == 400
    assert ended.audio and detector.last_voiced_ms < detector.elapsed_ms - 400


def test_smart_turn_hears_a_mid_sentence_pause_from_a_sentence_end() -> None:
    # Recorded speech (tests/data/speech): JFK before "ask what…", and after "…country."
    mid = recordings.excerpt("en-jfk-ask-not", 0, 7.62)
    end = recordings.excerpt("en-jfk-ask-not", 7.9, 10.6)
    assert end_of_turn.probability(mid) < 0.2 < 0.8 < end_of_turn.probability(end)


@pytest.mark.parametrize(("text", "language", "unfinished"), [
    ("And so my fellow Americans,", "en", True),
    ("I went to the shop because", "en", True),
    ("Thank you.", "en", False),
    ("What do you think?", "en", False),
    ("我们先去公园，然后", "zh", True),
    ("这是我的", "zh", True),
    ("好的。", "zh", False),
    ("你吃饭了吗", "zh", False),
])
def test_what_the_words_say_about_the_end_of_a_turn(text: str, language: str,
                                                    unfinished: bool) -> None:
    assert turn_completion.unfinished_text(text, language) is unfinished


def test_the_silence_follows_the_verdict() -> None:
    settings = turn_completion.CompletionSettings(complete_ms=400, unfinished_ms=2000,
                                                  clause_ms=1200)
    silence_for = turn_completion.silence_for
    assert silence_for(0.9, "Ask what you can do for your country.", "en", 2000,
                       settings) == 400
    assert silence_for(0.9, "Ask what you can do for", "en", 2000, settings) == 2000
    assert 400 < silence_for(0.4, "Ask not.", "en", 2000, settings) < 2000
    assert silence_for(0.01, "Ask not.", "en", 2000, settings) == 2000
    # Mandarin: a long clause heard as finished waits for more; a short answer does not.
    assert silence_for(0.97, "富士康在印度工厂出现大规模感染。", "zh", 3000, settings) == 1200
    assert silence_for(0.97, "好的。", "zh", 600, settings) == 400
    assert silence_for(0.97, "你明天有空吗？", "zh", 3000, settings) == 400


@pytest.mark.parametrize(("text", "invented"), [
    ("They're low, low, low, low.", True),
    ("S. s. s. s.", True),
    ("谢谢谢谢谢谢", True),
    ("", True),
    ("low low", False),
    ("no no no no, I said yes", False),
    ("It was the first great sorrow of his life.", False),
    ("我们一起去公园散步吧", False),
])
def test_repeated_or_empty_transcripts_are_not_shown(text: str, invented: bool) -> None:
    assert is_hallucinated(text) is invented
