"""Chinese in the script its reader uses: simplified unless the language asked for is
Taiwan's or Hong Kong's (``zh-TW``, ``zh-HK``, ``zh-Hant``), with OpenCC's character
tables. Recognisers trained on both scripts (Whisper) mix them in one transcript.

Conversion is character by character (OpenCC's ``t2s``, ``s2tw``, ``s2hk``), so a
transcript's words keep their length and their timestamps.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from webapp.app.concurrency import real_lock

_TRADITIONAL = {"zh-tw": "s2tw", "zh-hant": "s2tw", "zh-hant-tw": "s2tw", "zh-hk": "s2hk",
                "zh-mo": "s2hk", "zh-hant-hk": "s2hk", "yue": "s2hk"}
SIMPLIFIED = "t2s"

_lock = real_lock()


def conversion_for(language: str | None) -> str:
    """OpenCC's configuration for a reader of ``language``."""
    return _TRADITIONAL.get((language or "").lower().replace("_", "-"), SIMPLIFIED)


@cache
def _converter(config: str) -> Any:
    import opencc

    return opencc.OpenCC(config)


def convert(text: str, conversion: str) -> str:
    """``text`` in the script ``conversion`` (from ``conversion_for``) writes."""
    if not text:
        return text
    with _lock:  # one converter object is not meant for two threads at once
        return _converter(conversion).convert(text)
