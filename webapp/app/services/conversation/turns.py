"""One turn of a conversation with a role, the same for every transport.

voice in → ASR → LLM streamed → sentences synthesized while the next is written →
audio out in order; both sides of the turn are stored with per-turn timings. A
transport supplies a ``TurnSink`` (how it tells its client) and a cancel event
(``interrupt``); it holds no chat logic of its own.

Voice in is recognised from the audio in hand (``VoiceInput``) while it is written to
storage beside; it is kept with the user's message, or not at all. The reply is
encoded once, as it streams, and those bytes are what is stored.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import select

from webapp.app.audio.outgoing import OutgoingAudio
from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Conversation, File, Message, Role, Voice, VoiceProfile
from webapp.app.models.common import new_uuid
from webapp.app.providers.base import AudioChunk, ChatOptions, SynthesisOptions, Transcription
from webapp.app.schemas import find_lone_surrogate
from webapp.app.services.conversation import memory
from webapp.app.services.platform import files, jobs, limits, usage_counters
from webapp.app.services.sessions import conversations, roles
from webapp.app.services.speech import recorded_speech
from webapp.app.services.speech.reply_stream import SpokenReply, stream_reply
from webapp.app.services.speech.voice_input import VoiceInput
from webapp.app.services.voice_library import synthesis, voices

log = logging.getLogger(__name__)

RESPONSE_TEXT, RESPONSE_VOICE, RESPONSE_RANDOM = 0, 1, 2
STREAM_FORMATS = ("mp3", "pcm")
RECENT_TURNS = 10


class TurnSink(Protocol):
    """What a transport does with each step of a turn.

    A ``paced`` sink (a live call) is handed the reply's audio no faster than it is
    heard: ``pace(seconds)`` returns once the listener needs that much more, or False
    once the reply is cut off. ``heard_seconds`` is how much of the reply the listener
    reported having played (None when it did not say), so that an interrupted reply is
    stored as far as it was heard."""

    paced: bool

    def pace(self, seconds: float) -> bool: ...

    def heard_seconds(self) -> float | None: ...

    def asr_result(self, text: str) -> None: ...

    def text_chunk(self, text: str) -> None: ...

    def audio_start(self, fmt: str, sample_rate: int, message_id: str) -> None: ...

    def audio_chunk(self, data: bytes) -> None: ...

    def audio_end(self, audio_url: str | None, duration: float, reason: str | None) -> None: ...

    def reply(self, payload: dict[str, Any]) -> None: ...

    def complete(self, payload: dict[str, Any]) -> None: ...


@dataclass
class TurnRequest:
    user_id: int
    role_id: int
    session_id: str | None = None
    text: str | None = None
    audio: bytes | None = None
    voice_url: str | None = None
    response_type: int = RESPONSE_VOICE
    audio_format: str = "mp3"
    # A live call hands over the speech as it heard it (16 kHz mono samples), and has
    # recognised it while it was spoken: the turn stores ``pcm`` with this text instead
    # of recognising it again, and counts its timings from ``started`` (the end of
    # speech), carrying over the call's own ``timings``.
    pcm: bytes | None = None
    recognised: Transcription | None = None
    recognised_by: str | None = None
    started: float | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # An interrupted reply is stored as what the listener heard, not what was written.
    store_delivered: bool = False
    # A reply started before the speaker has surely finished (a live call answers in the
    # pause that may end the turn, with the speech already ``recognised``): nothing is
    # stored until the reply is over and ``go_ahead`` answers, which it does once the
    # turn's fate is known — the moment (``perf_counter``) the turn was confirmed, or None
    # when the speaker went on and the turn is dropped without a trace. The sink holds
    # back what it is told until then.
    go_ahead: Callable[[], float | None] | None = None


@dataclass
class Turn:
    """A validated turn: everything is checked before anything is stored or said."""

    request: TurnRequest
    role: Role
    session: Conversation
    recording: VoiceInput | None = None
    """The caller's own voice, when the turn is spoken (not the role's voice)."""
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    language: str | None = None
    asr_engine: str | None = None
    heard: usage_counters.Charge | None = None
    """What the voice input was counted for, given back if it cannot be recognised."""


def _bad(detail: str, code: str = "BAD_MESSAGE") -> ApiError:
    return ApiError(400, "bad_request", code, {"detail": detail})


def open_session(user_id: int, role_id: int, session_id: str | None = None
                 ) -> tuple[Role, Conversation]:
    """The role and the user's session with it (a new one when none is named)."""
    role = roles.usable(role_id, user_id)
    if session_id is not None and (not isinstance(session_id, str)
                                   or find_lone_surrogate(session_id) is not None):
        raise _bad("session_id must be a session id (a string)")
    if session_id:
        session = conversations.get_owned(session_id, user_id)
        if session.role_id not in (None, role.id):
            raise _bad("the session belongs to another role", "SESSION_ROLE_MISMATCH")
        return role, session
    return role, conversations.create(user_id, role_id=role.id, voice_type=role.voice_type)


