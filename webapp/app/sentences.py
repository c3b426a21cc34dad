"""Cutting text into sentences, the one way every part of the app does it.

A sentence ends at Chinese or Western end punctuation (``。！？；…``, ``!?;``, a line
break); closing quotes and brackets stay with it. A Western full stop ends one only when
a space or the end of the text follows and it does not close an abbreviation
(``Mr.``) or an initial (``J.``), so ``3.5`` and ``J. R. Tolkien`` stay whole.
Punctuation alone is never a sentence: it is kept with the sentence before it.

Streamed text (an LLM reply) goes through a ``SentenceCutter``, which may cut the first
piece early at a comma once it is long enough, so the first audio starts sooner; whole
texts go through ``split_sentences`` and ``first_sentence``. This module depends on
nothing else in the app, so engines and services alike can use it.
"""

from __future__ import annotations

import re

_HARD_END = re.compile(r"[。！？!?；;…\n]+[”’\"')）」』]*")
_SOFT_END = re.compile(r"[，,、：:]")
_DOT_END = re.compile(r"\.+[”’\"')]*(?=\s)")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "prof", "jr", "sr"}

FIRST_CLAUSE_MIN = 12
"""Weight a first clause needs before a comma may end it (see ``_weight``)."""
MAX_WEIGHT = 240
"""Weight beyond which a sentence is cut anyway, at a comma or a space."""


def _char_weight(ch: str) -> int:
    """CJK characters count double: a clause of 6 of them is worth 12 Latin letters."""
    return 2 if "\u2e80" <= ch <= "\u9fff" else 1


def _weight(text: str) -> int:
    return sum(map(_char_weight, text))


def _prefix_within(text: str, limit: int) -> int:
    """How many leading characters of ``text`` weigh at most ``limit`` (at least one)."""
    total = 0
    for index, ch in enumerate(text):
        total += _char_weight(ch)
        if total > limit:
            return max(index, 1)
    return len(text)


def _speakable(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


class SentenceCutter:
    """Cuts a stream of text into sentences as it arrives; the cuts do not depend on how
    the stream was divided into pieces.

    ``first_clause_min`` (a weight) lets the first sentence end at a comma once it is
    that heavy; ``None`` never cuts early. ``max_weight`` bounds every piece: a longer
    sentence is cut at its last comma (else space) within that weight.
    """

    def __init__(self, first_clause_min: int | None = FIRST_CLAUSE_MIN,
                 max_weight: int = MAX_WEIGHT) -> None:
        self._buffer = ""
        self._emitted = 0
        self.first_clause_min = first_clause_min
        self.max_weight = max_weight

    def _dot_end(self) -> int | None:
        for match in _DOT_END.finditer(self._buffer):
            words = self._buffer[:match.start()].rsplit(None, 1)
            word = words[-1] if words else ""
            initial = len(word) == 1 and word.isupper()
            if word.lower() not in _ABBREVIATIONS and not initial:
                return match.end()
        return None

    def _cut_at(self) -> int | None:
        hard = _HARD_END.search(self._buffer)
        # Punctuation that reaches the end of the buffer may go on in the next piece.
        hard_end = hard.end() if hard and hard.end() < len(self._buffer) else None
        ends = [end for end in (hard_end, self._dot_end()) if end is not None]
        if self._emitted == 0 and self.first_clause_min is not None:
            limit = min(ends) if ends else len(self._buffer)
            for match in _SOFT_END.finditer(self._buffer, 0, limit):
                if _weight(self._buffer[:match.end()]) >= self.first_clause_min:
                    return match.end()
        # A sentence longer than ``max_weight`` is cut within that weight, the same
        # whether its end has arrived yet or not.
        if ends and _weight(self._buffer[:min(ends)]) <= self.max_weight:
            return min(ends)
        if _weight(self._buffer) > self.max_weight:
            head = self._buffer[:_prefix_within(self._buffer, self.max_weight)]
            soft = list(_SOFT_END.finditer(head))
            space = head.rfind(" ")
            return soft[-1].end() if soft else (space + 1 if space > 0 else len(head))
        return None

    def feed(self, delta: str) -> list[str]:
        """Add a piece of the stream; return the sentences it completed."""
        self._buffer += delta
        out: list[str] = []
        while (cut := self._cut_at()) is not None:
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece and _speakable(piece):
                out.append(piece)
                self._emitted += 1
            elif piece and out:
                out[-1] += piece
        return out

    def flush(self) -> list[str]:
        """The rest of the stream, once it has ended."""
        piece, self._buffer = self._buffer.strip(), ""
        if piece and _speakable(piece):
            self._emitted += 1
            return [piece]
        return []


def split_sentences(text: str, first_clause_min: int | None = None) -> list[str]:
    """Every sentence of a whole text, in order; text with nothing to say gives ``[]``."""
    cutter = SentenceCutter(first_clause_min=first_clause_min)
    return cutter.feed(text) + cutter.flush()


def first_sentence(text: str) -> str:
    """The text's first sentence (the whole text when it has no sentence end)."""
    sentences = split_sentences(text)
    return sentences[0] if sentences else text.strip()


def _spaced_script(ch: str) -> bool:
    """Whether the script of ``ch`` puts spaces between words (Latin does, CJK does not)."""
    return not ("\u2e80" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f"
                or "\uff00" <= ch <= "\uffef")


def join_sentences(sentences: list[str]) -> str:
    """Sentences cut from one text, put back together: a space between two where the
    script has spaces ("responder, not"), none between Chinese ones ("好。谢谢")."""
    text = ""
    for sentence in sentences:
        if text and sentence and _spaced_script(text[-1]) and _spaced_script(sentence[0]):
            text += " "
        text += sentence
    return text
