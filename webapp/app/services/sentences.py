"""Cut streamed text into speakable pieces as it arrives.

A sentence ends at Chinese or Western end punctuation (a Western full stop only when
followed by a space or the end of the stream, so ``3.5`` stays whole). The first piece
may be cut early at a comma once it is long enough, so the first audio starts sooner.
"""

from __future__ import annotations

import re

_HARD_END = re.compile(r"[。！？!?；;…\n]+[”’\"')）」』]*")
_SOFT_END = re.compile(r"[，,、：:]")
_DOT_END = re.compile(r"\.+[”’\"')]*(?=\s)")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "vs", "etc", "e.g", "i.e", "prof", "jr", "sr"}


def _weight(text: str) -> int:
    """CJK characters count double: a clause of 6 of them is worth 12 Latin letters."""
    return sum(2 if "\u2e80" <= ch <= "\u9fff" else 1 for ch in text)


class SentenceCutter:
    def __init__(self, first_clause_min: int = 12, max_weight: int = 240) -> None:
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
        hard_end = hard.end() if hard and hard.end() < len(self._buffer) else None
        ends = [end for end in (hard_end, self._dot_end()) if end is not None]
        if self._emitted == 0:
            limit = min(ends) if ends else len(self._buffer)
            for match in _SOFT_END.finditer(self._buffer, 0, limit):
                if _weight(self._buffer[:match.end()]) >= self.first_clause_min:
                    return match.end()
        if ends:
            return min(ends)
        if _weight(self._buffer) >= self.max_weight:
            soft = list(_SOFT_END.finditer(self._buffer))
            space = self._buffer.rfind(" ")
            return soft[-1].end() if soft else (space + 1 if space > 0 else len(self._buffer))
        return None

    def feed(self, delta: str) -> list[str]:
        """Add a piece of the stream; return the sentences it completed."""
        self._buffer += delta
        out = []
        while (cut := self._cut_at()) is not None:
            piece, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if piece and any(ch.isalnum() for ch in piece):
                out.append(piece)
                self._emitted += 1
            elif piece and out:
                out[-1] += piece
        return out

    def flush(self) -> list[str]:
        """The rest of the stream, once it has ended."""
        piece, self._buffer = self._buffer.strip(), ""
        if piece and any(ch.isalnum() for ch in piece):
            self._emitted += 1
            return [piece]
        return []


def split_all(text: str) -> list[str]:
    cutter = SentenceCutter(first_clause_min=10**9)
    return cutter.feed(text) + cutter.flush()
