"""DashScope speech recognition through the official SDK: Paraformer and Qwen-Audio.

Settings: ``DASHSCOPE_API_KEY`` (required), ``DASHSCOPE_ASR_MODEL`` (default
``paraformer-realtime-v2``), ``DASHSCOPE_AUDIO_MODEL`` (default ``qwen-audio-turbo``),
``DASHSCOPE_TIMEOUT`` and the endpoint settings read by ``dashscope_sdk``.

Paraformer takes audio bytes and streams them over a websocket; Qwen-Audio takes a URL
and fetches the audio itself. ``Recognition.call`` runs an asyncio loop on a thread of its
own; under eventlet every such thread shares one OS thread, where a second loop fails
silently (status -1), so recognitions run one at a time behind a semaphore that is green
when the process is. Call this engine from green threads, never from ``tpool``.
"""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

from dashscope import MultiModalConversation
from dashscope.audio.asr import Recognition, RecognitionCallback, RecognitionResult

from webapp.app import audio
from webapp.app.audio import ACCEPTED_FORMATS, AudioError
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

SAMPLE_RATE = 16000
DEFAULT_ASR_MODEL = "paraformer-realtime-v2"
DEFAULT_AUDIO_MODEL = "qwen-audio-turbo"
DEFAULT_PROMPT = "请将这段语音准确转换为文字"
RECOGNITION_OPTIONS = frozenset({
    "language_hints", "vocabulary_id", "phrase_id", "disfluency_removal_enabled",
    "semantic_punctuation_enabled", "max_sentence_silence", "special_word_filter",
})
"""``additional_params`` passed on to Paraformer; anything else is not its business."""

_gate_lock = real_lock()
_gate: list[threading.Semaphore] = []


