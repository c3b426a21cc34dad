"""TTS and STT requests: the audio is stored, and each is a message."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import current_app

from webapp.app import audio
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Conversation, File, Message, Voice
from webapp.app.providers.base import (
    ProviderError,
    SpeechSource,
    SynthesisOptions,
    Transcription,
)
from webapp.app.services.platform import files, limits, usage_counters
from webapp.app.services.sessions import conversations
from webapp.app.services.speech import transcripts
from webapp.app.services.speech.voice_input import VoiceInput
from webapp.app.services.voice_library import emotion, synthesis, voices

log = logging.getLogger(__name__)

STT_ENGINES = {"local": "whisper", "whisper": "whisper", "dashscope": "paraformer",
               "aliyun": "paraformer", "paraformer": "paraformer", "qwen-audio": "qwen-audio"}


@dataclass
class TtsRequest:
    text: str
    voice: str | None = None
    session_id: str | None = None
    format: str = "mp3"
    speed: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    language: str | None = None
    emotion: str | None = None
    emotion_intensity: float = 0.0
    instruction: str | None = None
    output_rate: int | None = None

    def options(self) -> SynthesisOptions:
        base = SynthesisOptions(speed=self.speed, pitch=self.pitch, volume=self.volume,
                                language=self.language)
        if self.emotion:
            base = emotion.apply(base, self.emotion, self.emotion_intensity)
        if self.instruction:
            base.instruction = self.instruction
        return base


def _voice(owner_id: int, request: TtsRequest) -> Any:
    """The voice named, else the one the text's language (or the request's) picks."""
    if request.voice:
        return voices.resolve_usable(request.voice, owner_id)
    return voices.default_voice(request.text, request.language)


def _message_out(message: Message, session: Conversation, row: File | None) -> dict[str, Any]:
    return {"message_id": message.id, "session_id": session.id,
            "audio_url": files.audio_url(row) if row else None,
            "format": row.format if row else None,
            "duration": round(row.duration, 3) if row else None,
            "size": row.size if row else None}


def tts(owner_id: int, request: TtsRequest) -> dict[str, Any]:
    """Synthesize and store; a new session is made only once there is audio to put in it."""
    voice = _voice(owner_id, request)
    named = conversations.get_owned(request.session_id, owner_id) if request.session_id else None
    started = time.perf_counter()
    spent = limits.charge(owner_id, characters=len(request.text))
    try:
        rendered = synthesis.render(voice, request.text, request.format, request.options(),
                                    with_fallback=True)
    except Exception:
        usage_counters.refund(spent)
        raise
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    session = named or conversations.create(owner_id, voice_type=voice.voice_type)
    row = files.save(owner_id, rendered.data, request.format, rendered.duration,
                     kind="generated")
    spoken = {"engine": rendered.engine, **(
        {"fallback": rendered.fell_back_from} if rendered.fell_back_from else {})}
    message = conversations.add_message(
        session, role="assistant", type="voice", text=request.text, audio=row,
        voice_type=voice.voice_type,
        meta={"kind": "synthesized", **spoken, "synthesis_ms": elapsed_ms,
              "sample_rate": rendered.sample_rate, "speed": request.speed,
              "pitch": request.pitch, "volume": request.volume})
    return _message_out(message, session, row)


@dataclass
class TtsStream:
    """A synthesis streamed to the client as it is made; stored when it completes."""

    chunks: Iterator[bytes]
    message_id: str
    session_id: str
    content_type: str


def tts_stream(owner_id: int, request: TtsRequest, *, history: bool = True,
               counted: bool = False, voice: Voice | None = None) -> TtsStream:
    """Stream the synthesis; with ``history`` it is also a message with its audio stored.
    Its characters count against the owner's day unless the caller ``counted`` them. A
    caller that has already resolved the voice (one the owner may use) passes it as
    ``voice``, and it is not looked up again.

    The first audio is made before anything is answered or stored: a provider that
    fails before it (after any fallback) is a plain error that leaves nothing behind,
    while one that fails later ends the stream early and leaves the message marked
    interrupted, with the reason."""
    voice = voice if voice is not None else _voice(owner_id, request)
    named = conversations.get_owned(request.session_id, owner_id) if request.session_id else None
    engine, options = synthesis.engine_for(voice, request.options(), with_fallback=True)
    started = time.perf_counter()
    stream = synthesis.EncodedStream(engine, request.text, options, request.format,
                                     output_rate=request.output_rate)
    content_type = audio.CONTENT_TYPES.get(request.format, "application/octet-stream")
    if request.format == "pcm":
        content_type += f";rate={request.output_rate or engine.capabilities.sample_rate};channels=1"
    spent = None if counted else limits.charge(owner_id, characters=len(request.text))
    pieces = iter(stream)
    try:
        first = next(pieces, None)
        if first is None:
            raise ProviderError(voice.engine, "bad_input", synthesis.SILENT_TEXT)
    except Exception:
        usage_counters.refund(spent)
        raise
    if not history:
        return TtsStream(itertools.chain([first], pieces), "", "", content_type)
    session = named or conversations.create(owner_id, voice_type=voice.voice_type)
    message = conversations.add_message(session, role="assistant", type="voice", text=request.text,
                                        voice_type=voice.voice_type,
                                        meta={"kind": "synthesized", **synthesis.spoken_by(engine),
                                              "streamed": True})
    message_id, session_id = message.id, session.id

    def generate() -> Iterator[bytes]:
        completed = False
        error: str | None = None
        try:
            yield first
            yield from pieces
            completed = True
        except ProviderError as exc:
            error = str(exc)
            log.warning("tts stream %s broke off: %s", message_id, exc)
            raise
        finally:
            first_at = stream.first_audio_at
            meta: dict[str, Any] = {
                "first_audio_ms": round((first_at - started) * 1000, 1) if first_at else None,
                "total_ms": round((time.perf_counter() - started) * 1000, 1),
                "interrupted": not completed}
            if error:
                meta["error"] = error
            _finish_stream(owner_id, message_id, stream, meta)

    return TtsStream(generate(), message_id, session_id, content_type)


def _finish_stream(owner_id: int, message_id: str, stream: synthesis.EncodedStream,
                   meta: dict[str, Any]) -> None:
    """Store the streamed audio once it is whole."""
    message = db.session.get(Message, message_id)
    if message is None:
        return
    data = stream.whole()
    if data and not meta["interrupted"]:
        row = files.save(owner_id, data, stream.format, stream.duration, kind="generated")
        message.audio_file_id = row.id
        message.format = stream.format
        message.duration = round(stream.duration, 3)
    message.meta = {**(message.meta or {}), **meta}
    db.session.commit()


def stt_engine(provider: str | None) -> Any:
    """The recogniser a request names (a provider or engine name), else the default."""
    name = STT_ENGINES.get((provider or current_app.config["STT_ENGINE"]).lower())
    if name is None:
        raise ApiError(400, "bad_request", "INVALID_PROVIDER", {"detail": f"provider: {provider}"})
    return current_app.extensions["providers"].stt_with_fallback(name)


def recognise(engine: Any, source: SpeechSource, language: str | None,
              params: dict[str, Any]) -> tuple[Transcription, float]:
    """Run a recogniser on a recording, handed over in the form the engine takes; the
    result and how long it took (ms)."""
    started = time.perf_counter()
    result = engine.transcribe_input(source, language, params)
    return result, round((time.perf_counter() - started) * 1000, 1)


def itn_wanted(itn: bool | None) -> bool:
    """A request's ``itn`` flag; None follows the ``TRANSCRIPT_ITN`` setting."""
    return bool(current_app.config.get("TRANSCRIPT_ITN", True)) if itn is None else itn


