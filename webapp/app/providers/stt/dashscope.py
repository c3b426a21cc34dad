"""DashScope speech recognition through the official SDK: Paraformer and Qwen-Audio.

Settings: ``DASHSCOPE_API_KEY`` (required), ``DASHSCOPE_ASR_MODEL`` (default
``paraformer-realtime-v2``), ``DASHSCOPE_AUDIO_MODEL`` (default ``qwen-audio-turbo``),
``DASHSCOPE_TIMEOUT`` and the endpoint settings read by ``dashscope_sdk``.

Paraformer takes audio bytes and streams them over a websocket; Qwen-Audio takes a URL
and fetches the audio itself. The SDK's real-time recogniser runs an asyncio loop on a
thread of its own; under eventlet every such thread shares one OS thread, where a second
loop fails silently, so Paraformer runs in a child process of each web process
(``hosts/paraformer_host.py``) on real threads, any number at once. Its results come
back over a socket that a green thread reads (nothing is emitted from a real thread).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashscope import MultiModalConversation
from dashscope.audio.asr import RecognitionResult
from dashscope.common.error import InputRequired, InvalidParameter

from webapp.app import audio
from webapp.app.audio import ACCEPTED_FORMATS, SPEECH_SAMPLE_RATE, AudioError
from webapp.app.concurrency import real_lock, run_blocking, spawn
from webapp.app.providers.base import (
    Capabilities,
    ProviderError,
    Segment,
    ThirdPartyAPISpeechToText,
    Transcription,
    Word,
)
from webapp.app.providers.dashscope_sdk import (
    SDK_ERRORS,
    TIMEOUT_HINT,
    DashScopeSettings,
    about_to_call,
    provider_error,
    raise_for_status,
)
from webapp.app.providers.host_process import ChildProcess

DEFAULT_ASR_MODEL = "paraformer-realtime-v2"
DEFAULT_AUDIO_MODEL = "qwen-audio-turbo"
DEFAULT_PROMPT = "请将这段语音准确转换为文字"
RECOGNITION_OPTIONS = frozenset({
    "language_hints", "vocabulary_id", "phrase_id", "disfluency_removal_enabled",
    "semantic_punctuation_enabled", "max_sentence_silence", "special_word_filter",
})
"""``additional_params`` passed on to Paraformer; anything else is not its business."""

SEND_BYTES = 12800
"""Audio already recorded goes to Paraformer in pieces of this size, as the SDK sends it."""
_RAISED = {"TimeoutError": TimeoutError, "ConnectionError": ConnectionError,
           "InvalidParameter": InvalidParameter, "InputRequired": InputRequired}


@dataclass(frozen=True)
class _Refusal:
    """A failure the service answered with, shaped as ``provider_error`` reads SDK results."""

    status_code: int | None
    code: str
    message: str


class RecognitionHost:
    """This process's Paraformer child and the streams open in it.

    The child starts when the engine is built (from any thread; it takes a second or two
    to load the SDK). The first stream, opened on the green side, starts one green thread
    (a daemon thread outside eventlet) that reads the child's answers and hands each to
    its stream; writes take turns behind a lock. When the child dies every open stream
    fails, and the next recognition starts a new child.
    """

    def __init__(self) -> None:
        self.child = ChildProcess("paraformer_host.py")
        self.adopt_lock = real_lock()
        self.streams: dict[int, ParaformerStream] = {}
        self.ids = itertools.count(1)
        self.alive = True
        self.reading = False
        # Green under eventlet: a send waits for room in the socket without the loop
        # stopping, so a real lock held across it could block the loop.
        self.send_lock = threading.Lock()

    def open(self, stream: ParaformerStream, request: dict[str, Any]) -> int:
        with self.adopt_lock:
            if not self.reading:
                self.reading = True
                self.child.adopt()
                spawn(self._read)
        stream_id = next(self.ids)
        self.streams[stream_id] = stream
        self._send({"kind": "open", "id": stream_id, **request})
        return stream_id

    def audio(self, stream_id: int, pcm: bytes) -> None:
        self._send({"kind": "audio", "id": stream_id}, pcm)

    def finish(self, stream_id: int) -> None:
        self._send({"kind": "finish", "id": stream_id})

    def _send(self, header: dict[str, Any], body: bytes = b"") -> None:
        try:
            with self.send_lock:
                self.child.send(header, body)
        except OSError as exc:
            self._fail_all()
            raise ProviderError("paraformer", "unavailable",
                                f"the recognition process stopped: {exc}", transient=True) from exc

    def _read(self) -> None:
        while (message := self._receive()) is not None:
            header, _ = message
            stream = self.streams.get(int(header["id"]))
            if stream is None:
                continue
            if header["kind"] == "done":
                del self.streams[int(header["id"])]
            stream.deliver(header)
        self._fail_all()

    def _receive(self) -> tuple[dict[str, Any], bytes] | None:
        try:
            return self.child.receive()
        except OSError:
            return None

    def _fail_all(self) -> None:
        if not self.alive:
            return
        self.alive = False
        streams, self.streams = list(self.streams.values()), {}
        for stream in streams:
            stream.deliver({"kind": "error", "exception": "ConnectionError",
                            "message": "the recognition process stopped"})
        self.child.close()


_host_lock = real_lock()
_hosts: dict[int, RecognitionHost] = {}


def recognition_host() -> RecognitionHost:
    """This process's recognition child, started on first use (and again after it died;
    a forked worker starts its own)."""
    with _host_lock:
        host = _hosts.get(os.getpid())
    if host is not None and host.alive:
        return host
    # Started outside the lock: starting a child can let other green threads run, and one
    # of them waiting on this (real) lock would stop the event loop with it.
    started = RecognitionHost()
    with _host_lock:
        host = _hosts.get(os.getpid())
        if host is None or not host.alive:
            host = _hosts[os.getpid()] = started
    if host is not started:
        started.child.close()  # another thread's child came first
    return host


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _words(sentence: dict[str, Any]) -> list[Word]:
    """Paraformer times every word (every character, in Chinese) in milliseconds."""
    return [Word(word=str(w.get("text") or "") + str(w.get("punctuation") or ""),
                 start=(w.get("begin_time") or 0) / 1000, end=(w.get("end_time") or 0) / 1000)
            for w in sentence.get("words") or [] if w.get("text")]


class _DashScopeSpeechToText(ThirdPartyAPISpeechToText):
    """What both DashScope recognisers share: settings, the model setting, capabilities."""

    model_setting = ""
    default_model = ""
    capabilities = Capabilities(streaming=False, cloning=False, emotion=False,
                                languages=("zh", "en"), formats=ACCEPTED_FORMATS,
                                sample_rate=SPEECH_SAMPLE_RATE, controls=())

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.settings = DashScopeSettings.from_config(config)
        self.model = str(config.get(self.model_setting) or self.default_model)
    def is_configured(self) -> bool:
        return self.settings.configured


class ParaformerSpeechToText(_DashScopeSpeechToText):
    """Paraformer real-time recognition of uploaded audio, with sentence timings."""

    name = "paraformer"
    model_setting = "DASHSCOPE_ASR_MODEL"
    default_model = DEFAULT_ASR_MODEL

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        if self.is_configured():
            recognition_host()  # started now, so that it is ready by the first call

    def transcribe(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Transcription:
        """Decode to 16 kHz PCM (in the thread pool: it is CPU work) and recognise it."""
        if isinstance(audio_file, str):
            raise ProviderError(self.name, "bad_input",
                                "Paraformer takes audio bytes, not a URL or path")
        about_to_call(self.name, self.settings)
        try:
            pcm = run_blocking(audio.decode_pcm, bytes(audio_file), SPEECH_SAMPLE_RATE)
        except AudioError as exc:
            raise ProviderError(self.name, "bad_input", str(exc)) from exc
        return self.transcribe_decoded(pcm, language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        """Recognise 16 kHz mono PCM: streamed to Paraformer as it is."""
        about_to_call(self.name, self.settings)
        self._record_heard(pcm, SPEECH_SAMPLE_RATE)
        duration = audio.pcm_duration(pcm, SPEECH_SAMPLE_RATE)
        if not pcm:
            return Transcription(text="", language=language, duration=0.0)
        options = {k: v for k, v in (additional_params or {}).items()
                   if k in RECOGNITION_OPTIONS}
        if language:
            options.setdefault("language_hints", [language.split("-")[0].lower()])
        stream = self.open_stream(language, options)
        for start in range(0, len(pcm), SEND_BYTES):
            stream.send(pcm[start:start + SEND_BYTES])
        stream.wait_done()
        segments = [
            Segment(start=(s.get("begin_time") or 0) / 1000, end=(s.get("end_time") or 0) / 1000,
                    text=str(s.get("text") or ""), words=_words(s))
            for s in stream.final.values()
        ]
        return Transcription(text="".join(s.text for s in segments), language=language,
                             duration=duration, segments=segments)

    def open_stream(self, language: str | None,
                    options: dict[str, Any] | None = None) -> ParaformerStream:
        """A live recognition to send a turn to as it is spoken; any number may be open
        at once."""
        about_to_call(self.name, self.settings)
        options = dict(options or {})
        if language:
            options.setdefault("language_hints", [language.split("-")[0].lower()])
        return ParaformerStream(self, language, options)


class ParaformerStream:
    """One live Paraformer task in the recognition child: PCM sent as it comes
    (``send``), the text heard so far (``text``, from the service's interim results), the
    final sentences once ``finish`` ends the task."""

    def __init__(self, engine: ParaformerSpeechToText, language: str | None,
                 options: dict[str, Any]) -> None:
        self.engine, self.language = engine, language
        self.final: dict[Any, dict[str, Any]] = {}
        self.interim = ""
        self.failure: Any = None
        self.done = threading.Event()
        self.closing = False
        settings = engine.settings
        self.host = recognition_host()
        self.id = self.host.open(self, {
            "model": engine.model, "sample_rate": SPEECH_SAMPLE_RATE, "options": options,
            "api_key": settings.api_key, "url": settings.websocket_url,
            "timeout": settings.timeout})

    def deliver(self, message: dict[str, Any]) -> None:
        """An answer from the child, on the host's reading thread (green under eventlet)."""
        kind = message["kind"]
        if kind == "sentence":
            sentence = message["sentence"]
            key = sentence.get("sentence_id", sentence.get("begin_time"))
            if RecognitionResult.is_sentence_end(sentence):
                self.final[key] = sentence
                self.interim = ""
            else:
                self.interim = str(sentence.get("text") or "")
            return
        if kind == "error" and self.failure is None:
            raised = _RAISED.get(str(message.get("exception")))
            self.failure = raised(message["message"]) if raised else (
                _Refusal(message.get("status_code"), str(message.get("code") or ""),
                         str(message.get("message") or "")) if "status_code" in message
                else RuntimeError(message["message"]))
        self.done.set()

    @property
    def text(self) -> str:
        return "".join([*(str(s.get("text") or "") for s in self.final.values()),
                        self.interim])

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise provider_error(self.engine.name, self.failure, "live recognition")

    def send(self, pcm: bytes) -> None:
        self._raise_failure()
        if pcm:
            self.host.audio(self.id, pcm)

    def _close(self) -> None:
        """End the task: the service then sends its last sentences."""
        if self.closing:
            return
        self.closing = True
        if not self.done.is_set():
            self.host.finish(self.id)

    def wait_done(self) -> None:
        """End the task and wait for its last sentences (at most DASHSCOPE_TIMEOUT)."""
        self._close()
        if not self.done.wait(self.engine.settings.timeout):
            raise ProviderError(self.engine.name, "timeout",
                                f"DashScope live recognition {TIMEOUT_HINT}", transient=True)
        self._raise_failure()

    def finish(self) -> Transcription:
        """The whole turn's text, once the service has ended the task."""
        self.wait_done()
        return Transcription(text="".join(str(s.get("text") or "")
                                          for s in self.final.values()) or self.interim,
                             language=self.language)

    def cancel(self) -> None:
        self._close()


class QwenAudioSpeechToText(_DashScopeSpeechToText):
    """Qwen-Audio transcription of audio at a URL (DashScope fetches it)."""

    name = "qwen-audio"
    input_kind = "url"
    model_setting = "DASHSCOPE_AUDIO_MODEL"
    default_model = DEFAULT_AUDIO_MODEL

    def transcribe(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Transcription:
        """Ask Qwen-Audio for the text; ``additional_params["prompt"]`` replaces the ask."""
        if not isinstance(audio_file, str) or not _is_url(audio_file):
            raise ProviderError(self.name, "bad_input",
                                "Qwen-Audio fetches audio itself: pass an http(s) URL")
        about_to_call(self.name, self.settings)
        prompt = str((additional_params or {}).get("prompt") or DEFAULT_PROMPT)
        messages = [{"role": "user", "content": [{"audio": audio_file}, {"text": prompt}]}]
        try:
            response = MultiModalConversation.call(model=self.model, messages=messages,
                                                   **self.settings.http_kwargs())
        except SDK_ERRORS as exc:
            raise provider_error(self.name, exc, "audio transcription") from exc
        raise_for_status(self.name, response, "audio transcription")
        try:
            content = response.output.choices[0].message.content
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise ProviderError(self.name, "task_failed",
                                "Qwen-Audio answered without a transcript") from exc
        if isinstance(content, list):
            text = "".join(str(item.get("text") or "") for item in content
                           if isinstance(item, dict))
        else:
            text = str(content or "")
        return Transcription(text=text.strip(), language=language)
