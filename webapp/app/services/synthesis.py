"""Speaking with a library voice: which engine, which options, and encoded audio."""

from __future__ import annotations

from dataclasses import dataclass, replace

from flask import current_app

from webapp.app import audio
from webapp.app.models import Voice
from webapp.app.providers.base import ProviderError, SynthesisOptions, TextToSpeechInterface
from webapp.app.services.speech_pipeline import drain

SAMPLE_TEXT = {"zh": "你好，欢迎使用听说。这是我的声音。",
               "en": "Hello, welcome to Tingshuo. This is what my voice sounds like.",
               "ja": "こんにちは。これは私の声です。", "ko": "안녕하세요. 이것은 제 목소리입니다.",
               "fr": "Bonjour, voici ma voix.", "de": "Hallo, das ist meine Stimme.",
               "es": "Hola, esta es mi voz.", "ru": "Здравствуйте, это мой голос.",
               "it": "Ciao, questa è la mia voce.", "pt": "Olá, esta é a minha voz."}


def is_chinese(language: str | None) -> bool:
    return (language or "").lower().split("-")[0] in {"zh", "cmn", "yue", "hak", "nan"}


def sample_text(voice: Voice) -> str:
    if is_chinese(voice.language):
        return SAMPLE_TEXT["zh"]
    return SAMPLE_TEXT.get((voice.language or "en").lower().split("-")[0], SAMPLE_TEXT["en"])


def engine_for(voice: Voice, base: SynthesisOptions | None = None
               ) -> tuple[TextToSpeechInterface, SynthesisOptions]:
    """The engine of a voice and the options that make it sound like itself.

    A locally derived voice multiplies the caller's pitch and speed by its factors.
    """
    engine = current_app.extensions["providers"].tts(voice.engine)
    options = replace(base or SynthesisOptions(), voice=voice.provider_voice_id)
    options.language = options.language or voice.language
    metadata = voice.model.model_metadata if voice.model else {}
    if metadata.get("pitch_factor"):
        options.pitch = options.pitch * float(metadata["pitch_factor"])
    if metadata.get("speed_factor"):
        options.speed = options.speed * float(metadata["speed_factor"])
    return engine, options


@dataclass
class Rendered:
    data: bytes
    format: str
    duration: float
    sample_rate: int


def render(voice: Voice, text: str, fmt: str = "mp3",
           options: SynthesisOptions | None = None) -> Rendered:
    """Synthesize ``text`` with ``voice`` and encode it as ``fmt``."""
    engine, opts = engine_for(voice, options)
    encoder: audio.StreamEncoder | None = None
    parts: list[bytes] = []
    samples = 0
    rate = 0
    for chunk in drain(engine, engine.synthesize_stream(text, opts)):
        if encoder is None:
            rate = chunk.sample_rate
            encoder = audio.StreamEncoder(fmt, rate)
        samples += len(chunk.pcm) // 2
        parts.append(encoder.write(chunk.pcm))
    if encoder is None or samples == 0:
        raise ProviderError(voice.engine, "task_failed", "the engine produced no audio")
    parts.append(encoder.close())
    data = b"".join(parts)
    if fmt == "wav":
        data = audio.wav_header(rate, samples * 2) + data[44:]
    return Rendered(data=data, format=fmt, duration=samples / rate, sample_rate=rate)
