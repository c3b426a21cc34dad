"""Seed 000's TTS and STT requests: the audio is stored, and each is a message."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import current_app

from webapp.app import audio
from webapp.app.api import ApiError
from webapp.app.concurrency import run_blocking
from webapp.app.extensions import db
from webapp.app.models import File, Message, Session
from webapp.app.providers.base import ProviderError, SynthesisOptions
from webapp.app.services import files, sessions, synthesis, voices

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

    def options(self) -> SynthesisOptions:
        return SynthesisOptions(speed=self.speed, pitch=self.pitch, volume=self.volume,
                                language=self.language)


def _voice(owner_id: int, name: str | None) -> Any:
    return voices.resolve_usable(name, owner_id) if name else voices.default_voice()


def _message_out(message: Message, session: Session, row: File | None) -> dict[str, Any]:
    return {"message_id": message.id, "session_id": session.id,
            "audio_url": files.audio_url(row) if row else None,
            "format": row.format if row else None,
            "duration": round(row.duration, 3) if row else None,
            "size": row.size if row else None}


def tts(owner_id: int, request: TtsRequest) -> dict[str, Any]:
    voice = _voice(owner_id, request.voice)
    session = sessions.get_or_create(owner_id, request.session_id, voice_id=voice.voice_type)
    started = time.perf_counter()
    rendered = synthesis.render(voice, request.text, request.format, request.options(),
                                with_fallback=True)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    row = files.save(owner_id, rendered.data, request.format, rendered.duration,
                     kind="generated")
    spoken = {"engine": rendered.engine, **(
        {"fallback": rendered.fell_back_from} if rendered.fell_back_from else {})}
    message = sessions.add_message(
        session, role="assistant", type="voice", text=request.text, audio=row,
        voice_id=voice.voice_type,
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


def tts_stream(owner_id: int, request: TtsRequest) -> TtsStream:
    """Start synthesizing; the first piece is made before anything is answered, so a
    provider that fails before its first audio is a plain error (and stores nothing),
    while one that fails later ends the stream early and leaves the message marked
    interrupted, with the reason."""
    voice = _voice(owner_id, request.voice)
    session = sessions.get_or_create(owner_id, request.session_id, voice_id=voice.voice_type)
    engine, options = synthesis.engine_for(voice, request.options(), with_fallback=True)
    started = time.perf_counter()
    stream = synthesis.EncodedStream(engine, request.text, options, request.format)
    pieces = iter(stream)
    first = next(pieces, b"")
    message = sessions.add_message(session, role="assistant", type="voice", text=request.text,
                                   voice_id=voice.voice_type,
                                   meta={"kind": "synthesized", **synthesis.spoken_by(engine),
                                         "streamed": True})
    message_id, session_id = message.id, session.id

    def generate() -> Iterator[bytes]:
        completed = False
        error: str | None = None
        try:
            if first:
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

    content_type = audio.CONTENT_TYPES.get(request.format, "application/octet-stream")
    if request.format == "pcm":
        content_type += f";rate={stream.sample_rate or engine.capabilities.sample_rate};channels=1"
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


def _stt_engine(provider: str | None) -> Any:
    name = STT_ENGINES.get((provider or current_app.config["STT_ENGINE"]).lower())
    if name is None:
        raise ApiError(400, "bad_request", "INVALID_PROVIDER", {"detail": f"provider: {provider}"})
    return current_app.extensions["providers"].stt_with_fallback(name)


def stt(owner_id: int, *, upload: tuple[bytes, str] | None = None, file_id: str | None = None,
        audio_url: str | None = None, language: str | None = None,
        session_id: str | None = None, provider: str | None = None,
        prompt: str | None = None) -> dict[str, Any]:
    """Recognise speech in an upload or one of the caller's own files, and keep both."""
    engine = _stt_engine(provider)
    made_here = upload is not None
    if upload is not None:
        row = files.store_upload(owner_id, upload[0], upload[1])
    elif file_id:
        row = files.get_owned(file_id, owner_id)
    elif audio_url:
        row = files.resolve_own_url(audio_url, owner_id)
    else:
        raise ApiError(400, "file_missing", "FILE_MISSING")
    session = sessions.get_or_create(owner_id, session_id)
    params = {"prompt": prompt} if prompt else {}
    started = time.perf_counter()
    source: bytes | str = (files.download_url(row, seconds=600) if engine.name == "qwen-audio"
                           else files.read(row))
    try:
        if engine.cpu_bound:
            result = run_blocking(engine.transcribe, source, language, params)
        else:
            result = engine.transcribe(source, language, params)
    except Exception:
        # The upload was only for this recognition: a failed one keeps nothing.
        if made_here:
            files.delete(row)
        raise
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    spoken = {"engine": getattr(engine, "used", engine.name)}
    if getattr(engine, "fell_back_from", None):
        spoken["fallback"] = engine.fell_back_from
    message = sessions.add_message(
        session, role="user", type="voice", transcription=result.text, audio=row,
        meta={"kind": "transcribed", **spoken, "language": result.language,
              "recognition_ms": elapsed_ms,
              "segments": [s.__dict__ for s in result.segments]})
    return {"message_id": message.id, "session_id": session.id,
            "transcription": result.text, "language": result.language,
            "duration": round(row.duration, 3),
            "segments": [s.__dict__ for s in result.segments],
            "audio_url": files.audio_url(row)}
