"""A spoken reply, streamed: the LLM's text is cut into sentences as it arrives and each
sentence is synthesized while the next is still being generated.

Generation runs in a background task; synthesis runs in the caller. Audio is handed
to ``on_audio`` strictly in order. Setting ``cancel`` stops both within one chunk,
and the result says what was actually delivered.

A provider that fails before anything was streamed raises its ``ProviderError``; one
that fails after text or audio went out ends the reply as interrupted, with the error
in ``SpokenReply.error``, so the part the client already has can be stored as such.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webapp.app.concurrency import spawn
from webapp.app.providers.base import (
    AudioChunk,
    ChatModelInterface,
    ChatOptions,
    ProviderError,
    SynthesisOptions,
    TextToSpeechInterface,
)
from webapp.app.sentences import SentenceCutter

_END = object()
_POLL = 0.02


@dataclass
class SpokenReply:
    """What was written (``text``), what of it was heard to the end (``spoken_text``),
    whether it was cut short and why, and the reply's timings in ms."""

    text: str = ""
    spoken_text: str = ""
    interrupted: bool = False
    error: ProviderError | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)


def stream_reply(
    llm: ChatModelInterface, messages: list[dict[str, str]], tts: TextToSpeechInterface | None,
    tts_options: SynthesisOptions, *, chat_options: ChatOptions | None = None,
    on_text: Callable[[str], None] | None = None,
    on_audio: Callable[[AudioChunk], None] | None = None,
    cancel: threading.Event | None = None, started: float | None = None,
) -> SpokenReply:
    """Generate and speak a reply; ``tts=None`` generates text only."""
    cancel = cancel or threading.Event()
    started = started or time.perf_counter()
    reply = SpokenReply()
    sentences: queue.Queue[Any] = queue.Queue()
    text_parts: list[str] = []
    failure: list[BaseException] = []

    def generate() -> None:
        cutter = SentenceCutter()
        try:
            for delta in llm.stream_chat(messages, chat_options or ChatOptions()):
                if cancel.is_set():
                    return
                if not delta:
                    continue
                reply.timings.setdefault("llm_first_token_ms", _ms(started))
                text_parts.append(delta)
                if on_text:
                    on_text(delta)
                for sentence in cutter.feed(delta):
                    sentences.put(sentence)
            for sentence in cutter.flush():
                sentences.put(sentence)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)
        finally:
            reply.timings["llm_total_ms"] = _ms(started)
            sentences.put(_END)

    spawn(generate)
    spoken: list[str] = []
    audio_sent = False
    try:
        while True:
            try:
                sentence = sentences.get(timeout=_POLL)
            except queue.Empty:
                if cancel.is_set():
                    break
                continue
            if sentence is _END or cancel.is_set():
                break
            reply.timings.setdefault("first_sentence_ms", _ms(started))
            if tts is None:
                spoken.append(sentence)
                continue
            chunks = tts.synthesize_sentence(sentence, tts_options)
            try:
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    reply.timings.setdefault("first_audio_ms", _ms(started))
                    audio_sent = audio_sent or bool(chunk.pcm)
                    if on_audio:
                        on_audio(chunk)
                    if cancel.is_set():
                        break  # cut while being delivered: this sentence was not all heard
                else:
                    spoken.append(sentence)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
    except ProviderError as exc:
        cancel.set()
        if not (text_parts or audio_sent):
            raise
        reply.error = exc
    except BaseException:
        cancel.set()
        raise
    if failure and reply.error is None and not cancel.is_set():
        if not (text_parts or audio_sent) or not isinstance(failure[0], ProviderError):
            raise failure[0]
        reply.error = failure[0]
    reply.interrupted = cancel.is_set() or reply.error is not None
    reply.text = "".join(text_parts)
    reply.spoken_text = "".join(spoken)
    reply.timings["total_ms"] = _ms(started)
    return reply