def polished(result: Transcription, itn: bool | None, language: str | None) -> Transcription:
    """``result`` written for its reader: the language the request named (``zh-TW``)
    picks the Chinese script."""
    return transcripts.polish(result, itn=itn_wanted(itn), reader_language=language)


def polished_text(text: str, spoken_language: str | None, reader_language: str | None) -> str:
    """A bare transcript (a live call's partial) written as ``polished`` writes one."""
    return transcripts.polish_text(text, spoken_language, itn=itn_wanted(None),
                                   reader_language=reader_language)


def transcribed_meta(engine: Any, result: Transcription, elapsed_ms: float,
                     **extra: Any) -> dict[str, Any]:
    """What a transcribed message keeps about its recognition, and which engine heard it
    (the fallback's name when the primary failed)."""
    spoken = {"engine": getattr(engine, "used", engine.name)}
    if getattr(engine, "fell_back_from", None):
        spoken["fallback"] = engine.fell_back_from
    return {"kind": "transcribed", **spoken, "language": result.language,
            "recognition_ms": elapsed_ms, "segments": [s.brief() for s in result.segments],
            **extra}


def stt(owner_id: int, *, upload: tuple[bytes, str] | None = None, file_id: str | None = None,
        audio_url: str | None = None, language: str | None = None,
        session_id: str | None = None, provider: str | None = None,
        prompt: str | None = None, response_format: str = "json",
        timestamp_granularities: tuple[str, ...] = (), itn: bool | None = None
        ) -> dict[str, Any]:
    """Recognise speech in an upload or one of the caller's own files, and keep both.

    ``response_format`` adds OpenAI's shapes to the message fields: ``verbose_json``
    adds ``words`` (when asked for) and ready-made ``subtitles``; ``text``, ``srt`` and
    ``vtt`` add the document as ``content``. A recognition that fails keeps nothing.
    The transcript is written as ``transcripts.polish`` writes it (``itn`` None: the
    ``TRANSCRIPT_ITN`` setting).
    """
    engine = stt_engine(provider)
    named = conversations.get_owned(session_id, owner_id) if session_id else None
    if upload is not None:
        voice = VoiceInput.upload(owner_id, upload[0], original_name=upload[1])
    elif file_id:
        voice = VoiceInput.stored(files.get_owned(file_id, owner_id))
    elif audio_url:
        voice = VoiceInput.stored(files.resolve_own_url(audio_url, owner_id))
    else:
        raise ApiError(400, "file_missing", "FILE_MISSING")
    params: dict[str, Any] = {"prompt": prompt} if prompt else {}
    if "word" in timestamp_granularities:
        params["word_timestamps"] = True
    spent = limits.charge(owner_id, audio_seconds=round(voice.duration, 3))
    voice.store_beside()
    try:
        result, elapsed_ms = recognise(engine, voice, language, params)
        result = polished(result, itn, language)
        row = voice.keep()
        session = named or conversations.create(owner_id)
        message = conversations.add_message(session, role="user", type="voice",
                                       transcription=result.text, audio=row,
                                       meta=transcribed_meta(engine, result, elapsed_ms))
    except Exception:
        # An upload made for this recognition goes with it: a failed one keeps nothing.
        db.session.rollback()
        voice.discard()
        usage_counters.refund(spent)
        raise
    out = {"message_id": message.id, "session_id": session.id,
           "transcription": result.text, "language": result.language,
           "duration": round(row.duration, 3),
           "segments": [s.brief() for s in result.segments],
           "audio_url": files.audio_url(row)}
    if response_format == "verbose_json":
        out["words"] = transcripts.words_of(result)
        out["subtitles"] = {"srt": transcripts.to_srt(result.segments),
                            "vtt": transcripts.to_vtt(result.segments)}
    elif response_format in ("text", "srt", "vtt"):
        out["content"] = transcripts.render(result, response_format)
    return out
