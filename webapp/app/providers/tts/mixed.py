"""Chinese with English words in it (``我用iPhone给你发了个PDF``), read by two voices:
the Mandarin voice for the Chinese and an English voice for the English words, at the
Mandarin voice's sample rate, one sentence after another as usual.

Measured by reading the speech back with Whisper base (``python -m bench text``): six
mixed sentences had a character error rate of 0.33 with every Latin letter spelled by
the Mandarin voice, 0.31 with every Latin run in the English voice, and 0.25 this way,
where words go to the English voice and acronyms (``PDF``, ``NBA``) and short words
(``App``) stay with the Mandarin voice, which says them letter by letter with the
Chinese letter names, as Mandarin speakers do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from webapp.app.audio import resample
from webapp.app.providers.base import (
    AudioChunk,
    SynthesisOptions,
    TextToSpeechInterface,
    VoiceInfo,
)

_LATIN_RUN = re.compile(r"[A-Za-z]+(?:['’-][A-Za-z]+)*(?:\s+[A-Za-z]+(?:['’-][A-Za-z]+)*)*")
_WORD_LIKE = re.compile(r"[a-z]{3,}")
_SPEAKABLE = re.compile(r"[\w]")


def pieces(sentence: str) -> list[tuple[str, bool]]:
    """The sentence cut into (text, English?) pieces: a run of Latin words is English
    when one of its words has three lower-case letters in a row (a word, not an acronym)."""
    out: list[tuple[str, bool]] = []
    at = 0
    for match in _LATIN_RUN.finditer(sentence):
        if not _WORD_LIKE.search(match.group(0)):
            continue
        if match.start() > at:
            out.append((sentence[at:match.start()], False))
        out.append((match.group(0), True))
        at = match.end()
    if at < len(sentence):
        out.append((sentence[at:], False))
    return out


def has_english_words(text: str) -> bool:
    return any(english for _, english in pieces(text))


class MixedLanguageTextToSpeech(TextToSpeechInterface):
    """``chinese`` speaks; the English words of its text go to ``english``."""

    def __init__(self, chinese: TextToSpeechInterface, english: TextToSpeechInterface,
                 english_voice: str | None = None) -> None:
        super().__init__()
        self.chinese, self.english, self.english_voice = chinese, english, english_voice
        self.name = chinese.name
        self.capabilities = chinese.capabilities

    def is_configured(self) -> bool:
        return self.chinese.is_configured()

    def get_voices(self) -> list[VoiceInfo]:
        return self.chinese.get_voices()

    def synthesize_stream(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        if not has_english_words(text):  # the Mandarin voice's own checks and streaming
            yield from self.chinese.synthesize_stream(text, options)
            return
        yield from super().synthesize_stream(text, options)

    def synthesize_sentence(self, text: str, options: SynthesisOptions) -> Iterator[AudioChunk]:
        rate = self.chinese.capabilities.sample_rate
        english_options = replace(options, voice=self.english_voice, language="en",
                                  emotion=None, instruction=None)
        for piece, english in pieces(text):
            if english:
                for chunk in self.english.synthesize_sentence(piece, english_options):
                    yield AudioChunk(pcm=resample(chunk.pcm, chunk.sample_rate, rate),
                                     sample_rate=rate)
            elif _SPEAKABLE.search(piece):
                yield from self.chinese.synthesize_sentence(piece, options)
