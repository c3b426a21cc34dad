"""eSpeak NG: instant, robotic formant speech in 100+ languages, Mandarin included.

The only offline Chinese voice the service has. It drives libespeak-ng 1.52 from the
``espeakng_loader`` package through ctypes (Debian's 1.51 reads Mandarin tone digits as
English words). Setting: ``ESPEAK_DEFAULT_VOICE`` (default ``cmn``).

Voice ids are eSpeak voice names with an optional variant: ``cmn``, ``en-us``,
``en+f3``, ``cmn+m2``. The C library keeps one global state and is not thread-safe, so
it is initialised once per process and every call into it holds one OS lock.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
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

SAMPLE_RATE = 22050  # what libespeak-ng always produces
DEFAULT_VOICE = "cmn"
DEFAULT_RATE_WPM = 175
DEFAULT_PITCH = 50
DEFAULT_VOLUME = 100

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 0x1
_END_PAUSE = 0x1000
_RATE, _VOLUME, _PITCH = 1, 2, 3
_EE_OK = 0
_BUFFER_MS = 100
# ln(F0 ratio) per pitch unit away from 50, measured on cmn and en-us (eSpeak's pitch
# scale is steeper above the default than below it).
_PITCH_SLOPE_UP = 0.0102
_PITCH_SLOPE_DOWN = 0.0079

_LANGUAGE_VOICES = {
    "zh": "cmn", "zh-cn": "cmn", "zh-hans": "cmn", "cmn": "cmn", "mandarin": "cmn",
    "yue": "yue", "zh-hk": "yue", "zh-yue": "yue", "cantonese": "yue",
    "en": "en-us", "en-us": "en-us", "en-gb": "en-gb",
}
_REFERENCE_TEXTS = {
    "zh": "今天天气很好，我们一起去公园散步。散步以后，我们回家做一顿丰盛的晚饭。",
    "en": "The weather is lovely today, so we are going for a long walk in the park. "
          "I will bring some sandwiches and a bottle of water for everyone.",
}


@dataclass(frozen=True)
class _Listed:
    voice_id: str
    name: str
    language: str
    gender: str
    category: str


_CURATED = (
    _Listed("cmn", "普通话（男）", "zh", "male", "中文"),
    _Listed("cmn+f3", "普通话（女）", "zh", "female", "中文"),
    _Listed("yue", "粤语（男）", "yue", "male", "中文"),
    _Listed("yue+f3", "粤语（女）", "yue", "female", "中文"),
    _Listed("en-us", "美式英语（男）", "en", "male", "英文"),
    _Listed("en-us+f3", "美式英语（女）", "en", "female", "英文"),
    _Listed("en-gb", "英式英语（男）", "en", "male", "英文"),
    _Listed("ja", "日语（男）", "ja", "male", "日文"),
    _Listed("ko", "韩语（男）", "ko", "male", "韩文"),
    _Listed("fr", "法语（男）", "fr", "male", "法文"),
    _Listed("de", "德语（男）", "de", "male", "德文"),
    _Listed("es", "西班牙语（男）", "es", "male", "西班牙文"),
    _Listed("ru", "俄语（男）", "ru", "male", "俄文"),
    _Listed("it", "意大利语（男）", "it", "male", "意大利文"),
    _Listed("pt", "葡萄牙语（男）", "pt", "male", "葡萄牙文"),
    _Listed("vi", "越南语（男）", "vi", "male", "越南文"),
)


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int), ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", ctypes.c_void_p),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _languages(pointer: int | None) -> list[tuple[int, str]]:
    """Decode espeak_VOICE.languages: (priority byte, NUL-terminated name)…, then a 0 byte."""
    out: list[tuple[int, str]] = []
    while pointer:
        priority = ctypes.string_at(pointer, 1)[0]
        if priority == 0:
            break
        name = ctypes.string_at(pointer + 1)
        out.append((priority, name.decode("ascii", "replace")))
        pointer += len(name) + 2
    return out


class _Library:
    """The process's one libespeak-ng, with a table resolving names to its voice files."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        data_path = espeakng_loader.get_data_path()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS,
                                     data_path.encode(), 0)
        if rate <= 0:
            raise OSError("espeak_Initialize failed")
        self.lib = lib
        self.sample_rate = rate
        self._pieces: list[bytes] = []
        self._callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self.identifiers = self._voice_table()
        self.variants = frozenset(os.listdir(os.path.join(data_path, "voices", "!v")))

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if wav and count > 0:
            self._pieces.append(ctypes.string_at(wav, count * 2))
        return 0

    def _voice_table(self) -> dict[str, str]:
        """Lower-cased file name, identifier, display name and language code → identifier.

        ``espeak_SetVoiceByName`` alone misses language codes such as ``en-gb``; a code
        maps to the voice that lists it with the best (lowest) priority.
        """
        table: dict[str, str] = {}
        by_language: dict[str, tuple[int, str]] = {}
        voices = self.lib.espeak_ListVoices(None)
        index = 0
        while voices[index]:
            voice = voices[index].contents
            identifier = voice.identifier.decode()
            table.setdefault(identifier.lower(), identifier)
            table.setdefault(identifier.rsplit("/", 1)[-1].lower(), identifier)
            table.setdefault(voice.name.decode("utf-8", "replace").lower(), identifier)
            for priority, code in _languages(voice.languages):
                best = by_language.get(code)
                if best is None or priority < best[0]:
                    by_language[code] = (priority, identifier)
            index += 1
        for code, (_, identifier) in by_language.items():
            table.setdefault(code, identifier)
        return table

    def synthesize(self, voice: str, text: str, rate: int, pitch: int, volume: int) -> bytes:
        """Speak ``text`` with an already resolved voice; the caller holds the lock."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise OSError(f"voice {voice} failed to load")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_VOLUME, volume)):
            self.lib.espeak_SetParameter(parameter, value, 0)
        data = text.encode("utf-8") + b"\0"
        self._pieces = []
        status = self.lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8 | _END_PAUSE,
                                       None, None)
        pcm = b"".join(self._pieces)
        self._pieces = []
        if status != _EE_OK:
            raise OSError(f"espeak_Synth returned {status}")
        return pcm


_library: _Library | None = None
_lock = real_lock()


def _library_locked() -> _Library:
    """The shared library, initialised on first use; call with ``_lock`` held."""
    global _library
    if _library is None:
        try:
            _library = _Library()
        except (OSError, ImportError) as exc:
            raise ProviderError("espeak", "unavailable", f"no libespeak-ng: {exc}") from exc
    return _library


def pitch_setting(factor: float) -> tuple[int, float]:
    """eSpeak pitch (0–100) nearest to ``factor`` × the voice's own F0, and what it gives."""
    log_factor = math.log(max(factor, 1e-3))
    slope = _PITCH_SLOPE_UP if log_factor >= 0 else _PITCH_SLOPE_DOWN
    value = int(round(dsp.clamp(DEFAULT_PITCH + log_factor / slope, 0, 100)))
    achieved_slope = _PITCH_SLOPE_UP if value >= DEFAULT_PITCH else _PITCH_SLOPE_DOWN
    return value, math.exp((value - DEFAULT_PITCH) * achieved_slope)


