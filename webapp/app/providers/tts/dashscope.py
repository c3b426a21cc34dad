"""CosyVoice (DashScope) speech synthesis and voice cloning, through the official SDK.

Settings: ``DASHSCOPE_API_KEY`` (required), ``DASHSCOPE_TTS_MODEL`` (default
``cosyvoice-v2``; cloned voices belong to the model they were cloned for),
``DASHSCOPE_DEFAULT_VOICE`` (used when no voice is asked for; ``dashscope:`` optional),
``DASHSCOPE_TTS_SAMPLE_RATE`` (the PCM rate asked of CosyVoice, default 22050),
``DASHSCOPE_TIMEOUT`` (longest wait for the next piece of audio) and the endpoint
settings read by ``dashscope_sdk``.

The SDK runs its websocket on a thread of its own and makes its callbacks there. Under
eventlet that thread is green, and so must the caller be: inside ``tpool`` the callbacks
never arrive. ``cpu_bound`` stays False so the registry keeps this engine on green threads.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dashscope.audio.tts_v2 import (
    AudioFormat,
    ResultCallback,
    SpeechSynthesizer,
    VoiceEnrollmentService,
)

from webapp.app.audio import dsp
from webapp.app.concurrency import real_lock, spawn
from webapp.app.providers.base import (
    AudioChunk,
    Capabilities,
    ProviderError,
    SynthesisOptions,
    ThirdPartyAPITextToSpeech,
    VoiceInfo,
)
from webapp.app.providers.dashscope_sdk import (
    SDK_ERRORS,
    TIMEOUT_HINT,
    DashScopeSettings,
    FailFastSession,
    about_to_call,
    build_with_settings,
    failure_from_event,
    provider_error,
)

DEFAULT_MODEL = "cosyvoice-v2"
DEFAULT_VOICE = "longxiaochun_v2"
DEFAULT_SAMPLE_RATE = 22050
INSTRUCTION_LIMIT = 128
READER_EXIT_SECONDS = 1.0
CLONED_CATEGORY = "复刻音色"

_PCM_FORMATS = {fmt.sample_rate: fmt for fmt in AudioFormat if fmt.format == "pcm"}
_VOICE_STATUS = {"OK": "ready", "DEPLOYING": "pending", "UNDEPLOYED": "failed"}
_EMOTIONS = {
    "happy": "开心", "sad": "悲伤", "angry": "生气", "calm": "平静", "intense": "激动",
    "excited": "兴奋", "gentle": "温柔", "serious": "严肃", "surprised": "惊讶",
    "fearful": "害怕", "cheerful": "愉快", "tender": "温柔",
}
_DATA, _DONE, _ERROR = "data", "done", "error"


@dataclass(frozen=True)
class _SystemVoice:
    voice_id: str
    name: str
    gender: str
    category: str
    description: str
    languages: tuple[str, ...] = ("zh",)


SYSTEM_VOICES: tuple[_SystemVoice, ...] = (
    _SystemVoice("longxiaochun_v2", "龙小淳", "female", "双语音色", "知性积极女声",
                 ("zh", "en")),
    _SystemVoice("longxiaoxia_v2", "龙小夏", "female", "中文", "沉稳权威女声"),
    _SystemVoice("longwan_v2", "龙婉", "female", "中文", "积极知性女声"),
    _SystemVoice("longcheng_v2", "龙橙", "male", "中文", "智慧青年男声"),
    _SystemVoice("longhua_v2", "龙华", "female", "中文", "元气甜美女声"),
    _SystemVoice("longshu_v2", "龙书", "male", "中文", "沉稳青年男声"),
    _SystemVoice("loongbella_v2", "Bella2.0", "female", "中文", "精准干练女声"),
    _SystemVoice("longxiaocheng_v2", "龙小诚", "male", "双语音色", "磁性低音男声",
                 ("zh", "en")),
    _SystemVoice("longyue_v2", "龙悦", "female", "中文", "温暖磁性女声"),
    _SystemVoice("longfei_v2", "龙飞", "male", "中文", "热血磁性男声"),
    _SystemVoice("longshuo_v2", "龙硕", "male", "中文", "博才干练男声"),
    _SystemVoice("longmiao_v2", "龙妙", "female", "中文", "抑扬顿挫女声"),
    _SystemVoice("longyuan_v2", "龙媛", "female", "中文", "温暖治愈女声"),
    _SystemVoice("longlaotie_v2", "龙老铁", "male", "方言", "东北口音男声"),
    _SystemVoice("longtong_v2", "龙彤", "female", "童声", "稚嫩童声"),
    _SystemVoice("longjielidou_v2", "龙杰力豆", "male", "童声", "阳光顽皮童声",
                 ("zh", "en")),
)


def pcm_format(sample_rate: int) -> AudioFormat:
    """The SDK's PCM format closest to ``sample_rate`` (CosyVoice offers a fixed set)."""
    return _PCM_FORMATS[min(_PCM_FORMATS, key=lambda rate: abs(rate - sample_rate))]