def recognition_gate() -> threading.Semaphore:
    """The process-wide semaphore serialising ``Recognition.call``.

    Made on first use, so that in an eventlet process (patched before anything else) it
    is the green one.
    """
    with _gate_lock:
        if not _gate:
            _gate.append(threading.Semaphore(1))
        return _gate[0]


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
                                sample_rate=SAMPLE_RATE, controls=())

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
            pcm = run_blocking(audio.decode_pcm, bytes(audio_file), SAMPLE_RATE)
        except AudioError as exc:
            raise ProviderError(self.name, "bad_input", str(exc)) from exc
        return self.transcribe_decoded(pcm, language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        """Recognise 16 kHz mono PCM: streamed to Paraformer as it is."""
        about_to_call(self.name, self.settings)
        self._record_heard(pcm, SAMPLE_RATE)
        duration = audio.pcm_duration(pcm, SAMPLE_RATE)
        if not pcm:
            return Transcription(text="", language=language, duration=0.0)
        options = {k: v for k, v in (additional_params or {}).items()
                   if k in RECOGNITION_OPTIONS}
        if language:
            options.setdefault("language_hints", [language.split("-")[0].lower()])
        result = self._recognize(pcm, options)
        raise_for_status(self.name, result, "recognition")
        sentences = result.get_sentence() or []
        if isinstance(sentences, dict):
            sentences = [sentences]
        segments = [
            Segment(start=(s.get("begin_time") or 0) / 1000, end=(s.get("end_time") or 0) / 1000,
                    text=str(s.get("text") or ""), words=_words(s))
            for s in sentences
        ]
        return Transcription(text="".join(s.text for s in segments), language=language,
                             duration=duration, segments=segments)

    def _recognize(self, pcm: bytes, options: dict[str, Any]) -> RecognitionResult:
        """One ``Recognition.call`` behind the gate, waited for at most DASHSCOPE_TIMEOUT.

        The SDK offers no way to abort a call, so after a time-out the call finishes on
        its own worker, which keeps the gate until then: a second asyncio loop must never
        start beside it.
        """
        gate = recognition_gate()
        if not gate.acquire(timeout=self.settings.timeout):
            raise ProviderError(self.name, "timeout",
                                "DashScope recognition is busy with an earlier call",
                                transient=True)
        results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        try:
            fd, path = tempfile.mkstemp(suffix=".pcm")
            with os.fdopen(fd, "wb") as out:
                out.write(pcm)
        except OSError:
            gate.release()
            raise

        def work() -> None:
            try:
                recognition = Recognition(model=self.model, callback=None, format="pcm",
                                          sample_rate=SAMPLE_RATE,
                                          **self.settings.websocket_kwargs())
                results.put((True, recognition.call(path, **options)))
            except Exception as exc:  # noqa: BLE001 - handed to the caller through the queue
                results.put((False, exc))
            finally:
                os.unlink(path)
                gate.release()

        spawn(work)
        try:
            ok, value = results.get(timeout=self.settings.timeout)
        except queue.Empty:
            raise ProviderError(self.name, "timeout", f"DashScope recognition {TIMEOUT_HINT}",
                                transient=True) from None
        if not ok:
            raise provider_error(self.name, value, "recognition")
        return value


    def open_stream(self, language: str | None, wait: float | None = None
                    ) -> ParaformerStream | None:
        """A live recognition to send a turn to as it is spoken, or None when another
        recognition still holds the process's gate after ``wait`` seconds (default:
        ``DASHSCOPE_TIMEOUT``)."""
        about_to_call(self.name, self.settings)
        gate = recognition_gate()
        if not gate.acquire(timeout=self.settings.timeout if wait is None else wait):
            return None
        try:
            return ParaformerStream(self, language, gate)
        except BaseException:
            gate.release()
            raise


class ParaformerStream(RecognitionCallback):
    """One live Paraformer task: PCM sent as it comes (``send``), the text heard so far
    (``text``, from the service's interim results), the final sentences once ``finish``
    ends the task. Made by ``ParaformerSpeechToText.open_stream``; it holds the gate until
    the SDK's worker is really done, as ``_recognize`` does."""

    def __init__(self, engine: ParaformerSpeechToText, language: str | None,
                 gate: threading.Semaphore) -> None:
        super().__init__()
        self.engine, self.language, self.gate = engine, language, gate
        self.final: dict[Any, str] = {}
        self.interim = ""
        self.failure: RecognitionResult | None = None
        self.done = threading.Event()
        self.closing = False
        options = {"language_hints": [language.split("-")[0].lower()]} if language else {}
        self.recognition = Recognition(model=engine.model, callback=self, format="pcm",
                                       sample_rate=SAMPLE_RATE,
                                       **engine.settings.websocket_kwargs())
        try:
            self.recognition.start(**options)
        except SDK_ERRORS as exc:
            raise provider_error(engine.name, exc, "live recognition") from exc

    # The SDK's callbacks, on its worker thread (a green one under eventlet).
    def on_event(self, result: RecognitionResult) -> None:
        sentence = result.get_sentence()
        if not isinstance(sentence, dict):
            return
        key = sentence.get("sentence_id", sentence.get("begin_time"))
        if RecognitionResult.is_sentence_end(sentence):
            self.final[key] = str(sentence.get("text") or "")
            self.interim = ""
        else:
            self.interim = str(sentence.get("text") or "")

    def on_error(self, result: RecognitionResult) -> None:
        self.failure = result
        self.done.set()

    def on_complete(self) -> None:
        self.done.set()

    def on_close(self) -> None:
        self.done.set()

    @property
    def text(self) -> str:
        return "".join([*self.final.values(), self.interim])

    def send(self, pcm: bytes) -> None:
        if self.failure is not None:
            raise_for_status(self.engine.name, self.failure, "live recognition")
        if pcm:
            try:
                self.recognition.send_audio_frame(pcm)
            except SDK_ERRORS as exc:
                raise provider_error(self.engine.name, exc, "live recognition") from exc

    def _close(self) -> None:
        """End the task (the service then sends its last sentences) and free the gate."""
        if self.closing:
            return
        self.closing = True

        def stop() -> None:
            try:
                self.recognition.stop()
            except Exception:  # noqa: BLE001 - already stopped by a failure or a time-out
                pass
            finally:
                self.done.set()
                self.gate.release()

        spawn(stop)

    def finish(self) -> Transcription:
        """The whole turn's text, once the service has ended the task."""
        self._close()
        if not self.done.wait(self.engine.settings.timeout):
            raise ProviderError(self.engine.name, "timeout",
                                f"DashScope live recognition {TIMEOUT_HINT}", transient=True)
        if self.failure is not None:
            raise_for_status(self.engine.name, self.failure, "live recognition")
        return Transcription(text="".join(self.final.values()) or self.interim,
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
