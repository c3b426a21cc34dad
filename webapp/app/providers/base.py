"""Small interfaces, one per capability (``TextToSpeechInterface``, ``SpeechToTextInterface``,
``ChatModelInterface``), with local-model and third-party-API kinds of each.

Every engine produces or consumes 16-bit mono PCM; encoding for clients happens in
``webapp.app.audio``. Engines are synchronous; the registry hands out the ones that
compute on this machine wrapped so that their work leaves the event loop
(``providers.offload``), so callers never decide where an engine runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from webapp.app.audio import SPEECH_SAMPLE_RATE, wav_header
from webapp.app.sentences import split_sentences
from webapp.app.text.normalise import ReadsTooLong


class ProviderError(Exception):
    """A provider failed in a way a caller can explain to a user.

    ``kind`` is one of: not_configured, not_supported, auth, quota, timeout,
    task_failed, bad_input, unavailable. ``transient`` says whether a retry may help.
    """

    def __init__(self, provider: str, kind: str, message: str, transient: bool = False) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.kind = kind
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class Capabilities:
    streaming: bool
    cloning: bool
    emotion: bool
    languages: tuple[str, ...]
    formats: tuple[str, ...]
    sample_rate: int
    controls: tuple[str, ...] = ("speed", "pitch", "volume")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SynthesisOptions:
    """How to speak. speed/pitch are factors (0.5–2.0); volume a gain factor (0–2)."""

    voice: str | None = None
    language: str | None = None
    speed: float = 1.0
    pitch: float = 1.0
    volume: float = 1.0
    emotion: str | None = None
    emotion_intensity: float = 0.0
    instruction: str | None = None


@dataclass(frozen=True)
class AudioChunk:
    pcm: bytes
    sample_rate: int


@dataclass
class Word:
    """One recognised word and when it was spoken (seconds from the start)."""

    word: str
    start: float
    end: float
    probability: float | None = None


@dataclass
class Segment:
    """A stretch of recognised speech; ``words`` is filled when word times were asked
    for and the engine gives them. The scores are Whisper's (zero from other engines)."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0
    tokens: list[int] = field(default_factory=list)
    seek: int = 0

    def brief(self) -> dict[str, Any]:
        """Times, text and words: what a message keeps and a client shows."""
        out: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.words:
            out["words"] = [asdict(w) for w in self.words]
        return out


@dataclass
class Transcription:
    text: str
    language: str | None = None
    duration: float = 0.0
    segments: list[Segment] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VoiceInfo:
    voice_id: str
    name: str
    provider: str
    language: str | None = None
    gender: str | None = None
    category: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AudioRecordingBase:
    """What every speech engine shares: it keeps the audio it last produced or heard,
    which ``record_audio`` returns (stored audio is the services' concern, not the
    engine's)."""

    name = "base"
    cpu_bound = False
    """True for engines that compute on this machine: the registry wraps them so that
    their work runs in the thread pool. API engines stay on green threads (their SDKs
    hang in it)."""

    def __init__(self) -> None:
        self._recorded: bytes = b""
        self._heard_rate = 0

    def _record(self, data: bytes) -> None:
        self._recorded = data
        self._heard_rate = 0

    def _record_heard(self, pcm: bytes, sample_rate: int) -> None:
        """Remember the PCM a recogniser heard; it becomes a WAV only when
        ``record_audio`` asks, so recognition never pays for a copy nobody reads."""
        self._recorded, self._heard_rate = pcm, sample_rate

    def record_audio(self) -> bytes:
        """What the engine last synthesized (raw PCM) or recognised (WAV)."""
        if self._heard_rate:
            return wav_header(self._heard_rate, len(self._recorded)) + self._recorded
        return self._recorded


class TextToSpeechInterface(AudioRecordingBase, ABC):
    """Synthesis plus voice management (list, add by cloning, edit, delete).

    Engines implement ``synthesize_sentence``; the sentence adapter in
    ``synthesize_stream`` makes every engine stream, sentence by sentence.
    """

    capabilities: Capabilities

    @abstractmethod
    def is_configured(self) -> bool: ...

    @abstractmethod
    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        """Yield PCM for one sentence as it is made."""

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        for sentence in split_sentences(text) or [text]:
            try:
                yield from self.synthesize_sentence(sentence, options)
            except ReadsTooLong as exc:
                raise ProviderError(self.name, "bad_input", str(exc)) from exc

    def synthesize(self, text: str, options: SynthesisOptions) -> AudioChunk:
        chunks = list(self.synthesize_stream(text, options))
        rate = chunks[0].sample_rate if chunks else self.capabilities.sample_rate
        pcm = b"".join(c.pcm for c in chunks)
        self._record(pcm)
        return AudioChunk(pcm=pcm, sample_rate=rate)

    @abstractmethod
    def get_voices(self) -> list[VoiceInfo]: ...

    def get_voice(self, voice_id: str) -> VoiceInfo | None:
        return next((v for v in self.get_voices() if v.voice_id == voice_id), None)

    def add_voice(
        self, voice_name: str, input_file: bytes | str, labels: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> VoiceInfo:
        """Clone (or approximate) a voice from a sample: bytes, or a URL the engine fetches."""
        raise ProviderError(self.name, "not_supported", "this engine cannot add voices")

    def delete_voice(self, voice_id: str) -> bool:
        raise ProviderError(self.name, "not_supported", "this engine cannot delete voices")

    def edit_voice(self, voice_id: str, new_details: dict[str, Any]) -> bool:
        raise ProviderError(self.name, "not_supported", "this engine cannot edit voices")

    def voice_status(self, voice_id: str) -> str:
        """``ready`` once a voice can synthesize, ``pending`` while the provider deploys it."""
        return "ready"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "tts", "configured": self.is_configured(),
                **self.capabilities.as_dict()}