def volume_level(factor: float) -> int:
    """CosyVoice's volume (0–100, 50 = as recorded) for a gain factor (0–2, 1 = normal)."""
    return round(dsp.clamp(factor, 0.0, 2.0) * 50)


def instruction_for(options: SynthesisOptions) -> str | None:
    """CosyVoice's ``instruction`` text: the caller's own, or one worded from the emotion.

    An emotion counts only with an intensity above 0 and when it is not ``neutral``, as in
    ``services.emotion``; unknown names are passed on as they are.
    """
    if options.instruction and options.instruction.strip():
        return options.instruction.strip()[:INSTRUCTION_LIMIT]
    emotion = (options.emotion or "").strip()
    if not emotion or emotion.lower() == "neutral" or options.emotion_intensity <= 0:
        return None
    label = _EMOTIONS.get(emotion.lower(), emotion)
    degree = "非常" if options.emotion_intensity >= 0.7 else (
        "略带" if options.emotion_intensity < 0.3 else "")
    return f"请用{degree}{label}的语气说话"[:INSTRUCTION_LIMIT]


def clone_prefix(voice_name: str) -> str:
    """DashScope's voice prefix: lowercase letters and digits, fewer than 10."""
    return re.sub(r"[^a-z0-9]", "", voice_name.lower())[:9] or "voice"


class _QueueCallback(ResultCallback):
    """Hands what the SDK reports on its websocket thread to the consuming generator."""

    def __init__(self, events: queue.Queue[tuple[str, Any]]) -> None:
        self.events = events

    def on_data(self, data: bytes) -> None:
        self.events.put((_DATA, bytes(data)))

    def on_complete(self) -> None:
        self.events.put((_DONE, None))

    def on_error(self, message: Any) -> None:
        self.events.put((_ERROR, failure_from_event(str(message))))


def _start(synthesizer: SpeechSynthesizer, text: str,
           events: queue.Queue[tuple[str, Any]]) -> None:
    """Open the task and send the text; ``call`` returns once the text is sent."""
    try:
        synthesizer.call(text)
    except Exception as exc:  # noqa: BLE001 - handed to the consumer through the queue
        events.put((_ERROR, exc))


def _stop(synthesizer: SpeechSynthesizer) -> None:
    """End a task early: drop its connection and release every SDK thread waiting on it.

    A task lives and dies with its connection, and all its text was sent already, so
    nothing is gained by the SDK's ``streaming_cancel``: that closes the socket under
    websocket-client's reader thread, which then waits out its 10 s poll on a closed
    descriptor. Shutting the socket down first wakes the reader, which exits at once;
    the SDK's own waits (for task-started, and without limit for task-finished) are then
    released so no thread outlives the call.
    """
    app = synthesizer.ws
    if app is not None:
        app.keep_running = False
        connection = app.sock
        if connection is not None:
            connection.abort()
        reader = getattr(synthesizer, "thread", None)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=READER_EXIT_SECONDS)
    synthesizer.close()
    synthesizer.start_event.set()
    synthesizer.complete_event.set()


