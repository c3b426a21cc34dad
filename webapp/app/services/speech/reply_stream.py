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
from webapp.app.sentences import SentenceCutter, join_sentences

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
    # Each sentence heard to the end, with the second of the reply's audio it ends at.
    sentence_ends: list[tuple[str, float]] = field(default_factory=list)

    def heard_text(self, seconds: float) -> str:
        """The sentences whose audio had all been played after ``seconds`` of it."""
        # Half a window of slack: a device reports its position a little behind.
        return "".join(s for s, end in self.sentence_ends if end <= seconds + 0.05)


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
    streamer = _Streamer(llm, messages, chat_options or ChatOptions(), on_text,
                         cancel or threading.Event(), started or time.perf_counter())
    return streamer.run(tts, tts_options, on_audio)


class _Streamer:
    """One reply: the writer (a background task) feeds sentences to the speaker (the
    caller), and each side stops as soon as ``cancel`` is set."""

    def __init__(self, llm: ChatModelInterface, messages: list[dict[str, str]],
                 chat_options: ChatOptions, on_text: Callable[[str], None] | None,
                 cancel: threading.Event, started: float) -> None:
        self.llm, self.messages, self.chat_options = llm, messages, chat_options
        self.on_text, self.cancel, self.started = on_text, cancel, started
        self.reply = SpokenReply()
        self.sentences: queue.Queue[Any] = queue.Queue()
        self.text_parts: list[str] = []
        self.spoken: list[str] = []
        self.failure: list[BaseException] = []
        self.audio_sent = False
        self.audio_seconds = 0.0

    def _write(self) -> None:
        """The LLM's deltas, told as they come and cut into sentences for the speaker."""
        cutter = SentenceCutter()
        try:
            for delta in self.llm.stream_chat(self.messages, self.chat_options):
                if self.cancel.is_set():
                    return
                if not delta:
                    continue
                self.reply.timings.setdefault("llm_first_token_ms", _ms(self.started))
                self.text_parts.append(delta)
                if self.on_text:
                    self.on_text(delta)
                for sentence in cutter.feed(delta):
                    self.sentences.put(sentence)
            for sentence in cutter.flush():
                self.sentences.put(sentence)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.failure.append(exc)
        finally:
            self.reply.timings["llm_total_ms"] = _ms(self.started)
            self.sentences.put(_END)

    def _next_sentence(self) -> str | None:
        """The next sentence, or None once the writer is done or the reply is cancelled."""
        while True:
            try:
                sentence = self.sentences.get(timeout=_POLL)
            except queue.Empty:
                if self.cancel.is_set():
                    return None
                continue
            return None if sentence is _END or self.cancel.is_set() else sentence

    def _speak(self, sentence: str, tts: TextToSpeechInterface, options: SynthesisOptions,
               on_audio: Callable[[AudioChunk], None] | None) -> None:
        """Synthesize one sentence into ``on_audio``; it counts as spoken only if all of
        it went out before a cancel."""
        chunks = tts.synthesize_sentence(sentence, options)
        try:
            for chunk in chunks:
                if self.cancel.is_set():
                    return
                self.reply.timings.setdefault("first_audio_ms", _ms(self.started))
                self.audio_sent = self.audio_sent or bool(chunk.pcm)
                if on_audio:
                    on_audio(chunk)
                if self.cancel.is_set():
                    return  # cut while being delivered: this sentence was not all heard
                self.audio_seconds += len(chunk.pcm) / 2 / max(1, chunk.sample_rate)
            self.spoken.append(sentence)
            self.reply.sentence_ends.append((sentence, self.audio_seconds))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def run(self, tts: TextToSpeechInterface | None, options: SynthesisOptions,
            on_audio: Callable[[AudioChunk], None] | None) -> SpokenReply:
        spawn(self._write)
        reply = self.reply
        try:
            while (sentence := self._next_sentence()) is not None:
                reply.timings.setdefault("first_sentence_ms", _ms(self.started))
                if tts is None:
                    self.spoken.append(sentence)
                else:
                    self._speak(sentence, tts, options, on_audio)
        except ProviderError as exc:
            self.cancel.set()
            if not (self.text_parts or self.audio_sent):
                raise
            reply.error = exc
        except BaseException:
            self.cancel.set()
            raise
        self._settle_failure()
        reply.interrupted = self.cancel.is_set() or reply.error is not None
        reply.text = "".join(self.text_parts)
        reply.spoken_text = join_sentences(self.spoken)
        reply.timings["total_ms"] = _ms(self.started)
        return reply

    def _settle_failure(self) -> None:
        """A writer failure before anything went out is raised; after, it ends the reply
        as interrupted with the provider's error kept."""
        if not self.failure or self.reply.error is not None or self.cancel.is_set():
            return
        if not (self.text_parts or self.audio_sent) or not isinstance(self.failure[0],
                                                                       ProviderError):
            raise self.failure[0]
        self.reply.error = self.failure[0]
