"""Engines that compute on this machine, made safe to call from the event loop.

The registry wraps every engine that declares ``cpu_bound`` in one of these adapters,
once, when it builds it; so no caller decides where an engine runs. Synthesis and
recognition go to the thread pool through ``concurrency`` (outside eventlet they run
where they are called); streamed output comes back one piece per trip, so the first
audio or segment is out while the rest is still being made. Everything else (name,
capabilities, voices, settings, warm-up) is the wrapped engine's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from webapp.app.concurrency import iterate_blocking, run_blocking
from webapp.app.providers.base import (
    AudioChunk,
    Segment,
    SpeechToTextInterface,
    SynthesisOptions,
    TextToSpeechInterface,
    Transcription,
)

T = TypeVar("T")


def _later(make: Callable[..., Iterator[T]], *args: Any) -> Iterator[T]:
    """``make(*args)`` started on the first ``next``, so that even an engine that works
    before its first ``yield`` does that work in the thread pool."""
    yield from make(*args)


class _Offloaded:
    """What both adapters share: the engine, and everything not wrapped is its own."""

    cpu_bound = False  # the adapter itself may be called from the loop

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        if name == "engine":  # not set yet: never recurse
            raise AttributeError(name)
        return getattr(self.engine, name)

    def __repr__(self) -> str:
        return f"offloaded({self.engine!r})"


class OffloadedTextToSpeech(_Offloaded):
    """A local TTS engine whose synthesis runs in the thread pool."""

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        return iterate_blocking(_later(self.engine.synthesize_sentence, text, options))

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        return iterate_blocking(_later(self.engine.synthesize_stream, text, options))

    def synthesize(self, text: str, options: SynthesisOptions) -> AudioChunk:
        return run_blocking(self.engine.synthesize, text, options)


class OffloadedSpeechToText(_Offloaded):
    """A local STT engine whose recognition runs in the thread pool."""

    def transcribe(self, audio_file: bytes | str, language: str | None = None,
                   additional_params: dict[str, Any] | None = None) -> Transcription:
        return run_blocking(self.engine.transcribe, audio_file, language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        return run_blocking(self.engine.transcribe_decoded, pcm, language, additional_params)

    def transcribe_segments(self, audio_file: bytes | str, language: str | None = None,
                            additional_params: dict[str, Any] | None = None
                            ) -> Iterator[Segment]:
        return iterate_blocking(_later(self.engine.transcribe_segments, audio_file, language,
                                       additional_params))

    # The interface's own hand-over, made through this adapter's offloaded calls (the
    # recording is fetched or decoded on the calling side, where the service's helpers run).
    transcribe_input = SpeechToTextInterface.transcribe_input


TextToSpeechInterface.register(OffloadedTextToSpeech)
SpeechToTextInterface.register(OffloadedSpeechToText)


def loop_safe(kind: str, engine: T) -> T:
    """``engine`` as callers get it: wrapped when it computes on this machine."""
    if not getattr(engine, "cpu_bound", False):
        return engine
    adapter = {"tts": OffloadedTextToSpeech, "stt": OffloadedSpeechToText}.get(kind)
    return adapter(engine) if adapter else engine  # type: ignore[return-value]