class CosyVoiceTextToSpeech(ThirdPartyAPITextToSpeech):
    """Streams CosyVoice PCM as it arrives; clones voices from a sample URL."""

    name = "dashscope"

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.settings = DashScopeSettings.from_config(config)
        self.model = str(config.get("DASHSCOPE_TTS_MODEL") or DEFAULT_MODEL)
        default_voice = str(config.get("DASHSCOPE_DEFAULT_VOICE") or "")
        self.default_voice = default_voice.removeprefix(f"{self.name}:") or DEFAULT_VOICE
        self.audio_format = pcm_format(
            int(config.get("DASHSCOPE_TTS_SAMPLE_RATE") or DEFAULT_SAMPLE_RATE))
        self.sample_rate = self.audio_format.sample_rate
        self.capabilities = Capabilities(
            streaming=True, cloning=True, emotion=True, languages=("zh", "en"),
            formats=("pcm", "mp3", "wav"), sample_rate=self.sample_rate,
        )
        self._session: FailFastSession | None = None
        self._session_lock = real_lock()

    def is_configured(self) -> bool:
        return self.settings.configured

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        """Yield 16-bit PCM as CosyVoice sends it; closing the generator cancels the task."""
        if not text.strip():
            return
        about_to_call(self.name, self.settings)
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        synthesizer = build_with_settings(self.settings, lambda: SpeechSynthesizer(
            model=self.model, voice=options.voice or self.default_voice, format=self.audio_format,
            volume=volume_level(options.volume),
            speech_rate=dsp.clamp(options.speed, 0.5, 2.0),
            pitch_rate=dsp.clamp(options.pitch, 0.5, 2.0),
            instruction=instruction_for(options), callback=_QueueCallback(events),
        ))
        spawn(_start, synthesizer, text, events)
        finished = False
        carry = b""
        try:
            while True:
                try:
                    kind, payload = events.get(timeout=self.settings.timeout)
                except queue.Empty:
                    raise ProviderError(self.name, "timeout", f"DashScope synthesis {TIMEOUT_HINT}",
                                        transient=True) from None
                if kind == _ERROR:
                    raise provider_error(self.name, payload, "synthesis")
                if kind == _DONE:
                    finished = True
                    return
                # Frames may split a sample; hand out whole 16-bit samples only.
                pcm = carry + payload
                whole = len(pcm) - len(pcm) % 2
                carry = pcm[whole:]
                if whole:
                    yield AudioChunk(pcm=pcm[:whole], sample_rate=self.sample_rate)
        finally:
            if not finished:
                _stop(synthesizer)

    def get_voices(self) -> list[VoiceInfo]:
        return [
            VoiceInfo(voice_id=v.voice_id, name=v.name, provider=self.name, language=v.languages[0],
                      gender=v.gender, category=v.category, description=v.description,
                      metadata={"languages": list(v.languages), "model": self.model})
            for v in SYSTEM_VOICES
        ]

    def _enrollment(self) -> VoiceEnrollmentService:
        about_to_call(self.name, self.settings)
        with self._session_lock:
            if self._session is None:
                self._session = FailFastSession()
        return VoiceEnrollmentService(session=self._session, **self.settings.http_kwargs())

    def _query(self, voice_id: str) -> dict[str, Any]:
        try:
            return dict(self._enrollment().query_voice(voice_id))
        except SDK_ERRORS as exc:
            raise provider_error(self.name, exc, "voice query") from exc

    def get_voice(self, voice_id: str) -> VoiceInfo | None:
        """A system voice, or a cloned one as DashScope reports it (None if unknown)."""
        system = next((v for v in self.get_voices() if v.voice_id == voice_id), None)
        if system is not None or not voice_id.startswith("cosyvoice-"):
            return system
        try:
            details = self._query(voice_id)
        except ProviderError as exc:
            if exc.kind == "bad_input":
                return None
            raise
        return VoiceInfo(
            voice_id=voice_id, name=voice_id, provider=self.name, category=CLONED_CATEGORY,
            metadata={"status": _VOICE_STATUS.get(str(details.get("status")), "failed"),
                      "target_model": details.get("target_model")},
        )

    def add_voice(
        self, voice_name: str, input_file: bytes | str, labels: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> VoiceInfo:
        """Clone a voice from the sample at ``input_file``, a URL DashScope can fetch.

        The voice deploys for a while after this returns; ``voice_status`` says when it
        can synthesize.
        """
        url = self._sample_url(input_file)
        prefix = clone_prefix(voice_name)
        try:
            voice_id = self._enrollment().create_voice(
                target_model=self.model, prefix=prefix, url=url)
        except SDK_ERRORS as exc:
            raise provider_error(self.name, exc, "voice cloning") from exc
        labels = labels or {}
        return VoiceInfo(
            voice_id=voice_id, name=voice_name, provider=self.name,
            language=labels.get("language"), gender=labels.get("gender"),
            category=CLONED_CATEGORY, description=description,
            metadata={"target_model": self.model, "prefix": prefix},
        )

    def _sample_url(self, input_file: bytes | str) -> str:
        if not isinstance(input_file, str):
            raise ProviderError(self.name, "bad_input",
                                "DashScope clones from a URL; store the sample and pass its URL")
        if not input_file.startswith(("http://", "https://")):
            raise ProviderError(self.name, "bad_input",
                                "DashScope clones from a URL (http or https)")
        return input_file

    def voice_status(self, voice_id: str) -> str:
        """``ready`` (OK), ``pending`` (DEPLOYING) or ``failed`` (UNDEPLOYED)."""
        if any(v.voice_id == voice_id for v in SYSTEM_VOICES):
            return "ready"
        return _VOICE_STATUS.get(str(self._query(voice_id).get("status")), "failed")

    def delete_voice(self, voice_id: str) -> bool:
        try:
            self._enrollment().delete_voice(voice_id)
        except SDK_ERRORS as exc:
            raise provider_error(self.name, exc, "voice deletion") from exc
        return True

    def edit_voice(self, voice_id: str, new_details: dict[str, Any]) -> bool:
        """Re-clone from a new sample when ``new_details`` has a ``url``.

        Names and descriptions live in the service's own voice library, not at DashScope.
        """
        if "url" not in new_details:
            return True
        url = self._sample_url(new_details["url"])
        try:
            self._enrollment().update_voice(voice_id, url)
        except SDK_ERRORS as exc:
            raise provider_error(self.name, exc, "voice update") from exc
        return True