class EspeakTextToSpeech(ApproximatingTextToSpeech):
    """eSpeak NG voices, any name the library knows, with a curated list to choose from."""

    name = "espeak"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.default_voice = str(config.get("ESPEAK_DEFAULT_VOICE") or DEFAULT_VOICE)
        self._references: dict[str, dsp.VoiceProfile] = {}

    def is_configured(self) -> bool:
        if importlib.util.find_spec("espeakng_loader") is None:
            return False
        import espeakng_loader

        return os.path.isfile(espeakng_loader.get_library_path())

    @property
    def capabilities(self) -> Capabilities:
        languages = tuple(dict.fromkeys(v.language for v in _CURATED))
        return Capabilities(streaming=True, cloning=True, emotion=False, languages=languages,
                            formats=OUTPUT_FORMATS, sample_rate=SAMPLE_RATE)

    def warm_up(self) -> None:
        """Initialise the library ahead of the first request."""
        with _lock:
            _library_locked()

    def resolve_voice(self, voice_id: str) -> str:
        """The eSpeak name (``identifier[+variant]``) for a voice id, or ProviderError."""
        base, _, variant = voice_id.strip().partition("+")
        with _lock:
            library = _library_locked()
        identifier = library.identifiers.get(base.lower())
        if identifier is None or (variant and variant not in library.variants):
            raise ProviderError(self.name, "bad_input", f"unknown eSpeak voice {voice_id!r}")
        return f"{identifier}+{variant}" if variant else identifier

    def _voice_for(self, options: SynthesisOptions) -> str:
        if options.voice:
            return options.voice
        if options.language:
            return _LANGUAGE_VOICES.get(options.language.lower(), options.language)
        return self.default_voice

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        voice = self.resolve_voice(self._voice_for(options))
        speed = dsp.clamp(options.speed or 1.0, 0.25, 4.0)
        rate = int(round(dsp.clamp(DEFAULT_RATE_WPM * speed, 80, 450)))
        pitch_factor = dsp.clamp(options.pitch or 1.0, 0.5, 2.0)
        pitch, achieved = pitch_setting(pitch_factor)
        volume = int(round(dsp.clamp(options.volume, 0.0, 2.0) * DEFAULT_VOLUME))
        with _lock:
            library = _library_locked()
            try:
                pcm = library.synthesize(voice, text, rate, pitch, volume)
            except OSError as exc:
                raise ProviderError(self.name, "task_failed", f"synthesis failed: {exc}") from exc
        if not pcm:
            return
        sample_rate = library.sample_rate
        residual_speed = DEFAULT_RATE_WPM * speed / rate
        if abs(residual_speed - 1.0) > 0.02:
            pcm = dsp.change_speed(pcm, sample_rate, residual_speed)
        residual_pitch = pitch_factor / achieved
        if abs(residual_pitch - 1.0) > 0.02:
            pcm = dsp.change_pitch(pcm, sample_rate, residual_pitch)
        yield AudioChunk(pcm=pcm, sample_rate=sample_rate)

    def get_voices(self) -> list[VoiceInfo]:
        return [
            VoiceInfo(voice_id=v.voice_id, name=v.name, provider=self.name, language=v.language,
                      gender=v.gender, category=v.category,
                      description="eSpeak NG formant voice: robotic but instant, works offline")
            for v in _CURATED
        ]

    def get_voice(self, voice_id: str) -> VoiceInfo | None:
        listed = super().get_voice(voice_id)
        if listed is not None:
            return listed
        try:
            self.resolve_voice(voice_id)
        except ProviderError:
            return None
        female = "+f" in voice_id.lower()
        return VoiceInfo(voice_id=voice_id, name=voice_id, provider=self.name,
                         gender="female" if female else "male",
                         description="eSpeak NG formant voice")

    def _reference(self, voice_id: str, language: str) -> dsp.VoiceProfile:
        """A base voice's own pitch and pace, measured once on a fixed passage."""
        if voice_id not in self._references:
            text = _REFERENCE_TEXTS["zh" if language in ("zh", "yue") else "en"]
            self._references[voice_id] = self.profile_own_voice(text, voice_id)
        return self._references[voice_id]

    def add_voice(
        self, voice_name: str, input_file: bytes | str, labels: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> VoiceInfo:
        """Approximate a speaker by an eSpeak voice of their language, pitch and pace.

        A male or female variant is picked by the measured pitch; the returned factors
        multiply the caller's ``SynthesisOptions.pitch`` and ``.speed`` for this voice.
        Language comes from ``labels["language"]`` (default Mandarin).
        """
        labels = labels or {}
        language = str(labels.get("language") or "cmn").lower()
        base = _LANGUAGE_VOICES.get(language, language)
        self.resolve_voice(base)
        profile = self.profile_sample(input_file)
        gender = gender_of(profile)
        base_voice = f"{base}+f3" if gender == "female" else base
        listed = next((v for v in _CURATED if v.voice_id == base), None)
        voice_language = listed.language if listed else language
        reference = self._reference(base_voice, voice_language)
        return VoiceInfo(
            voice_id=base_voice, name=voice_name, provider=self.name, language=voice_language,
            gender=gender,
            category=listed.category if listed else "其他语言", description=description,
            metadata=dsp.approximation_metadata(base_voice, profile, reference),
        )
