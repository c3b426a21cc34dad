"""``AliyunAPIService`` and ``FileWriterCallback``: DashScope recognition,
synthesis (sync, async, streaming) and streamed LLM + TTS, over the provider layer.

Audio it writes goes to the configured storage under ``tmp/`` and is handed out as an
absolute, signed URL (``BASE_URL``); ``TMP_DIR`` holds files only while they are written.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from dashscope.audio.tts_v2 import ResultCallback
from flask import Flask, current_app, has_app_context

from webapp.app import audio
from webapp.app.audio.outgoing import OutgoingAudio
from webapp.app.concurrency import spawn
from webapp.app.providers import ProviderRegistry
from webapp.app.providers.base import AudioChunk, ChatOptions, ProviderError, SynthesisOptions
from webapp.app.services.platform import urls
from webapp.app.services.speech.reply_stream import stream_reply
from webapp.app.services.voice_library.synthesis import EncodedStream

log = logging.getLogger(__name__)

TMP_PREFIX = "tmp/"
F = TypeVar("F", bound=Callable[..., Any])
_standalone: list[Flask] = []


def _app() -> Flask:
    """The current application; in a plain script (no application context) one built
    once from the environment, so ``DASHSCOPE_API_KEY``, ``TMP_DIR`` and ``BASE_URL``
    are read as they are everywhere else."""
    if has_app_context():
        return current_app._get_current_object()
    if not _standalone:
        from webapp.app import create_app

        _standalone.append(create_app())
    return _standalone[0]


@contextmanager
def _context(app: Flask) -> Iterator[None]:
    """``app``'s context, unless one is already active (a route, a task, a test)."""
    if has_app_context():
        yield
        return
    with app.app_context():
        yield


def _in_app(method: F) -> F:
    """Runs a method of the service inside its application's context."""

    @wraps(method)
    def call(self: AliyunAPIService, *args: Any, **kwargs: Any) -> Any:
        with _context(self.app):
            return method(self, *args, **kwargs)

    return call  # type: ignore[return-value]


def tmp_path(name: str) -> str:
    return f"/api/tmp_audio/{name}"


def store_tmp_audio(data: bytes, fmt: str = "mp3") -> str:
    """Keep generated audio in storage and return its signed, absolute URL."""
    name = f"{secrets.token_hex(12)}.{fmt}"
    current_app.extensions["storage"].put(TMP_PREFIX + name, data,
                                          audio.CONTENT_TYPES.get(fmt, "audio/mpeg"))
    return urls.signed(tmp_path(name))


class FileWriterCallback(ResultCallback):
    """Writes streamed synthesis to a file in ``TMP_DIR``; when complete, stores it and
    calls ``on_complete_callback(url)``; failures call ``on_error_callback(message)``."""

    def __init__(self, on_complete_callback: Callable[[str], Any] | None = None,
                 on_error_callback: Callable[[str], Any] | None = None,
                 fmt: str = "mp3") -> None:
        self.on_complete_callback = on_complete_callback
        self.on_error_callback = on_error_callback
        self.format = fmt
        self.url: str | None = None
        self._app = _app()
        tmp_dir = Path(self._app.config["TMP_DIR"])
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=f".{fmt}")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")

    def on_open(self) -> None:
        log.debug("writing synthesis to %s", self.path)

    def on_event(self, message: str) -> None:
        log.debug("synthesis event %s", message)

    def on_data(self, data: bytes) -> None:
        self._file.write(data)

    def on_complete(self) -> None:
        self._file.close()
        try:
            with self._app.app_context():
                self.url = store_tmp_audio(self.path.read_bytes(), self.format)
        finally:
            self.path.unlink(missing_ok=True)
        if self.on_complete_callback:
            self.on_complete_callback(self.url)

    def on_error(self, message: str) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)
        if self.on_error_callback:
            self.on_error_callback(str(message))

    def on_close(self) -> None:
        if not self._file.closed:
            self._file.close()