def prepare(request: TurnRequest) -> Turn:
    """Check the role, the session and the input; store the input audio if it came inline."""
    if request.response_type not in (RESPONSE_TEXT, RESPONSE_VOICE, RESPONSE_RANDOM):
        raise _bad("response_type must be 0, 1 or 2")
    if request.audio_format not in STREAM_FORMATS:
        raise _bad("audio_format must be mp3 or pcm")
    if not (request.text or "").strip() and request.audio is None and request.pcm is None \
            and not request.voice_url:
        raise _bad("message is empty")
    if find_lone_surrogate([request.text, request.voice_url, request.session_id]) is not None:
        raise _bad("the message contains a lone UTF-16 surrogate, which is not a character")
    role, session = open_session(request.user_id, request.role_id, request.session_id)
    turn = Turn(request=request, role=role, session=session, timings=dict(request.timings))
    if request.started is not None:
        turn.started = request.started
    limit = current_app.config["MAX_CHAT_AUDIO_SECONDS"]
    if request.voice_url:
        turn.recording = VoiceInput.stored(
            files.resolve_own_url(request.voice_url, request.user_id))
    elif request.pcm is not None:
        turn.recording = VoiceInput.heard(request.user_id, request.pcm)
    elif request.audio is not None:
        turn.recording = VoiceInput.upload(request.user_id, request.audio, max_seconds=limit)
    elif len(request.text or "") > 4000:
        raise _bad("message is longer than 4000 characters")
    if turn.recording is not None and turn.recording.duration > limit:
        raise ApiError(400, "audio_too_long", "AUDIO_TOO_LONG", {"limit": f"{limit:g}"})
    # The reply's length is not known yet: it counts once spoken (``_store_reply``), and
    # a turn starts only while the day's allowance lasts. A call checks the allowance when
    # it starts and counts its own audio as it comes (no round trip before its replies).
    if request.pcm is None:
        limits.require_allowance(request.user_id)
        if turn.recording is not None:
            turn.heard = limits.charge(request.user_id,
                                       audio_seconds=round(turn.recording.duration, 3))
    return turn


def _store_spoken(turn: Turn, session: Conversation, text: str) -> Message:
    """The caller's speech as a message with its file; a failure keeps neither."""
    assert turn.recording is not None
    try:
        return conversations.add_message(
            session, role="user", type="voice", transcription=text, audio=turn.recording.keep(),
            meta={"kind": "spoken", "asr_ms": turn.timings["asr_ms"],
                  "language": turn.language, "asr": turn.asr_engine})
    except Exception:
        db.session.rollback()
        turn.recording.discard()
        raise


def _go_ahead(turn: Turn, session_id: str, text: str) -> str | None:
    """A held turn once its fate is known: the stored user message's id, or None when
    the turn was dropped (and its speech with it)."""
    assert turn.request.go_ahead is not None and turn.recording is not None
    confirmed = turn.request.go_ahead()
    if confirmed is None:
        turn.recording.discard()
        return None
    turn.timings["end_of_turn_ms"] = round((confirmed - turn.started) * 1000, 1)
    return _store_spoken(turn, db.session.get(Conversation, session_id), text).id


