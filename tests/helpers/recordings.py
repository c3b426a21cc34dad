"""Recorded human speech (``tests/data/speech``, see its README) and the noise a real
call has, made here: other people talking (babble), a fan, music.

Everything is 16 kHz mono 16-bit PCM, what a call's microphone stream carries. Pauses
are lengthened with the recording's own room tone, so the speech around them stays as
it was spoken; noise is mixed at a chosen signal-to-noise ratio over the speech's
voiced part. Everything is seeded: the same call always hears the same sound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.helpers.paths import ROOT
from webapp.app import audio

RATE = 16000
SPEECH = ROOT / "tests" / "data" / "speech"


@dataclass(frozen=True)
class Pause:
    """A natural pause in a recording: where it starts and how long it is (seconds)."""

    at: float
    length: float


# Found with Silero VAD (probability below 0.35 for at least 160 ms inside speech).
PAUSES = {
    "en-jfk-ask-not": (Pause(2.24, 1.06), Pause(3.74, 0.22), Pause(4.35, 1.09),
                       Pause(7.62, 0.61)),
    "en-librispeech-1995-1837-0001": (Pause(2.40, 0.35), Pause(6.34, 0.22)),
    "zh-wenet-long": (Pause(3.81, 0.29),),
    "zh-aishell-BAC009S0724W0121": (),
}


def recording(name: str) -> bytes:
    """The recording ``name`` (a file of ``tests/data/speech`` without ``.wav``)."""
    return audio.decode_pcm((SPEECH / f"{name}.wav").read_bytes(), RATE)


def _samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32)


def _pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def with_pauses(name: str, lengths: dict[int, float]) -> bytes:
    """``name`` with its ``n``-th natural pause (``PAUSES``) made ``lengths[n]`` seconds
    long, by repeating that pause's own room tone."""
    samples = _samples(recording(name))
    out, cursor = [], 0
    for n, pause in enumerate(PAUSES[name]):
        start, end = int(pause.at * RATE), int((pause.at + pause.length) * RATE)
        out.append(samples[cursor:end])
        cursor = end
        extra = int(lengths.get(n, pause.length) * RATE) - (end - start)
        if extra > 0:
            tone = samples[start:end]
            out.append(np.resize(tone, extra))
    out.append(samples[cursor:])
    return _pcm(np.concatenate(out))


def excerpt(name: str, start: float, end: float | None = None) -> bytes:
    pcm = recording(name)
    return pcm[int(start * RATE) * 2:None if end is None else int(end * RATE) * 2]


def babble(seconds: float, seed: int = 0) -> bytes:
    """Other people talking at once: the other recordings overlaid at random offsets."""
    rng = np.random.default_rng(seed)
    length = int(seconds * RATE)
    mix = np.zeros(length, dtype=np.float32)
    for name in PAUSES:
        voice = _samples(recording(name))
        voice = np.resize(np.roll(voice, int(rng.integers(len(voice)))), length)
        mix += voice / (np.sqrt(np.mean(voice ** 2)) + 1e-9)
    return _pcm(mix * 1000)


def fan(seconds: float, seed: int = 0) -> bytes:
    """A fan: brown-ish noise (low frequencies) with a faint motor hum."""
    rng = np.random.default_rng(seed)
    length = int(seconds * RATE)
    white = rng.standard_normal(length).astype(np.float32)
    brown = np.cumsum(white)
    brown -= np.convolve(brown, np.ones(400) / 400, mode="same")  # no drift, keep the rumble
    t = np.arange(length) / RATE
    hum = 0.3 * np.sin(2 * np.pi * 100 * t) + 0.15 * np.sin(2 * np.pi * 200 * t)
    signal = brown / (np.std(brown) + 1e-9) + hum
    return _pcm(signal * 1000)


def music(seconds: float, seed: int = 0) -> bytes:
    """Music-like sound: a melody of harmonic notes with a steady beat."""
    rng = np.random.default_rng(seed)
    length = int(seconds * RATE)
    t = np.arange(length) / RATE
    notes = 220 * 2 ** (rng.integers(0, 12, size=int(seconds * 4) + 1) / 12)
    freq = notes[(t * 4).astype(int)]
    phase = 2 * np.pi * np.cumsum(freq) / RATE
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3))
    beat = 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0.9)
    return _pcm(tone * beat * 1000)


def _background(speech: bytes, noise: bytes, snr_db: float, samples: int) -> np.ndarray:
    """``noise`` (repeated as needed) at ``snr_db`` dB below ``speech``'s voiced part."""
    voice = _samples(speech)
    loud = voice[np.abs(voice) > 0.1 * np.max(np.abs(voice))]
    level = np.sqrt(np.mean(loud ** 2)) if loud.size else 1.0
    background = np.resize(_samples(noise), samples)
    return background * level / (np.sqrt(np.mean(background ** 2)) + 1e-9) / 10 ** (snr_db / 20)


def mix(speech: bytes, noise: bytes, snr_db: float) -> bytes:
    """``speech`` with ``noise`` (repeated as needed) at ``snr_db`` dB below its voiced
    part's level; the result is as long as ``speech``."""
    return _pcm(_samples(speech) + _background(speech, noise, snr_db, len(speech) // 2))


def noise_alone(speech: bytes, noise: bytes, snr_db: float, seconds: float) -> bytes:
    """``seconds`` of ``noise`` alone, as loud as ``mix`` makes it under ``speech``."""
    return _pcm(_background(speech, noise, snr_db, int(seconds * RATE)))


def until_last_voiced(pcm: bytes) -> bytes:
    """``pcm`` cut after its last voiced 32 ms window (Silero VAD), so that a figure
    counted from the last sample sent is counted from the end of the speech."""
    from webapp.app.audio.vad import SpeechScorer

    probabilities = [p for _, p in SpeechScorer().score(pcm)]
    voiced = [i for i, p in enumerate(probabilities) if p >= 0.5]
    return pcm[:(voiced[-1] + 1) * 1024] if voiced else pcm
