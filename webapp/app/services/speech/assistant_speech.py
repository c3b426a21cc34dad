"""Speech for voice assistants that bring their own pipeline (Home Assistant through
Wyoming): what can be recognised and spoken (and which role answers as the conversation
agent, see ``conversation.assistant_agent``), recognition of a finished command, and
synthesis of a reply.

The assistant is a program on the local network, not a signed-in person: it acts for
one configured user (``WYOMING_USER``), whose own cloned voices and roles it may use
besides the built-in and public ones. Nothing here knows the wire protocol.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.app import audio
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Role, User, Voice
from webapp.app.providers.base import AudioChunk, Segment
from webapp.app.providers.registry import ENGINES
from webapp.app.services.sessions import roles
from webapp.app.services.voice_library import synthesis, voices

_HAN = re.compile(r"[\u3400-\u9fff]")


@dataclass
class Recogniser:
    name: str
    description: str
    languages: list[str]


@dataclass
class SpokenVoice:
    name: str
    description: str
    languages: list[str]


@dataclass
class Agent:
    name: str
    description: str
    languages: list[str]


@dataclass
class Catalogue:
    recognisers: list[Recogniser] = field(default_factory=list)
    voices: list[SpokenVoice] = field(default_factory=list)
    agent: Agent | None = None


def assistant_user() -> int | None:
    """The user the assistant acts for (``WYOMING_USER``, a username), if any."""
    name = current_app.config.get("WYOMING_USER") or ""
    if not name:
        return None
    user = db.session.scalar(select(User).where(User.username == name))
    return user.id if user is not None else None


def agent_role(user_id: int | None) -> Role | None:
    """The role configured to answer as the conversation agent (``WYOMING_ROLE``), if
    ``user_id`` may use it."""
    reference = current_app.config.get("WYOMING_ROLE") or ""
    if not reference or user_id is None:
        return None
    try:
        return roles.named(reference, user_id)
    except ApiError:
        return None


def catalogue() -> Catalogue:
    """Every recogniser and voice the assistant may use, and its role if it has one."""
    registry = current_app.extensions["providers"]
    user_id = assistant_user()
    out = Catalogue()
    for name in registry.configured_names("stt"):
        if name == "qwen-audio":  # it reads stored files only, never a live command
            continue
        engine = registry.stt(name)
        out.recognisers.append(Recogniser(name, ENGINES["stt"][name].rsplit(".", 1)[-1],
                                          list(engine.capabilities.languages)))
    voices.sync_builtin_voices()
    query = voices.usable_query(user_id).order_by(Voice.builtin, Voice.engine, Voice.name)
    for voice in db.session.scalars(query):
        name = voice.voice_type if voice.builtin else voice.id
        out.voices.append(SpokenVoice(name, voice.name, [voice.language or "en"]))
    role = agent_role(user_id)
    if role is not None:
        out.agent = Agent(f"role:{role.id}", role.name, ["zh", "en"])
    return out


def _language_of(text: str) -> str:
    return "zh" if _HAN.search(text) else "en"


def choose_voice(name: str | None, language: str | None, text: str) -> Voice:
    """The voice asked for by name; else the local engine's voice for the language
    asked for (or, without one, the language the text is written in)."""
    user_id = assistant_user()
    if name:
        return voices.resolve_usable(name, user_id)
    registry = current_app.extensions["providers"]
    language = language or _language_of(text)
    engine = registry.local_tts_for(language)
    voices.sync_builtin_voices()
    rows = list(db.session.scalars(voices.usable_query(user_id).where(
        Voice.builtin.is_(True), Voice.engine == engine).order_by(Voice.voice_type)))
    prefix = language.lower().split("-")[0]
    same = [v for v in rows if (v.language or "").lower().startswith(prefix)]
    if prefix in ("zh", "cmn"):
        same = same or [v for v in rows if (v.language or "").lower().startswith("cmn")]
    if not (same or rows):
        return voices.default_voice()
    return (same or rows)[0]


def speak(voice: Voice, text: str) -> Iterator[AudioChunk]:
    """``text`` spoken by ``voice``: raw PCM pieces as the engine makes them."""
    engine, options = synthesis.engine_for(voice, with_fallback=True)
    spoke = False
    for chunk in engine.synthesize_stream(text, options):
        if chunk.pcm:
            spoke = True
            yield chunk
    if not spoke:
        raise ApiError(400, "bad_request", "INVALID_INPUT", {"detail": synthesis.SILENT_TEXT})


def recogniser(name: str | None) -> Any:
    """A configured recogniser by name (the default one without a name)."""
    registry = current_app.extensions["providers"]
    if name and name in registry.configured_names("stt"):
        return registry.stt(name)
    return registry.stt()


def transcribe(pcm: bytes, language: str | None, name: str | None = None
               ) -> Iterator[Segment]:
    """The segments of a finished command (16 kHz mono PCM) as the recogniser finds them."""
    engine = recogniser(name)
    if engine.name == "whisper":  # Whisper hands out each segment as it decodes it
        wav = audio.wav_header(audio.SPEECH_SAMPLE_RATE, len(pcm)) + pcm
        yield from engine.transcribe_segments(wav, language or None, {})
        return
    result = engine.transcribe_decoded(pcm, language or None)
    yield from result.segments or [Segment(0.0, result.duration, result.text)]