def _recognise(turn: Turn, recording: VoiceInput, sink: TurnSink) -> str:
    """The words of the voice input, recognised while it is written to storage; a turn
    that ends here (no speech, a failed recogniser) leaves nothing stored."""
    recording.store_beside()
    try:
        result = turn.request.recognised
        turn.asr_engine = turn.request.recognised_by
        if result is None:
            engine = current_app.extensions["providers"].stt_with_fallback()
            result, turn.timings["asr_ms"] = recorded_speech.recognise(
                engine, recording, conversation_language(turn.session.id), {})
            turn.asr_engine = getattr(engine, "used", engine.name)
        # A call's recogniser keeps the language the call named (``zh-TW``): its reader's.
        result = recorded_speech.polished(result, None, result.language)
        turn.timings.setdefault("asr_ms", 0.0)
        turn.language = result.language
        text = result.text.strip()
        sink.asr_result(text)
        if not text:
            raise ApiError(400, "no_speech", "NO_SPEECH")
    except Exception:
        recording.discard()
        raise
    return text


def conversation_language(session_id: str) -> str | None:
    """The language recognised in the session's last spoken message: a conversation keeps
    its language, and naming it spares the recogniser a detection pass."""
    meta = db.session.scalar(select(Message.meta).where(
        Message.session_id == session_id, Message.role == "user", Message.type == "voice")
        .order_by(Message.timestamp.desc(), Message.id.desc()).limit(1))
    return (meta or {}).get("language")


def persona_prompt(role: Role, summary: str) -> str:
    """The role's system prompt: who it is, and what was said before the recent turns."""
    lines = [f"Name: {role.name}", f"角色: {role.name}",
             f"You are {role.name}. Stay in character and answer as {role.name} would.",
             f"Character: {role.description}", f"Gender: {role.gender}. Age: {role.age}.",
             "Answer in the language the user writes in, in two to four short sentences."]
    if summary:
        lines.append(f"Summary of the conversation so far: {summary}")
    return "\n".join(lines)


def prompt_messages(session: Conversation, role: Role, user_text: str) -> list[dict[str, str]]:
    recent = memory.recent_turns(session.id, RECENT_TURNS)
    return [{"role": "system", "content": persona_prompt(role, session.summary)}, *recent,
            {"role": "user", "content": user_text}]


def role_voice(role: Role, text: str = "") -> tuple[Voice, SynthesisOptions]:
    """The role's voice and its profile's prosody. A role whose voice is gone speaks in
    the default voice for ``text`` (the user's words: the reply is in their language)."""
    voice = db.session.scalar(select(Voice).where(
        Voice.voice_type == role.voice_type, Voice.status == "ready"))
    configured = current_app.extensions["providers"].configured_names("tts")
    if voice is None or voice.engine not in configured:
        voice = voices.default_voice(text)
    profile = db.session.get(VoiceProfile, role.id)
    options = SynthesisOptions()
    if profile is not None:
        options = SynthesisOptions(speed=profile.base_speed, pitch=profile.base_pitch,
                                   volume=profile.base_volume)
    return voice, options


