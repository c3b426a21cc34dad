"""How far a recogniser's text is from what was said: the edit distance both the
English word error rate and the Mandarin character error rate are built on."""

from __future__ import annotations

import re
from collections.abc import Sequence


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance: substitutions + deletions + insertions, item by item."""
    previous = list(range(len(hypothesis) + 1))
    for i, item in enumerate(reference, 1):
        current = [i]
        for j, guess in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (item != guess)))
        previous = current
    return previous[-1]


# Transcripts write small numbers as digits (the service's inverse text normalisation,
# Whisper's own habit) where the script spells them out: "nine" and "9" are one word.
_NUMBERS = {word: str(n) for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}


def normalise_words(text: str) -> list[str]:
    """Lower-cased words without punctuation, small numbers as digits: the usual basis
    for word error rate."""
    words = re.sub(r"[^\w\s']", " ", text.lower()).replace("'", "").split()
    return [_NUMBERS.get(word, word) for word in words]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance ÷ reference words."""
    ref = normalise_words(reference)
    return edit_distance(ref, normalise_words(hypothesis)) / max(1, len(ref))
