"""Spoken words as they are written, after recognition (inverse normalisation, "ITN").

WeTextProcessing's ITN grammars (run by ``wetext``) find the numbers, dates, times,
money and percentages among the words and write them in figures: ``一百九十九块五毛`` →
``199块5毛``, ``twenty three dollars and fifty cents`` → ``$23.50``. Each change comes
with the span of the input it replaces, and the text is rebuilt from the input with only
those spans changed, so what was not a number keeps its spacing and punctuation, and a
word's timestamps can follow its words (``replacements``).

Added here: Chinese dates and clock times in the form Chinese is written in
(``二零二五年三月五号下午三点半`` → ``2025年3月5日下午3:30``, where the grammar writes
``2025/03/05`` and ``03:30:00p.m.``), and no space before ``%`` in English.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webapp.app.text.normalise import normaliser

_DATE = re.compile(r"^(?:(\d{4})年?)?(?:/?(\d{1,2}))?(?:/(\d{1,2}))?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?")
_DAY_PARTS = ("上午", "下午", "中午", "晚上", "早上", "早晨", "凌晨", "傍晚", "夜里", "半夜")
_PERCENT_SPACE = re.compile(r"(\d) %")


@dataclass(frozen=True)
class Replacement:
    """``text[start:end]`` of the input is written ``written``."""

    start: int
    end: int
    written: str


def _chinese_date(written: str) -> str:
    match = _DATE.match(written)
    if not match or not any(match.groups()):
        return written
    year, month, day = match.groups()
    return "".join((f"{year}年" if year else "", f"{int(month)}月" if month else "",
                    f"{int(day)}日" if day else ""))


def _chinese_time(spoken: str, written: str) -> str:
    match = _CLOCK.match(written)
    if not match:
        return written
    hours, minutes, seconds = int(match.group(1)), match.group(2), match.group(3)
    part = next((p for p in _DAY_PARTS if spoken.startswith(p)), "")
    clock = f"{hours}:{minutes}"
    if seconds and seconds != "00":
        clock += f":{seconds}"
    return part + clock


def _written(language: str, token_type: str, spoken: str, written: str) -> str:
    if language == "zh" and token_type == "date":
        return _chinese_date(written)
    if language == "zh" and token_type == "time":
        return _chinese_time(spoken, written)
    if language == "en":
        return _PERCENT_SPACE.sub(r"\1%", written)
    return written


def replacements(text: str, language: str | None) -> list[Replacement]:
    """The spans of ``text`` that are numbers, dates, times or money in words, each
    with its written form; none for languages without a grammar (Chinese, English)."""
    code = (language or "").lower().split("-")[0]
    if code not in ("zh", "en") or not text.strip():
        return []
    result = normaliser(code, "itn").normalize_with_mapping(text)
    out = []
    for mapping in result.mappings:
        if mapping.kind != "replace":
            continue
        written = _written(code, mapping.token_type, mapping.input_text, mapping.output_text)
        if written != mapping.input_text:
            out.append(Replacement(mapping.input_start, mapping.input_end, written))
    return out


def apply(text: str, found: list[Replacement]) -> str:
    pieces, at = [], 0
    for replacement in sorted(found, key=lambda r: r.start):
        pieces += [text[at:replacement.start], replacement.written]
        at = replacement.end
    pieces.append(text[at:])
    return "".join(pieces)


def for_reading(text: str, language: str | None) -> str:
    """``text`` with its numbers, dates, times and money written in figures."""
    return apply(text, replacements(text, language))