class AliyunAPIService:
    """DashScope through the same engines as the rest of the service.

    ``api_key`` overrides ``DASHSCOPE_API_KEY`` for this instance; the engine names can
    be changed too (the local engines implement the same interfaces).
    """

    def __init__(self, api_key: str | None = None, *, tts_engine: str = "dashscope",
                 stt_engine: str = "qwen-audio", llm_engine: str = "qwen",
                 tts_model: str | None = None) -> None:
        self.app = _app()
        settings = dict(self.app.config)
        if api_key:
            settings["DASHSCOPE_API_KEY"] = api_key
        if tts_model:
            settings["DASHSCOPE_TTS_MODEL"] = tts_model
        self.api_key = settings.get("DASHSCOPE_API_KEY")
        self.registry = ProviderRegistry(settings)
        self.tts_engine, self.stt_engine, self.llm_engine = tts_engine, stt_engine, llm_engine

    @_in_app
    def recognize_audio(self, audio_url: str, prompt: str | None = None) -> str:
        """Speech in the audio at ``audio_url`` as text (Qwen-Audio fetches the URL)."""
        if audio_url.startswith("/"):
            audio_url = urls.absolute(audio_url)
        params = {"prompt": prompt} if prompt else {}
        return self.registry.stt(self.stt_engine).transcribe(audio_url,
                                                             additional_params=params).text

    def _encoded_chunks(self, text: str, voice_id: str | None) -> EncodedStream:
        return EncodedStream(self.registry.tts(self.tts_engine), text,
                             SynthesisOptions(voice=voice_id), "mp3")

    @_in_app
    def synthesize_speech(self, text: str, voice_id: str | None = None) -> str:
        """Synthesize ``text`` and return the URL of the stored MP3."""
        data = b"".join(self._encoded_chunks(text, voice_id))
        if not data:
            raise ProviderError(self.tts_engine, "task_failed", "no audio was produced")
        return store_tmp_audio(data)

    def synthesize_speech_async(self, text: str, voice_id: str | None = None,
                                on_complete: Callable[[str], Any] | None = None,
                                on_error: Callable[[str], Any] | None = None) -> Any:
        """Synthesize in the background; the URL (or the error) arrives by callback."""

        def run() -> None:
            with self.app.app_context():
                try:
                    url = self.synthesize_speech(text, voice_id)
                except Exception as exc:  # noqa: BLE001 - reported through the callback
                    if on_error:
                        on_error(str(exc))
                    return
                if on_complete:
                    on_complete(url)

        return spawn(run)

    @_in_app
    def synthesize_speech_streaming(self, text: str, voice_id: str | None = None,
                                    callback: ResultCallback | None = None) -> None:
        """Synthesize, handing MP3 pieces to ``callback.on_data`` as they are made."""
        callback = callback or FileWriterCallback()
        callback.on_open()
        try:
            for data in self._encoded_chunks(text, voice_id):
                callback.on_data(data)
        except Exception as exc:  # noqa: BLE001 - reported through the callback
            callback.on_error(str(exc))
        else:
            callback.on_event(json.dumps({"header": {"event": "task-finished"}}))
            callback.on_complete()
        finally:
            callback.on_close()

    @_in_app
    def stream_llm_with_tts(
        self, prompt: str, system_prompt: str | None = None, voice_id: str | None = None,
        llm_model: str = "qwen-turbo", tts_model: str = "cosyvoice-v2",
        on_text_chunk: Callable[[str], Any] | None = None,
        on_audio_chunk: Callable[[bytes], Any] | None = None,
        on_error: Callable[[str], Any] | None = None,
        on_complete: Callable[[], Any] | None = None,
        cancel: threading.Event | None = None,
    ) -> str:
        """Stream the LLM's reply and speak it sentence by sentence while it is written.

        ``on_audio_chunk`` gets MP3 bytes in order. Returns the reply's text.
        """
        service = self
        if tts_model != self.registry.config.get("DASHSCOPE_TTS_MODEL"):
            service = AliyunAPIService(self.api_key, tts_engine=self.tts_engine,
                                       stt_engine=self.stt_engine, llm_engine=self.llm_engine,
                                       tts_model=tts_model)
        messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
            {"role": "user", "content": prompt}]
        out = OutgoingAudio("mp3")

        def audio_out(chunk: AudioChunk) -> None:
            data = out.write(chunk.pcm, chunk.sample_rate)
            if data and on_audio_chunk:
                on_audio_chunk(data)

        try:
            reply = stream_reply(
                service.registry.llm(self.llm_engine), messages,
                service.registry.tts(self.tts_engine), SynthesisOptions(voice=voice_id),
                chat_options=ChatOptions(model=llm_model), on_text=on_text_chunk,
                on_audio=audio_out, cancel=cancel)
        except Exception as exc:
            if on_error is None:
                raise
            on_error(str(exc))
            return ""
        tail = out.close()
        if tail and on_audio_chunk:
            on_audio_chunk(tail)
        if on_complete:
            on_complete()
        return reply.text
