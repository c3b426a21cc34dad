"""A recognition result in the shapes clients ask for: OpenAI's ``json``, ``text``,
``verbose_json`` (segments, and words when asked for) and subtitles (SRT, WebVTT).

Subtitles are written by the ``srt`` and ``webvtt-py`` libraries: both formats have
escaping and timestamp rules that players enforce.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import srt
import webvtt

from webapp.app.providers.base import Segment, Transcription

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
