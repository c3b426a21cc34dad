"""Written text as it is spoken, before a voice reads it (text normalisation, "TN").

WeTextProcessing's grammars (run by ``wetext``, without pynini) turn numbers, dates,
clock times, money, percentages, units, phone numbers, ranges (``3-5天``) and fractions
into words, in Chinese and in English, and expand the common English abbreviations
(``Dr.``, ``Mr.``, ``$3.5m``, ``2:30pm``). What they miss is rewritten here first, into
forms they read:

- a thousand and some written with a separator (``1,234``, ``$1,500``): the English
  grammar drops its "one" ("thousand two hundred…"), which is put back;
- thousands separators in Chinese text, which the Chinese grammar reads as a pause;
- ``St.`` (Street, or Saint before a name), ``Prof.``, ``vs.``, which the English
  grammar leaves as written;
- a range of numbers before a Chinese measure word after ``第`` (``第3-5章``), which the
  Chinese grammar reads as a subtraction.

Each grammar takes a few milliseconds for a sentence (see ``python -m bench text``).
"""

from __future__ import annotations

import logging
import re
from functools import cache
from typing import Any

from webapp.app.concurrency import real_lock

_THOUSANDS = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,]*\d)")
_BARE_THOUSAND = re.compile(r"(\b[a-z]+\s+|^)thousand\b")
_NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred and point a".split())
# "St. Louis" is Saint; "Baker St." (no name after it) is Street.
_SAINT = re.compile(r"\bSt\.(?=\s+[A-Z])")
_STREET = re.compile(r"\bSt\.")
_EN_ABBREVIATIONS = ((re.compile(r"\bProf\.(?=\s)"), "Professor"),
                     (re.compile(r"\bvs\.(?=\s)"), "versus"))
_ZH_RANGE = re.compile(r"(?<![\d\-])(\d+)\s*[-~～–—]\s*(\d+)(?=[\u4e00-\u9fff])")

# Where a text may be cut for the grammars: after clause punctuation, and after a
# Western comma or full stop followed by a space (not inside "1,234" or "3.5").
_CLAUSE_END = re.compile(r"(?<=[。！？；，、：!?;\n])|(?<=[,.:] )")

# A clause with none of these has nothing a grammar would change: it is not run through it.
_NEEDS = {("zh", "tn"): re.compile(r"\d"), ("en", "tn"): re.compile(r"[\d.$€£¥%&@/]"),
          ("zh", "itn"): re.compile(r"[零〇一二两三四五六七八九十百千万亿幺点半]"),
          ("en", "itn"): re.compile(
              r"(?i)\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|"
              r"twelve|\w+teen|\w+ty|hundred|thousand|million|billion|percent|dollars?|"
              r"cents?|first|second|third|\w+th)\b")}

# What a text may grow by when spelled out: twice its length, and a sentence more, so a
# number-dense sentence ("Call 555-0123 at 10:30") always passes.
MAX_EXPANSION = 2
EXPANSION_SLACK = 200
# Four or more of one symbol (not a letter, digit or space): "***", "..." and "!!!" stay.
_SYMBOL_RUN = re.compile(r"([^\w\s])\1{3,}")

_lock = real_lock()
log = logging.getLogger(__name__)


def clauses(text: str) -> list[tuple[int, str]]:
    """``text`` cut into clauses, each with its offset: the grammars' cost grows faster
    than the length of their input, so they are run clause by clause."""
    out, at = [], 0
    for piece in _CLAUSE_END.split(text):
        if piece:
            out.append((at, piece))
        at += len(piece)
    return out


@cache
def _normaliser(language: str, operator: str) -> Any:
    from wetext import Normalizer

    normaliser = Normalizer(lang=language, operator=operator)
    normaliser.normalize("1")  # reads the grammar's FSTs now, once
    return normaliser


def needs_grammar(language: str, operator: str, clause: str) -> bool:
    """Whether ``clause`` has anything the grammar could change."""
    pattern = _NEEDS.get((language, operator))
    return pattern is None or bool(pattern.search(clause))


def normaliser(language: str, operator: str) -> Any:
    """WeTextProcessing's ``tn`` or ``itn`` grammar of ``language`` (``zh``, ``en``),
    loaded once per process (a lock keeps two threads from both reading its files)."""
    with _lock:
        return _normaliser(language, operator)


def run(language: str, operator: str, text: str) -> str:
    """One of WeTextProcessing's grammars on ``text``, clause by clause; the spaces
    between clauses are kept (the grammars strip them)."""
    grammar = normaliser(language, operator)
    out = []
    for _, clause in clauses(text):
        if not needs_grammar(language, operator, clause):
            out.append(clause)
            continue
        body = clause.strip()
        lead = clause[:len(clause) - len(clause.lstrip())]
        tail = clause[len(clause.rstrip()):]
        out.append(lead + (_apply(grammar, body) if body else "") + tail)
    return "".join(out)


def _apply(grammar: Any, clause: str) -> str:
    """The grammar's reading of one clause, or the clause as written where the grammar
    breaks on it (wetext fails an assertion on "$*"): the voice then reads it as it can."""
    try:
        return grammar.normalize(clause)
    except Exception:  # noqa: BLE001 - any input a grammar cannot take is left as written
        log.warning("text normalisation failed on %r; read as written", clause[:80])
        return clause


def _one_thousand(match: re.Match[str]) -> str:
    before = match.group(1)
    if before.strip().lower() in _NUMBER_WORDS:
        return match.group(0)
    return f"{before}one thousand"


def english(text: str) -> str:
    text = _SAINT.sub("Saint", text)
    text = _STREET.sub("Street", text)
    for pattern, words in _EN_ABBREVIATIONS:
        text = pattern.sub(words, text)
    return _BARE_THOUSAND.sub(_one_thousand, run("en", "tn", text))


def chinese(text: str) -> str:
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _ZH_RANGE.sub(r"\1到\2", text)
    return run("zh", "tn", text)


class ReadsTooLong(ValueError):
    """The text would take far longer to say than its length suggests."""


def bounded(written: str, spoken: str) -> str:
    """``spoken`` if reading ``written`` out costs about what its length says, else
    ``ReadsTooLong``. Limits count written characters, so without this a short text
    could buy a long synthesis: 4,095 zeros read "oh oh oh…" for twenty minutes."""
    if len(spoken) > MAX_EXPANSION * len(written) + EXPANSION_SLACK:
        raise ReadsTooLong(
            f"the text reads out {len(spoken)} characters long from {len(written)} written "
            "(long runs of digits or symbols); write them as they should be said")
    return spoken


def for_speech(text: str, language: str | None) -> str:
    """``text`` with everything written in figures or abbreviations spelled out in words
    of ``language`` (Chinese or English; other languages are returned as they are).

    A run of one symbol is read once ("****" is one asterisk, a line of "-" one dash);
    a text that still reads out far longer than it is written raises ``ReadsTooLong``.
    """
    text = _SYMBOL_RUN.sub(r"\1", text)
    code = (language or "").lower().split("-")[0]
    if code in ("zh", "cmn"):
        return bounded(text, chinese(text))
    if code == "en":
        return bounded(text, english(text))
    return text
