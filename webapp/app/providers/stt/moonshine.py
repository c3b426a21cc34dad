"""Moonshine tiny-en: English recognition whose cost follows the audio's length.

Whisper always encodes a 30-second window, so even a one-second clip costs as much as
a long one; Moonshine encodes only the audio it is given (≈0.15 s for a 3 s sentence on
a quiet core), which is what a live call needs to recognise a turn as it ends and to
re-read the growing turn for partial transcripts. ``moonshine-voice`` 0.0.4 ships the
model in its wheel (later releases download it, which an offline server cannot).

It invents words on silence like Whisper does, so only audio that voice activity
detection passed should reach it. Its native library crashes the process (SIGSEGV) when
two models, even separate ones, transcribe at the same moment on different threads, so
every model lives in a child process of its own (``hosts/moonshine_host.py``), reading
one piece of audio at a time: up to ``MOONSHINE_PROCESSES`` (default: one per core) read
side by side, a read that finds them all busy waits for the first free one, and a
crash costs that one read, not the web process. One starts at warm-up, more when reads
overlap; each costs ≈1 s to start on a quiet machine and ≈250 MB of resident memory
(the README's Capacity section has the figures).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from webapp.app.audio import ACCEPTED_FORMATS, SPEECH_SAMPLE_RATE, AudioError, dsp
from webapp.app.concurrency import real_lock, real_queue
from webapp.app.providers.base import (
    Capabilities,
    LocalModelSpeechToText,
    ProviderError,
    Segment,
    Transcription,
)
from webapp.app.providers.host_process import ChildProcess

_QUOTES = " \"'“”‘’"


def _model_dir() -> Path:
    spec = importlib.util.find_spec("moonshine_voice")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("moonshine", "not_configured", "moonshine-voice is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "tiny-en"


class MoonshineSpeechToText(LocalModelSpeechToText):
    """Offline English recognition, fast on short audio."""

    name = "moonshine"
    capabilities = Capabilities(streaming=True, cloning=False, emotion=False,
                                languages=("en",), formats=ACCEPTED_FORMATS,
                                sample_rate=SPEECH_SAMPLE_RATE, controls=())

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.processes = max(1, int(config.get("MOONSHINE_PROCESSES") or os.cpu_count() or 1))
        self._idle = real_queue()
        self._started = 0
        self._count_lock = real_lock()

    def is_configured(self) -> bool:
        try:
            return (_model_dir() / "encoder_model.ort").is_file()
        except ProviderError:
            return False

    def _start_reader(self) -> ChildProcess:
        """A new model process, once it has loaded its model (≈1 s)."""
        reader = ChildProcess("moonshine_host.py", str(_model_dir()))
        try:
            answer = reader.receive()
        except OSError:
            answer = None
        if answer is None or answer[0].get("kind") != "ready":
            reader.close()
            raise ProviderError(self.name, "unavailable", "cannot load Moonshine")
        return reader

    def _take_reader(self) -> ChildProcess:
        """An idle model process; a new one while fewer than ``processes`` run, else
        the first to come free."""
        with self._count_lock:
            start_one = self._idle.empty() and self._started < self.processes
            if start_one:
                self._started += 1
        if not start_one:
            return self._idle.get()
        try:
            return self._start_reader()
        except BaseException:
            self._forget_reader()
            raise

    def _forget_reader(self) -> None:
        with self._count_lock:
            self._started -= 1

    def warm_up(self) -> None:
        """Start one model process now rather than on the first read; more start when
        reads overlap."""
        self._idle.put(self._take_reader())

    def _read_lines(self, pcm: bytes) -> list[list[Any]]:
        reader = self._take_reader()
        try:
            reader.send({"kind": "read"}, pcm)
            answer = reader.receive()
        except OSError:
            answer = None
        if answer is None:
            # The model process died (Moonshine crashed on this audio): only this read
            # is lost, and the next one starts a new process.
            reader.close()
            self._forget_reader()
            raise ProviderError(self.name, "task_failed", "the Moonshine process stopped "
                                "while reading", transient=True)
        self._idle.put(reader)
        header, _ = answer
        if header["kind"] != "lines":
            raise ProviderError(self.name, "task_failed",
                                f"recognition failed: {header.get('message')}")
        return header["lines"]

    def transcribe_pcm(self, pcm: bytes) -> str:
        """Text of 16 kHz mono PCM. It waits for a model process: call it off the loop."""
        if not pcm:
            return ""
        lines = self._read_lines(pcm)
        # A model keeps the lines of its previous transcription and returns them again
        # (marked not updated, and starting past the end of shorter audio): only this
        # audio's own lines count.
        seconds = len(pcm) / 2 / SPEECH_SAMPLE_RATE
        text = " ".join(str(text).strip() for text, start, updated in lines
                        if updated and start < seconds and str(text).strip())
        # On live turns tiny-en sometimes wraps the whole sentence in quotation marks
        # nobody said (which also hides a question's "?" from whoever reads the text).
        return text.strip(_QUOTES)

    def transcribe(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Transcription:
        try:
            pcm = dsp.pcm_from_source(audio_file, SPEECH_SAMPLE_RATE)
        except AudioError as exc:
            raise ProviderError(self.name, "bad_input", f"audio: {exc}") from exc
        return self.transcribe_decoded(pcm, language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        if language and not language.lower().startswith("en"):
            raise ProviderError(self.name, "bad_input", "Moonshine tiny-en recognises English only")
        self._record_heard(pcm, SPEECH_SAMPLE_RATE)
        duration = round(len(pcm) / 2 / SPEECH_SAMPLE_RATE, 3)
        text = self.transcribe_pcm(pcm)
        segments = [Segment(start=0.0, end=duration, text=text)] if text else []
        return Transcription(text=text, language="en", duration=duration, segments=segments)