class SpeechSource(Protocol):
    """A recording the service holds, in each form a recogniser may take it."""

    def pcm(self) -> bytes:
        """The speech as 16 kHz mono 16-bit PCM."""

    def url(self) -> str:
        """An http(s) URL of the stored recording that a provider can fetch."""


InputKind = Literal["pcm", "url"]


class SpeechToTextInterface(AudioRecordingBase, ABC):
    """Recognition. The transcriptions themselves are messages of a session, kept and
    listed by the sessions service."""

    capabilities: Capabilities
    input_kind: InputKind = "pcm"
    """What ``transcribe_input`` hands the engine: ``"pcm"``, the 16 kHz samples the
    service already decoded; ``"url"``, a URL of the stored audio that the provider
    fetches itself (Qwen-Audio)."""

    def transcribe_input(self, source: SpeechSource, language: str | None = None,
                         additional_params: dict[str, Any] | None = None) -> Transcription:
        """Recognise a recording the service holds, given in the form this engine takes:
        the one place that reads ``input_kind``."""
        if self.input_kind == "url":
            return self.transcribe(source.url(), language, additional_params)
        return self.transcribe_decoded(source.pcm(), language, additional_params)

    def transcribe_decoded(self, pcm: bytes, language: str | None = None,
                           additional_params: dict[str, Any] | None = None) -> Transcription:
        """Recognise 16 kHz mono PCM. Engines that decode to exactly that override this to
        skip the decode; any other engine is handed the samples as a WAV file."""
        return self.transcribe(wav_header(SPEECH_SAMPLE_RATE, len(pcm)) + pcm, language,
                               additional_params)

    @abstractmethod
    def is_configured(self) -> bool: ...

    @abstractmethod
    def transcribe(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Transcription:
        """Recognise speech in audio bytes (any accepted format) or at a URL.

        ``additional_params`` may ask for ``word_timestamps`` (engines that have them
        fill ``Segment.words``), ``task="translate"`` (to English, where the engine can),
        ``prompt`` and ``temperature``.
        """

    def transcribe_segments(
        self, audio_file: bytes | str, language: str | None = None,
        additional_params: dict[str, Any] | None = None,
    ) -> Iterator[Segment]:
        """The segments as the engine finds them; engines that cannot stream give them
        all at once when recognition ends."""
        yield from self.transcribe(audio_file, language, additional_params).segments

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "stt", "configured": self.is_configured(),
                **self.capabilities.as_dict()}


class LocalModelTextToSpeech(TextToSpeechInterface, ABC):
    """A TTS engine that runs on this machine."""

    cpu_bound = True


class ThirdPartyAPITextToSpeech(TextToSpeechInterface, ABC):
    """A TTS engine behind a remote API."""


class LocalModelSpeechToText(SpeechToTextInterface, ABC):
    """An STT engine that runs on this machine."""

    cpu_bound = True


class ThirdPartyAPISpeechToText(SpeechToTextInterface, ABC):
    """An STT engine behind a remote API."""


@dataclass
class ChatOptions:
    model: str | None = None
    temperature: float = 0.7
    max_tokens: int = 512
    persona: str | None = None


class ChatModelInterface(ABC):
    """An LLM that streams its reply as text deltas."""

    name = "llm"
    model: str = ""

    @abstractmethod
    def is_configured(self) -> bool: ...

    @abstractmethod
    def stream_chat(self, messages: list[dict[str, str]], options: ChatOptions) -> Iterator[str]:
        """Yield the reply in pieces; ``messages`` are OpenAI-style role/content dicts."""

    def chat(self, messages: list[dict[str, str]], options: ChatOptions) -> str:
        return "".join(self.stream_chat(messages, options))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "llm", "configured": self.is_configured(),
                "model": self.model, "streaming": True}
