"""How much silence ends a caller's turn, judged from how the turn sounds and what it says.

A person who pauses mid-sentence keeps the turn. When the caller pauses, two opinions
are asked:

- Smart Turn (``webapp.app.audio.end_of_turn``) hears whether the utterance *sounds*
  finished. On recorded English it scores mid-sentence pauses 0.006–0.08 and sentence
  ends around 0.8; on Mandarin it hears every finished clause as a finished turn
  (0.45–0.99 at commas).
- The transcript of the pause's read: an utterance that ends on a comma, a conjunction
  or a particle that needs more ("and", "because", "然后", "因为", "的") is unfinished
  whatever the model hears.

The verdict is a silence: ``complete_ms`` when both agree the turn is over,
``unfinished_ms`` (a few seconds) when either says it is not. Mandarin and its
neighbours need more, since Whisper ends a clause with "。" and the model hears it as
an end: a longer turn there waits ``clause_ms`` unless it ends as a question or on a
final particle, while a short answer ("好的") still ends at ``complete_ms``.

Pure computation: the caller runs the model and the read, then asks ``silence_for``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ENGLISH_UNFINISHED = frozenset({
    "and", "but", "or", "because", "cause", "if", "while", "which", "the", "a", "an", "to",
    "of", "for", "with", "from", "my", "your", "our", "their", "um", "uh", "er", "than",
    "into", "although", "though", "whether",
})
_CHINESE_UNFINISHED = ("然后", "因为", "所以", "但是", "可是", "而且", "还有", "就是", "那个",
                       "这个", "如果", "虽然", "或者", "不过", "以及", "并且", "比如", "还是",
                       "的", "和", "跟", "与", "把", "被", "呃")
# Whole answers that end like an unfinished clause would ("好的" ends on "的").
_CHINESE_ANSWERS = ("好的", "是的", "对的", "真的", "行的", "可以的")
_CHINESE_FINAL = ("吗", "呢", "吧", "嘛", "呀", "啦", "？", "?", "！", "!")
_COMMA = re.compile(r"[,，、;；:：\-—…]\s*$")
_TRAILING_STOP = re.compile(r"[\s。\.！!？?\"'“”‘’)）]+$")
_WORD = re.compile(r"[a-z']+")
_UNSPACED = ("zh", "yue", "ja")
# A Mandarin turn with less speech than this is a short answer: it may end quickly.
_SHORT_ANSWER_MS = 1600


@dataclass(frozen=True)
class CompletionSettings:
    complete_ms: int = 400
    unfinished_ms: int = 2000
    clause_ms: int = 1200
    threshold: float = 0.5


def unfinished_text(text: str, language: str | None) -> bool:
    """True when the words so far plainly need more: a trailing comma, conjunction,
    article, preposition or particle."""
    text = text.strip()
    if not text:
        return False
    if _COMMA.search(text):
        return True
    bare = _TRAILING_STOP.sub("", text)
    if _is_unspaced(language, bare):
        return bare.endswith(_CHINESE_UNFINISHED) and not bare.endswith(_CHINESE_ANSWERS)
    words = _WORD.findall(bare.lower())
    return bool(words) and words[-1] in _ENGLISH_UNFINISHED and not text.rstrip().endswith("?")


def _is_unspaced(language: str | None, text: str) -> bool:
    if language:
        return language.lower().startswith(_UNSPACED)
    return any("\u3040" <= ch <= "\u9fff" for ch in text[-4:])


def silence_for(probability: float | None, text: str, language: str | None, voiced_ms: int,
                settings: CompletionSettings) -> int:
    """The silence (ms) after which this pause ends the turn. ``probability`` is Smart
    Turn's, None when the model is off (then the words alone judge)."""
    if unfinished_text(text, language):
        return settings.unfinished_ms
    if probability is not None and probability < settings.threshold:
        # Less sure, longer wait: a score near the threshold waits a little, near 0 fully.
        doubt = 1 - probability / settings.threshold
        return int(settings.complete_ms
                   + (settings.unfinished_ms - settings.complete_ms) * min(1.0, 0.25 + doubt))
    if _is_unspaced(language, text) and voiced_ms >= _SHORT_ANSWER_MS \
            and not _TRAILING_STOP.sub("", text.strip()).endswith(_CHINESE_FINAL) \
            and not text.rstrip().endswith(("？", "?", "！", "!")):
        return max(settings.complete_ms, settings.clause_ms)
    return settings.complete_ms
