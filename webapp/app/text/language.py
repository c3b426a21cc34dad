"""Which language a text is written in, so that a voice that speaks it can read it.

Writing systems settle most cases without a model: kana is Japanese, Hangul Korean,
Chinese characters Chinese. Text in Latin, Cyrillic or another alphabet goes to
``py3langid`` (langid.py's model, shipped in its wheel), restricted to the languages the
local voices speak; a text too short to tell, or told without confidence, is English.

Mixed Chinese and English (``我用iPhone给你发了个PDF``) is Chinese when its Chinese
characters weigh at least as much as its Latin words, counting a word as two
characters (about as long to say).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)

# Languages the built-in voices speak besides Chinese, Japanese and Korean (eSpeak NG's
# listed voices); langid chooses among these.
CANDIDATES = ("en", "fr", "de", "es", "it", "pt", "ru", "vi")
# Below this normalised probability langid's guess is not trusted: English, the
# language most short Latin-script texts sent here are in. Another alphabet (Cyrillic,
# Greek, Arabic, …) narrows the choice, so a lower bar is enough there.
MIN_CONFIDENCE = 0.9
MIN_CONFIDENCE_OTHER_SCRIPT = 0.5
MIN_LETTERS = 12


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(CANDIDATES))
    return identifier


def han_count(text: str) -> int:
    return len(_HAN.findall(text))


def latin_words(text: str) -> list[str]:
    return _LATIN_WORD.findall(text)


def is_chinese_dominant(text: str) -> bool:
    """More Chinese than Latin-script speech in ``text`` (see the module's note)."""
    han = han_count(text)
    return han > 0 and han >= 2 * len(latin_words(text))


def detect(text: str) -> str:
    """The language ``text`` is written in, as a short code (``zh``, ``en``, ``fr``, …)."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if is_chinese_dominant(text):
        return "zh"
    letters = len(_LETTERS.findall(text))
    if letters < MIN_LETTERS and (letters == 0 or text.isascii()):
        return "en"
    code, confidence = _identifier().classify(text)
    latin = all(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in _LETTERS.findall(text))
    return code if confidence >= (MIN_CONFIDENCE if latin else MIN_CONFIDENCE_OTHER_SCRIPT) \
        else "en"
