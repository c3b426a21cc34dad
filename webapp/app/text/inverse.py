"""Spoken words as they are written, after recognition (inverse normalisation, "ITN").

WeTextProcessing's ITN grammars (run by ``wetext``) find the numbers, dates, times,
money and percentages among the words and write them in figures: ``一百九十九块五毛`` →
``199块5毛``, ``twenty three dollars and fifty cents`` → ``$23.50``. Each change comes
with the span of the input it replaces, and the text is rebuilt from the input with only
those spans changed, so what was not a number keeps its spacing and punctuation, and a
word's timestamps can follow its words (``replacements``).

Added here: Chinese dates and clock times in the form Chinese is written in
(``二零二五年三月五号下午三点半`` → ``2025年3月5日下午3:30``, where the grammar writes
``2025/03/05`` and ``03:30:00p.m.``), no space before ``%`` in English, and words left as
they are that the grammars take for numbers but mostly are not ("at first", "a second",
十分 "very").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from webapp.app.text.normalise import clauses, needs_grammar, normaliser

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


_UNCHANGED = frozenset({"char", "word", "punctuation"})
# Words the grammars would write in figures that are, far more often, not numbers:
# "at first", "a second", 十分 ("very").
_NOT_NUMBERS = {"en": frozenset({"first", "second"}), "zh": frozenset({"十分"})}
_FLAGS = frozenset({"preserve_order"})


def _find(text: str, at: int, piece: str) -> int | None:
    """Where ``piece`` ends when it starts at ``at`` (after any spaces), else None."""
    while at < len(text) and text[at].isspace():
        at += 1
    return at + len(piece) if text.startswith(piece, at) else None


def _spans(text: str, language: str) -> list[Replacement]:
    """Tag ``text`` with the ITN grammar and verbalise each tagged token on its own,
    locating it in ``text`` by the words it was tagged from (tagging and verbalising are
    the library's fast path; its own span tracing costs a hundred times more)."""
    from wetext.token_parser import TokenParser
    from wetext.utils import reorder, tag, verbalize

    normaliser(language, "itn")  # the grammars, loaded once
    tagged = tag(text, language, "itn")
    if not tagged:
        return []
    parser = TokenParser(language, "itn")
    parser.parse(tagged)
    out, at = [], 0
    for token in parser.tokens:
        pieces = [value for key, value in token.members.items() if key not in _FLAGS]
        start = at
        for piece in pieces:
            end = _find(text, at, piece)
            if end is None:
                return []  # the tags do not spell the text out: change nothing
            if piece is pieces[0]:
                start = end - len(piece)
            at = end
        if token.name in _UNCHANGED:
            continue
        written = verbalize(reorder(token.string(parser.orders), language, "itn"), language,
                            "itn")
        spoken = text[start:at]
        if spoken.lower() in _NOT_NUMBERS[language]:
            continue
        written = _written(language, token.name, spoken, written)
        if written and written != spoken:
            out.append(Replacement(start, at, written))
    return out


def replacements(text: str, language: str | None) -> list[Replacement]:
    """The spans of ``text`` that are numbers, dates, times or money in words, each
    with its written form; none for languages without a grammar (Chinese, English).
    The text is worked on clause by clause: the grammars' cost grows faster than the
    length of what they are given."""
    code = (language or "").lower().split("-")[0]
    if code not in ("zh", "en") or not text.strip():
        return []
    out = []
    for offset, clause in clauses(text):
        if not needs_grammar(code, "itn", clause):
            continue
        out += [Replacement(r.start + offset, r.end + offset, r.written)
                for r in _spans(clause, code)]
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
