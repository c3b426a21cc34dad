"""Signal processing: measured on synthetic signals with known answers and on eSpeak speech."""

from __future__ import annotations

import numpy as np
import pytest

from webapp.app.audio import AudioError, dsp, encode
from webapp.app.providers.base import SynthesisOptions
from webapp.app.providers.tts.espeak import EspeakTextToSpeech

RATE = 16000


def voiced(f0: float, seconds: float, syllables_per_second: float = 0.0,
           rate: int = RATE) -> bytes:
    """A buzz with harmonics at ``f0``, optionally pulsed like syllables."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    if syllables_per_second:
        wave = wave * (0.1 + np.sin(np.pi * syllables_per_second * t) ** 4)
    wave = 0.3 * wave / np.max(np.abs(wave))
    return (wave * 32767).astype(np.int16).tobytes()


def rms(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, np.int16).astype(np.float64) ** 2)))


def seconds(pcm: bytes, rate: int = RATE) -> float:
    return len(pcm) / 2 / rate


@pytest.fixture(scope="module")
def speech() -> tuple[bytes, int]:
    chunk = EspeakTextToSpeech({}).synthesize(
        "The quick brown fox jumps over the lazy dog near the river bank.",
        SynthesisOptions(voice="en-us"),
    )
    return chunk.pcm, chunk.sample_rate


@pytest.mark.parametrize("f0", [85.0, 120.0, 220.0, 330.0])
def test_estimate_pitch_finds_the_fundamental(f0: float) -> None:
    assert dsp.estimate_pitch(voiced(f0, 1.0), RATE) == pytest.approx(f0, rel=0.02)


def test_estimate_pitch_works_at_other_sample_rates() -> None:
    assert dsp.estimate_pitch(voiced(150.0, 1.0, rate=22050), 22050) == pytest.approx(150, rel=0.02)


def test_estimate_pitch_is_none_without_voicing() -> None:
    noise = (np.random.default_rng(0).standard_normal(RATE) * 3000).astype(np.int16).tobytes()
    assert dsp.estimate_pitch(bytes(RATE * 2), RATE) is None
    assert dsp.estimate_pitch(noise, RATE) is None
    assert dsp.estimate_pitch(b"", RATE) is None


@pytest.mark.parametrize("factor", [0.7, 1.3, 1.8])
def test_change_pitch_moves_f0_and_keeps_duration(factor: float) -> None:
    source = voiced(140.0, 1.5)
    shifted = dsp.change_pitch(source, RATE, factor)
    assert len(shifted) == len(source)
    assert dsp.estimate_pitch(shifted, RATE) == pytest.approx(140.0 * factor, rel=0.03)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.5, 2.0])
def test_change_speed_changes_duration_not_pitch(factor: float) -> None:
    source = voiced(140.0, 2.0)
    faster = dsp.change_speed(source, RATE, factor)
    assert seconds(faster) == pytest.approx(2.0 / factor, rel=0.01)
    assert dsp.estimate_pitch(faster, RATE) == pytest.approx(140.0, rel=0.02)


def test_change_speed_on_speech_keeps_its_pitch(speech: tuple[bytes, int]) -> None:
    pcm, rate = speech
    faster = dsp.change_speed(pcm, rate, 1.5)
    assert seconds(faster, rate) == pytest.approx(seconds(pcm, rate) / 1.5, rel=0.01)
    assert dsp.estimate_pitch(faster, rate) == pytest.approx(dsp.estimate_pitch(pcm, rate),
                                                             rel=0.08)


def test_identity_factors_return_the_input() -> None:
    source = voiced(100.0, 0.5)
    assert dsp.change_speed(source, RATE, 1.0) == source
    assert dsp.change_pitch(source, RATE, 1.0) == source
    assert dsp.apply_gain(source, 1.0) == source
    with pytest.raises(ValueError):
        dsp.change_speed(source, RATE, 0.0)


def test_apply_gain_scales_and_never_wraps() -> None:
    source = voiced(200.0, 0.5)
    assert rms(dsp.apply_gain(source, 0.5)) == pytest.approx(rms(source) * 0.5, rel=0.01)
    loud = np.frombuffer(dsp.apply_gain(source, 6.0), np.int16)
    original = np.frombuffer(source, np.int16)
    assert np.abs(loud.astype(np.int32)).max() <= 32767
    same_sign = np.sign(loud[original != 0]) == np.sign(original[original != 0])
    assert same_sign.mean() > 0.999
    assert rms(loud.tobytes()) > 2.5 * rms(source)


def test_speaking_rate_follows_syllable_pulses() -> None:
    slow = dsp.estimate_speaking_rate(voiced(120.0, 4.0, syllables_per_second=3.0), RATE)
    fast = dsp.estimate_speaking_rate(voiced(120.0, 4.0, syllables_per_second=6.0), RATE)
    assert slow == pytest.approx(3.0, rel=0.25)
    assert fast == pytest.approx(6.0, rel=0.25)
    assert dsp.estimate_speaking_rate(bytes(RATE * 2), RATE) == 0.0


def test_speaking_rate_of_speech_rises_when_sped_up(speech: tuple[bytes, int]) -> None:
    pcm, rate = speech
    normal = dsp.estimate_speaking_rate(pcm, rate)
    assert 3.0 < normal < 9.0
    assert dsp.estimate_speaking_rate(dsp.change_speed(pcm, rate, 1.6), rate) > 1.2 * normal


def test_speech_ratio_tells_speech_from_silence(speech: tuple[bytes, int]) -> None:
    pcm, rate = speech
    assert dsp.speech_ratio(pcm, rate) > 0.6
    assert dsp.speech_ratio(bytes(rate * 2), rate) == 0.0
    assert dsp.speech_ratio(b"", rate) == 0.0


def test_profile_sample_refuses_silence_and_short_clips(speech: tuple[bytes, int]) -> None:
    pcm, rate = speech
    profile = dsp.profile_sample(pcm, rate)
    assert profile.pitch_hz is not None and 70 < profile.pitch_hz < 160
    assert profile.duration == pytest.approx(seconds(pcm, rate))
    with pytest.raises(dsp.UnusableSample, match="no speech"):
        dsp.profile_sample(bytes(rate * 6), rate)
    with pytest.raises(dsp.UnusableSample, match="at least 1 s"):
        dsp.profile_sample(pcm[: rate], rate)


def test_approximation_metadata_clamps_factors() -> None:
    reference = dsp.VoiceProfile(duration=5, speech_ratio=1, pitch_hz=100.0, syllable_rate=5.0)
    high = dsp.VoiceProfile(duration=5, speech_ratio=1, pitch_hz=390.0, syllable_rate=6.0)
    meta = dsp.approximation_metadata("cmn", high, reference)
    assert meta["pitch_factor"] == 2.0
    assert meta["speed_factor"] == pytest.approx(1.2)
    assert meta["approximation"] is True and meta["base_voice"] == "cmn"
    assert "not a clone" in meta["note"]


def test_pcm_from_source_reads_bytes_and_paths_but_not_urls(tmp_path) -> None:
    wav = encode(voiced(120.0, 1.0), RATE, "wav")
    path = tmp_path / "sample.wav"
    path.write_bytes(wav)
    assert seconds(dsp.pcm_from_source(wav)) == pytest.approx(1.0, abs=0.01)
    assert seconds(dsp.pcm_from_source(str(path), 8000), 8000) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(AudioError, match="URL"):
        dsp.pcm_from_source("https://example.com/a.wav")
    with pytest.raises(AudioError):
        dsp.pcm_from_source(str(tmp_path / "missing.wav"))
