"""Voice controls and voice measurements on s16le mono PCM, in plain numpy.

Engines without native speed or pitch controls use ``change_speed``, ``change_pitch``
and ``apply_gain``. Local engines cannot clone, so they approximate a speaker instead:
``profile_sample`` measures a sample (``estimate_pitch``, ``estimate_speaking_rate``,
``speech_ratio``) and ``approximation_metadata`` turns that into pitch and speed factors
for one of their own voices. Loops run over frames, never over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import webrtcvad

from webapp.app.audio import AudioError, decode_pcm, float_to_pcm, pcm_to_float

_ANALYSIS_RATE = 16000
_VAD_RATES = (8000, 16000, 32000, 48000)
_PITCH_MIN_HZ = 60.0
_PITCH_MAX_HZ = 400.0


def clamp(value: float, low: float, high: float) -> float:
    """``value`` kept within ``[low, high]`` (the engines' speed, pitch and volume ranges)."""
    return max(low, min(high, value))


def _resample_float(samples: np.ndarray, from_rate: float, to_rate: float) -> np.ndarray:
    """Band-limited resampling by cutting or padding the spectrum (no aliasing on the way down)."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    target = max(1, int(round(samples.size * to_rate / from_rate)))
    spectrum = np.fft.rfft(samples)
    bins = target // 2 + 1
    if bins <= spectrum.size:
        spectrum = spectrum[:bins]
    else:
        spectrum = np.concatenate([spectrum, np.zeros(bins - spectrum.size, spectrum.dtype)])
    return (np.fft.irfft(spectrum, n=target) * (target / samples.size)).astype(np.float32)


def _stretch(samples: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """WSOLA: overlap-add frames taken ``factor`` times faster, each aligned to its predecessor.

    Aligning every frame by cross-correlation within ±10 ms keeps pitch periods continuous,
    so the voice keeps its pitch while its duration changes by ``1 / factor``.
    """
    frame = max(64, int(0.03 * rate) // 2 * 2)
    hop_out = frame // 2
    hop_in = hop_out * factor
    tolerance = max(8, int(0.01 * rate))
    out_len = int(round(samples.size / factor))
    frames = out_len // hop_out + 2
    window = np.hanning(frame + 1)[:frame].astype(np.float32)
    last_start = int(round((frames - 1) * hop_in))
    padded = np.zeros(last_start + frame + 2 * tolerance + hop_out + 1, dtype=np.float32)
    padded[tolerance:tolerance + samples.size] = samples
    out = np.zeros(frames * hop_out + frame, dtype=np.float32)
    weight = np.zeros_like(out)
    delta = 0
    for k in range(frames):
        start = tolerance + int(round(k * hop_in)) + delta
        out[k * hop_out:k * hop_out + frame] += window * padded[start:start + frame]
        weight[k * hop_out:k * hop_out + frame] += window
        template = padded[start + hop_out:start + hop_out + frame]
        centre = int(round((k + 1) * hop_in))
        region = padded[centre:centre + frame + 2 * tolerance]
        if region.size < frame + 2 * tolerance or not np.any(template):
            delta = 0
            continue
        delta = int(np.argmax(np.correlate(region, template, mode="valid"))) - tolerance
    return out[:out_len] / np.maximum(weight[:out_len], 1e-3)


def change_speed(pcm: bytes, rate: int, factor: float) -> bytes:
    """Make speech ``factor`` times faster (2.0 halves the duration) without changing pitch."""
    if factor <= 0:
        raise ValueError("speed factor must be positive")
    if abs(factor - 1.0) < 1e-3 or len(pcm) < 4:
        return pcm
    return float_to_pcm(_stretch(pcm_to_float(pcm), rate, factor))


def change_pitch(pcm: bytes, rate: int, factor: float) -> bytes:
    """Raise pitch by ``factor`` (1.5 = a fifth up) keeping the duration.

    Resampling shifts pitch and duration together; stretching back restores the duration.
    """
    if factor <= 0:
        raise ValueError("pitch factor must be positive")
    if abs(factor - 1.0) < 1e-3 or len(pcm) < 4:
        return pcm
    samples = pcm_to_float(pcm)
    shifted = _resample_float(samples, rate * factor, rate)
    stretched = _stretch(shifted, rate, 1.0 / factor)
    if stretched.size < samples.size:
        stretched = np.concatenate([stretched, np.zeros(samples.size - stretched.size, np.float32)])
    return float_to_pcm(stretched[:samples.size])


def apply_gain(pcm: bytes, factor: float) -> bytes:
    """Scale loudness; peaks that would clip are bent smoothly under full scale instead."""
    if factor < 0:
        raise ValueError("gain must not be negative")
    if abs(factor - 1.0) < 1e-6 or not pcm:
        return pcm
    scaled = pcm_to_float(pcm) * np.float32(factor)
    knee = np.float32(0.89)
    magnitude = np.abs(scaled)
    over = magnitude > knee
    if np.any(over):
        bent = knee + (1 - knee) * np.tanh((magnitude[over] - knee) / (1 - knee))
        scaled[over] = np.sign(scaled[over]) * bent
    return float_to_pcm(scaled)


def _analysis_samples(pcm: bytes, rate: int) -> np.ndarray:
    return _resample_float(pcm_to_float(pcm), rate, _ANALYSIS_RATE)


def _frames(samples: np.ndarray, length: int, hop: int) -> np.ndarray:
    if samples.size < length:
        return np.zeros((0, length), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(samples, length)[::hop]


def _frame_pitches(samples: np.ndarray) -> np.ndarray:
    """YIN per 10 ms frame at 16 kHz; NaN where a frame is unvoiced or too quiet."""
    rate = _ANALYSIS_RATE
    window = int(0.025 * rate)
    tau_min = int(rate / _PITCH_MAX_HZ)
    tau_max = int(rate / _PITCH_MIN_HZ) + 1
    frames = _frames(samples, window + tau_max, rate // 100)
    if frames.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    frames = frames.astype(np.float64)
    nfft = 1 << int(np.ceil(np.log2(window + tau_max + window)))
    full = np.fft.rfft(frames, nfft, axis=1)
    head = np.fft.rfft(frames[:, :window], nfft, axis=1)
    corr = np.fft.irfft(np.conj(head) * full, nfft, axis=1)[:, :tau_max + 1]
    squares = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy_shifted = squares[:, taus + window] - squares[:, taus]
    diff = np.maximum(corr[:, :1] + energy_shifted - 2 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(running, 1e-12)
    inner = cmnd[:, tau_min:tau_max]
    is_dip = (inner[:, 1:-1] <= inner[:, :-2]) & (inner[:, 1:-1] <= inner[:, 2:])
    candidates = is_dip & (inner[:, 1:-1] < 0.15)
    voiced = candidates.any(axis=1)
    index = np.argmax(candidates, axis=1) + 1
    rows = np.arange(frames.shape[0])
    left, mid, right = inner[rows, index - 1], inner[rows, index], inner[rows, index + 1]
    curvature = left - 2 * mid + right
    safe = np.where(np.abs(curvature) > 1e-12, curvature, np.inf)
    offset = 0.5 * (left - right) / safe
    tau = tau_min + index + np.clip(offset, -1.0, 1.0)
    level = np.sqrt(squares[:, window] / window)
    loud = level > max(1e-3, float(level.max()) * 10 ** (-30 / 20))
    return np.where(voiced & loud, rate / tau, np.nan)


def estimate_pitch(pcm: bytes, rate: int) -> float | None:
    """Median fundamental frequency (Hz, 60–400) of the voiced frames; None if none are voiced."""
    pitches = _frame_pitches(_analysis_samples(pcm, rate))
    voiced = pitches[np.isfinite(pitches)]
    if voiced.size < 3:
        return None
    return float(np.median(voiced))


def _band_envelope_db(samples: np.ndarray) -> np.ndarray:
    """Energy (dB) per 10 ms frame in the 300–2500 Hz band, where vowel nuclei are loudest."""
    rate = _ANALYSIS_RATE
    frames = _frames(samples, int(0.025 * rate), rate // 100)
    if frames.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(frames * np.hanning(frames.shape[1]), axis=1)) ** 2
    freqs = np.fft.rfftfreq(frames.shape[1], 1 / rate)
    band = spectrum[:, (freqs >= 300) & (freqs <= 2500)].sum(axis=1)
    return 10 * np.log10(band + 1e-9)


def estimate_speaking_rate(pcm: bytes, rate: int) -> float:
    """Syllable-like energy peaks per second of speech, as WebRTC's VAD delimits it.

    Dividing by speech time rather than clip length keeps the figure comparable between
    samples with different amounts of silence or background noise around the speech.
    """
    samples = _analysis_samples(pcm, rate)
    envelope = _band_envelope_db(samples)
    seconds = float(_vad_flags(float_to_pcm(samples), _ANALYSIS_RATE).sum()) * 0.03
    if envelope.size < 5 or seconds < 0.1:
        return 0.0
    smooth = np.convolve(envelope, np.ones(5) / 5, mode="same")
    top = float(smooth.max())
    floor = float(np.percentile(smooth, 10))
    is_peak = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:])
    is_peak &= smooth[1:-1] > max(top - 25.0, floor + 10.0)
    kept: list[int] = []
    for index in (np.flatnonzero(is_peak) + 1).tolist():
        if kept:
            last = kept[-1]
            dip = float(smooth[last:index + 1].min())
            if index - last < 6 or min(smooth[last], smooth[index]) - dip < 2.0:
                if smooth[index] > smooth[last]:
                    kept[-1] = index
                continue
        kept.append(index)
    return len(kept) / seconds


def _vad_flags(pcm: bytes, rate: int, aggressiveness: int = 2) -> np.ndarray:
    """WebRTC VAD's verdict per 30 ms frame."""
    if rate not in _VAD_RATES:
        pcm = float_to_pcm(_resample_float(pcm_to_float(pcm), rate, _ANALYSIS_RATE))
        rate = _ANALYSIS_RATE
    frame_bytes = int(rate * 0.03) * 2
    vad = webrtcvad.Vad(aggressiveness)
    view = memoryview(pcm)
    return np.array([vad.is_speech(bytes(view[i:i + frame_bytes]), rate)
                     for i in range(0, len(pcm) - frame_bytes + 1, frame_bytes)], dtype=bool)


def speech_ratio(pcm: bytes, rate: int, aggressiveness: int = 2) -> float:
    """Share of 30 ms frames that WebRTC's VAD calls speech (0 for audio shorter than a frame)."""
    flags = _vad_flags(pcm, rate, aggressiveness)
    return float(flags.mean()) if flags.size else 0.0


def pcm_from_source(source: bytes | str, rate: int = _ANALYSIS_RATE) -> bytes:
    """Audio bytes (any accepted format) or a local file path, as s16le mono PCM at ``rate``.

    URLs are refused: the service resolves its own URLs, so engines never fetch.
    """
    if isinstance(source, str):
        if source.startswith(("http://", "https://")):
            raise AudioError("pass the audio's bytes or a local path, not a URL")
        try:
            source = Path(source).read_bytes()
        except OSError as exc:
            raise AudioError(f"cannot read audio file: {exc.strerror or exc}") from exc
    return decode_pcm(source, rate)


class UnusableSample(ValueError):
    """A voice sample that no voice can be derived from (too short, or no speech)."""


@dataclass(frozen=True)
class VoiceProfile:
    """What voice approximation needs to know about a sample."""

    duration: float
    speech_ratio: float
    pitch_hz: float | None
    syllable_rate: float


def profile_voice(pcm: bytes, rate: int) -> VoiceProfile:
    """Measure a voice sample's length, speech share, median pitch and pace in one call."""
    return VoiceProfile(
        duration=len(pcm) / 2 / rate,
        speech_ratio=speech_ratio(pcm, rate),
        pitch_hz=estimate_pitch(pcm, rate),
        syllable_rate=estimate_speaking_rate(pcm, rate),
    )


def profile_sample(pcm: bytes, rate: int) -> VoiceProfile:
    """``profile_voice`` for a user's sample, refusing one shorter than 1 s or without speech."""
    profile = profile_voice(pcm, rate)
    if profile.duration < 1.0:
        raise UnusableSample(f"sample is {profile.duration:.1f} s long; at least 1 s is needed")
    if profile.speech_ratio < 0.2 or profile.pitch_hz is None or profile.syllable_rate <= 0:
        raise UnusableSample("no speech found in the sample")
    return profile


APPROXIMATION_NOTE = "approximate voice derived from measured pitch and pace; not a clone"


def approximation_metadata(
    base_voice: str, sample: VoiceProfile, reference: VoiceProfile
) -> dict[str, Any]:
    """How to make ``base_voice`` sound like ``sample``: factors for pitch and speed.

    The factors (clamped to 0.5–2.0) compare the sample with the base voice's own
    measured pitch and pace; callers multiply ``SynthesisOptions.pitch``/``.speed`` by them.
    """
    pitch = sample.pitch_hz or 0.0
    pitch_factor = 1.0
    if reference.pitch_hz and pitch:
        pitch_factor = min(2.0, max(0.5, pitch / reference.pitch_hz))
    speed_factor = 1.0
    if reference.syllable_rate > 0 and sample.syllable_rate > 0:
        speed_factor = min(2.0, max(0.5, sample.syllable_rate / reference.syllable_rate))
    return {
        "approximation": True,
        "note": APPROXIMATION_NOTE,
        "base_voice": base_voice,
        "pitch_factor": round(pitch_factor, 3),
        "speed_factor": round(speed_factor, 3),
        "measured_pitch_hz": round(pitch, 1),
        "measured_rate": round(sample.syllable_rate, 2),
    }
