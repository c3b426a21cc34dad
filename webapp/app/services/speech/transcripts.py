"""A recognition result as it is written and in the shapes clients ask for.

Every recogniser's output is polished the same way (``polish``): numbers, dates,
times and money in figures (inverse normalisation, unless ``itn`` is off) and Chinese
in the reader's script (simplified unless the language asked for is ``zh-TW`` /
``zh-HK``). Segments keep their times; words whose spoken form became one written
form (``二零二五年`` → ``2025年``) become one word spanning their times, so word
timestamps and subtitles stay aligned with the audio.

The shapes: OpenAI's ``json``, ``text``, ``verbose_json`` (segments, and words when
asked for) and subtitles (SRT, WebVTT). Subtitles are written by the ``srt`` and
``webvtt-py`` libraries: both formats have escaping and timestamp rules that players
enforce.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import srt
import webvtt

from webapp.app.concurrency import run_blocking
from webapp.app.providers.base import Segment, Transcription, Word
from webapp.app.text import inverse, language, script

FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
CONTENT_TYPES = {"json": "application/json", "verbose_json": "application/json",
                 "text": "text/plain; charset=utf-8", "srt": "application/x-subrip; charset=utf-8",
                 "vtt": "text/vtt; charset=utf-8"}

# OpenAI's verbose_json names the language in English words, as Whisper does.
LANGUAGE_NAMES = {"zh": "chinese", "en": "english", "yue": "cantonese", "ja": "japanese",
                  "ko": "korean", "fr": "french", "de": "german", "es": "spanish",
                  "ru": "russian", "it": "italian", "pt": "portuguese", "ar": "arabic",
                  "hi": "hindi", "vi": "vietnamese", "th": "thai", "id": "indonesian",
                  "tr": "turkish", "nl": "dutch", "pl": "polish", "uk": "ukrainian"}


def language_name(code: str | None) -> str:
    return LANGUAGE_NAMES.get((code or "").split("-")[0].lower(), code or "")


def _cues(segments: list[Segment]) -> list[Segment]:
    """Segments a player can show: text present, end after start."""
    return [s for s in segments if s.text.strip() and s.end > s.start]


def to_srt(segments: list[Segment]) -> str:
    return srt.compose([srt.Subtitle(index, timedelta(seconds=s.start), timedelta(seconds=s.end),
                                     s.text.strip())
                        for index, s in enumerate(_cues(segments), start=1)])


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def to_vtt(segments: list[Segment]) -> str:
    document = webvtt.WebVTT()
    for s in _cues(segments):
        document.captions.append(webvtt.Caption(start=_vtt_time(s.start), end=_vtt_time(s.end),
                                                text=s.text.strip()))
    return document.content


def words_of(result: Transcription) -> list[dict[str, Any]]:
    return [{"word": w.word, "start": w.start, "end": w.end}
            for s in result.segments for w in s.words]


def verbose(result: Transcription, task: str, granularities: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    """OpenAI's ``verbose_json``: segments unless only words were asked for."""
    out: dict[str, Any] = {"task": task, "language": language_name(result.language),
                           "duration": result.duration, "text": result.text}
    if not granularities or "segment" in granularities:
        out["segments"] = [
            {"id": index, "seek": s.seek, "start": s.start, "end": s.end, "text": s.text,
             "tokens": s.tokens, "temperature": s.temperature, "avg_logprob": s.avg_logprob,
             "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob}
            for index, s in enumerate(result.segments)]
    if "word" in granularities:
        out["words"] = words_of(result)
    out["usage"] = usage(result)
    return out


def usage(result: Transcription) -> dict[str, Any]:
    return {"type": "duration", "seconds": round(result.duration, 3)}


def render(result: Transcription, fmt: str, task: str = "transcribe",
           granularities: tuple[str, ...] = ()) -> dict[str, Any] | str:
    """The body of a transcription response: a JSON object or a text document."""
    if fmt == "verbose_json":
        return verbose(result, task, granularities)
    if fmt == "text":
        return result.text + "\n"
    if fmt == "srt":
        return to_srt(result.segments)
    if fmt == "vtt":
        return to_vtt(result.segments)
    return {"text": result.text, "usage": usage(result)}


def _is_chinese(code: str | None) -> bool:
    return (code or "").lower().split("-")[0] in ("zh", "cmn", "yue")


class _Writer:
    """How one transcript is written: its language for ITN (None: off) and, for Chinese,
    its script. Chinese is made simplified first, the script the ITN grammar reads
    (``三點`` is a time only as ``三点``), and turned traditional after it when asked."""

    def __init__(self, itn_language: str | None, conversion: str | None) -> None:
        self.itn_language, self.conversion = itn_language, conversion

    def _script(self, text: str, conversion: str) -> str:
        return script.convert(text, conversion) if self.conversion else text

    def _final_script(self, text: str) -> str:
        if self.conversion and self.conversion != script.SIMPLIFIED:
            return script.convert(text, self.conversion)
        return text

    def text(self, text: str) -> str:
        text = self._script(text, script.SIMPLIFIED)
        if self.itn_language:
            text = inverse.for_reading(text, self.itn_language)
        return self._final_script(text)

    def words(self, words: list[Word]) -> list[Word]:
        """Words with ITN applied across them: the words one written form replaces
        are merged into one word from the first one's start to the last one's end."""
        words = [replace(w, word=self._script(w.word, script.SIMPLIFIED)) for w in words]
        if self.itn_language and words:
            words = _merged(words, self.itn_language)
        return [replace(w, word=self._final_script(w.word)) for w in words]

    def segment(self, segment: Segment) -> Segment:
        return replace(segment, text=self.text(segment.text), words=self.words(segment.words))


def _merged(words: list[Word], itn_language: str) -> list[Word]:
    joined = "".join(w.word for w in words)
    found = inverse.replacements(joined, itn_language)
    if not found:
        return words
    starts, ends, at = [], [], 0
    for w in words:
        starts.append(at)
        at += len(w.word)
        ends.append(at)
    # Groups of neighbouring words that one or more replacements touch.
    groups: list[tuple[int, int]] = []
    for r in sorted(found, key=lambda r: r.start):
        first = next(i for i, end in enumerate(ends) if end > r.start)
        last = max(i for i, start in enumerate(starts) if start < r.end)
        if groups and first <= groups[-1][1]:
            groups[-1] = (groups[-1][0], max(groups[-1][1], last))
        else:
            groups.append((first, last))
    out: list[Word] = []
    taken = 0
    for first, last in groups:
        out.extend(words[taken:first])
        lo, hi = starts[first], ends[last]
        inside = [inverse.Replacement(r.start - lo, r.end - lo, r.written)
                  for r in found if lo <= r.start and r.end <= hi]
        probabilities = [w.probability for w in words[first:last + 1] if w.probability is not None]
        out.append(Word(word=inverse.apply(joined[lo:hi], inside), start=words[first].start,
                        end=words[last].end,
                        probability=min(probabilities) if probabilities else None))
        taken = last + 1
    out.extend(words[taken:])
    return out


def writer_for(result_language: str | None, text: str, *, itn: bool,
               reader_language: str | None) -> _Writer:
    """How to write a transcript in ``result_language`` (None: told from ``text``) for a
    reader of ``reader_language`` (the request's language, if it named one)."""
    spoken = result_language or (language.detect(text) if text.strip() else None)
    chinese = _is_chinese(spoken) or language.han_count(text) > 0
    reader = reader_language if _is_chinese(reader_language) else spoken
    conversion = script.conversion_for(reader) if chinese else None
    return _Writer(spoken if itn else None, conversion)


def _polished(result: Transcription, itn: bool, reader_language: str | None) -> Transcription:
    writer = writer_for(result.language, result.text, itn=itn, reader_language=reader_language)
    return replace(result, text=writer.text(result.text),
                   segments=[writer.segment(s) for s in result.segments])


def polish(result: Transcription, *, itn: bool = True,
           reader_language: str | None = None) -> Transcription:
    """``result`` as it is written (see the module's note), made off the event loop."""
    if not result.text and not result.segments:
        return result
    return run_blocking(_polished, result, itn, reader_language)


def polish_segment(segment: Segment, spoken_language: str | None, *, itn: bool = True,
                   reader_language: str | None = None) -> Segment:
    """One segment of a streamed transcript, written as ``polish`` writes a whole one."""
    if not segment.text.strip():
        return segment
    return run_blocking(lambda: writer_for(spoken_language, segment.text, itn=itn,
                                           reader_language=reader_language).segment(segment))


def polish_text(text: str, spoken_language: str | None, *, itn: bool = True,
                reader_language: str | None = None) -> str:
    """A bare transcript (a live call's partial) written as ``polish`` writes one."""
    if not text.strip():
        return text
    return run_blocking(lambda: writer_for(spoken_language, text, itn=itn,
                                           reader_language=reader_language).text(text))