class _AudioOut:
    """Encodes the reply's audio for the client as it comes and keeps it for storage
    (as MP3: a raw PCM stream is kept as MP3 encoded alongside)."""

    def __init__(self, sink: TurnSink, fmt: str, message_id: str) -> None:
        self.sink, self.format, self.message_id = sink, fmt, message_id
        self.audio = OutgoingAudio(fmt, keep_as="mp3")

    def __call__(self, chunk: AudioChunk) -> None:
        # A paced sink (a live call) is handed audio no faster than it is heard, in short
        # slices, so a listener who cuts in stops it mid-sentence; ``pace`` answers False
        # once the reply is cut, and what was never sent is never stored.
        paced = self.sink.paced
        step = max(2, chunk.sample_rate // 5 * 2) if paced else len(chunk.pcm)
        for start in range(0, len(chunk.pcm), step):
            piece = chunk.pcm[start:start + step]
            if paced and not self.sink.pace(len(piece) / 2 / chunk.sample_rate):
                return
            self._send(piece, chunk.sample_rate)

    def _send(self, pcm: bytes, sample_rate: int) -> None:
        if not self.audio.started:
            self.sink.audio_start(self.format, sample_rate, self.message_id)
        data = self.audio.write(pcm, sample_rate)
        if data:
            self.sink.audio_chunk(data)

    def finish(self, interrupted: bool = False) -> bool:
        """The stream's end; returns whether the reply ended interrupted (a paced
        listener who paused it at its very end may still cut it off)."""
        if self.sink.paced and not interrupted and not self.sink.pace(0.0):
            interrupted = True
        tail = self.audio.close()
        # After an interruption nothing more is sent: the listener stopped listening.
        if tail and not interrupted:
            self.sink.audio_chunk(tail)
        return interrupted


@dataclass
class _ReplyPlan:
    """What a reply is made with, read from the database before the turn lets go of it."""

    mode: int
    engine: Any
    options: SynthesisOptions
    llm: Any
    prompt: list[dict[str, str]]
    session_id: str
    role_id: int
    role_name: str
    voice_type: str
    message_id: str = field(default_factory=new_uuid)


def _hear(turn: Turn, sink: TurnSink) -> tuple[str, str | None]:
    """The user's words and their stored message's id; no id yet for a held turn."""
    if turn.recording is None:
        text = (turn.request.text or "").strip()
        said = conversations.add_message(turn.session, role="user", type="text", text=text,
                                         meta={"kind": "typed"})
        return text, said.id
    text = _recognise(turn, turn.recording, sink)
    if turn.request.go_ahead:
        return text, None
    return text, _store_spoken(turn, turn.session, text).id


def _plan(turn: Turn, user_text: str) -> _ReplyPlan:
    mode = turn.request.response_type
    if mode == RESPONSE_RANDOM:
        mode = random.choice((RESPONSE_TEXT, RESPONSE_VOICE))
    session, role = turn.session, turn.role
    voice, options = role_voice(role, user_text)
    engine, options = synthesis.engine_for(voice, options, with_fallback=True)
    return _ReplyPlan(mode=mode, engine=engine, options=options,
                      llm=current_app.extensions["providers"].llm(),
                      prompt=prompt_messages(session, role, user_text), session_id=session.id,
                      role_id=role.id, role_name=role.name, voice_type=voice.voice_type)


def run_turn(request: TurnRequest, sink: TurnSink,
             cancel: threading.Event | None = None,
             on_prepared: Callable[[Turn], None] | None = None) -> dict[str, Any]:
    """Run one turn to the end (or to ``cancel``); returns what ``complete`` was told."""
    cancel = cancel or threading.Event()
    turn = prepare(request)
    if on_prepared:
        on_prepared(turn)
    try:
        user_text, user_message_id = _hear(turn, sink)
    except Exception:
        usage_counters.refund(turn.heard)
        raise
    plan = _plan(turn, user_text)
    db.session.close()
    out = _AudioOut(sink, request.audio_format, plan.message_id)
    held = user_message_id is None
    try:
        reply = stream_reply(
            plan.llm, plan.prompt, plan.engine if plan.mode == RESPONSE_VOICE else None,
            plan.options, chat_options=ChatOptions(persona=plan.role_name),
            on_text=sink.text_chunk, on_audio=out, cancel=cancel, started=turn.started)
    except Exception:
        if held:  # a turn that failed is stored like any other, once it counts
            _go_ahead(turn, plan.session_id, user_text)
        raise
    reply.interrupted = out.finish(reply.interrupted)
    if held:
        user_message_id = _go_ahead(turn, plan.session_id, user_text)
        if not user_message_id:
            return {"session_id": plan.session_id, "abandoned": True}
        # Audio made before the turn was confirmed waited for it: it was heard from then.
        if "first_audio_ms" in reply.timings:
            reply.timings["first_audio_ms"] = max(reply.timings["first_audio_ms"],
                                                  turn.timings["end_of_turn_ms"])
    timings = {**turn.timings, **reply.timings}
    text, audio_row = _store_reply(request, plan, reply, out, timings, sink.heard_seconds())
    return _tell(sink, plan, reply, text, audio_row, user_message_id or "", timings)


def _store_reply(request: TurnRequest, plan: _ReplyPlan, reply: SpokenReply, out: _AudioOut,
                 timings: dict[str, float], heard: float | None = None
                 ) -> tuple[str, File | None]:
    """The reply as a message (with the audio that was streamed); returns its text."""
    voiced = plan.mode == RESPONSE_VOICE
    audio_row = None
    if out.audio.samples:
        audio_row = files.save(request.user_id, out.audio.whole(), out.audio.kept_format,
                               out.audio.duration, kind="generated")
    # A call cut off by the caller keeps what the caller heard; a reply broken off by a
    # provider keeps what was streamed, as on every other transport.
    # When the listener said how far it played, the sentences heard to their end are
    # what was heard (audio sent ahead of playback was discarded by the listener).
    heard_only = request.store_delivered and reply.interrupted and reply.error is None
    spoken_text = reply.spoken_text if heard is None or not heard_only \
        else reply.heard_text(heard)
    text = spoken_text if heard_only else reply.text
    meta = {"kind": "reply", "timings": timings, "interrupted": reply.interrupted,
            "response_type": plan.mode, "llm": plan.llm.name,
            "tts": getattr(plan.engine, "spoke", plan.engine.name),
            "spoken_text": spoken_text,
            # Where each sentence's audio ends, so that a listener's later report of how
            # far it played (a Realtime API truncation) can cut the reply to that point.
            "sentence_ends": [[s, round(end, 3)] for s, end in reply.sentence_ends]}
    if heard is not None and heard_only:
        meta["heard_ms"] = round(heard * 1000)
    fallback = getattr(plan.engine, "fell_back_from", None)
    if fallback:
        meta["fallback"] = fallback
    if reply.error is not None:
        meta["error"] = {"provider": reply.error.provider, "kind": reply.error.kind,
                         "message": reply.error.message}
    if voiced and reply.spoken_text:
        limits.charge(request.user_id, characters=len(reply.spoken_text), over=True)
    db.session.add(Message(
        id=plan.message_id, session_id=plan.session_id, owner_id=request.user_id,
        role="assistant", type="voice" if voiced else "text", text=text,
        voice_type=plan.voice_type if voiced else None,
        audio_file_id=audio_row.id if audio_row else None,
        format=audio_row.format if audio_row else None,
        duration=round(audio_row.duration, 3) if audio_row else None, meta=meta))
    db.session.commit()
    return text, audio_row


def _tell(sink: TurnSink, plan: _ReplyPlan, reply: SpokenReply, text: str,
          audio_row: File | None, user_message_id: str,
          timings: dict[str, float]) -> dict[str, Any]:
    """The turn's end told to the client (and a summary queued); returns ``complete``."""
    voiced = plan.mode == RESPONSE_VOICE
    audio_url = files.audio_url(audio_row) if audio_row else None
    duration = audio_row.duration if audio_row else 0.0
    # Telling the clients goes through Redis and queues a summary: no connection is held
    # meanwhile (under load those waits would starve the pool).
    db.session.close()
    if voiced:
        reason = "error" if reply.error else "interrupted" if reply.interrupted else None
        sink.audio_end(audio_url, duration, reason)
    if reply.error is not None:
        log.warning("turn %s session %s broke off: %s", plan.message_id, plan.session_id,
                    reply.error)
        raise reply.error
    payload = {"role_id": plan.role_id, "message": audio_url if voiced else text,
               "type": "voice" if voiced else "text", "session_id": plan.session_id,
               "message_id": plan.message_id, "text": text,
               "user_message_id": user_message_id}
    if voiced:
        payload["format"] = "mp3"
    sink.reply(payload)
    log.info("turn %s session %s: %s", plan.message_id, plan.session_id, timings)
    done = {"session_id": plan.session_id, "message_id": plan.message_id,
            "user_message_id": user_message_id, "interrupted": reply.interrupted,
            "timings": timings}
    sink.complete(done)
    jobs.follow_up(memory.SUMMARY_TASK, plan.session_id)
    return done
