"""Moonshine tiny-en: English recognition whose cost follows the audio's length.

Whisper always encodes a 30-second window, so even a one-second clip costs as much as
a long one; Moonshine encodes only the audio it is given (≈0.15 s for a 3 s sentence on
a quiet core), which is what a live call needs to recognise a turn as it ends and to
re-read the growing turn for partial transcripts. ``moonshine-voice`` 0.0.4 ships the
model in its wheel (later releases download it, which an offline server cannot).

It invents words on silence like Whisper does, so only audio that voice activity
detection passed should reach it. Its native library crashes the process (SIGSEGV) when
two models, even separate ones, transcribe at the same moment on different threads, so
one model serves the process and every read takes its turn behind a real lock.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from webapp.app.audio import ACCEPTED_FORMATS, AudioError, dsp, pcm_to_float
from webapp.app.concurrency import real_lock
from webapp.app.providers.base import (
    Capabilities,
    LocalModelSpeechToText,
    ProviderError,
    Segment,
    Transcription,
)

SAMPLE_RATE = 16000
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
                                sample_rate=SAMPLE_RATE, controls=())

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self._model: Any = None
        self._load_lock = real_lock()
        self._lock = real_lock()

    def is_configured(self) -> bool:
        try:
            return (_model_dir() / "encoder_model.ort").is_file()
        except ProviderError:
            return False

    def _loaded(self) -> Any:
        """The model, loaded on first use (≈0.5 s), then shared."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                try:
                    from moonshine_voice import ModelArch, Transcriber

                    self._model = Transcriber(model_path=str(_model_dir()),
                                              model_arch=ModelArch.TINY)
                except Exception as exc:
                    raise ProviderError(self.name, "unavailable",
                                        f"cannot load Moonshine: {exc}") from exc
            return self._model

    def warm_up(self) -> None:
        self._loaded()

    def transcribe_pcm(self, pcm: bytes) -> str:
        """Text of 16 kHz mono PCM. CPU-bound: run it off the event loop."""
        if not pcm:
            return ""
        model = self._loaded()
        samples = pcm_to_float(pcm).tolist()
        with self._lock:
            try:
                transcript = model.transcribe_without_streaming(samples, SAMPLE_RATE)
            except Exception as exc:
                raise ProviderError(self.name, "task_failed",
                                    f"recognition failed: {exc}") from exc
        # A model keeps the lines of its previous transcription and returns them again
        # (marked not updated, and starting past the end of shorter audio): only this
        # audio's own lines count.
        seconds = len(pcm) / 2 / SAMPLE_RATE
        text = " ".join(line.text.strip() for line in transcript.lines
                        if line.is_updated and line.start_time < seconds and line.text.strip())
        # On live turns tiny-en sometimes wraps the whole sentence in quotation marks
        # nobody said (which also hides a question's "?" from whoever reads the text).
        return text.strip(_QUOTES)

    def transcribe(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Transcription:
        try:
            pcm = dsp.pcm_from_source(audio_file, SAMPLE_RATE)
        except AudioError as exc:
            raise ProviderError(self.name, "bad_input", f"audio: {exc}") from exc
        return self.transcribe_decoded(pcm, language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        if language and not language.lower().startswith("en"):
            raise ProviderError(self.name, "bad_input", "Moonshine tiny-en recognises English only")
        self._record_heard(pcm, SAMPLE_RATE)
        duration = round(len(pcm) / 2 / SAMPLE_RATE, 3)
        text = self.transcribe_pcm(pcm)
        segments = [Segment(start=0.0, end=duration, text=text)] if text else []
        return Transcription(text=text, language="en", duration=duration, segments=segments)
