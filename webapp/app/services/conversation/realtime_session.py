"""OpenAI's Realtime API (GA event shapes) as one more transport over the call pipeline.

A session is a role's conversation, stored like any other. With server VAD (or
semantic VAD) the microphone audio goes to a hands-free ``calls.Call``, and the call's
events are told in OpenAI's words: ``vad`` → ``input_audio_buffer.speech_started`` /
``speech_stopped`` / ``committed``, ``asr_partial`` / ``asr_result`` → input
transcription ``delta`` / ``completed``, the reply → ``response.created`` …
``response.output_audio.delta`` / ``response.output_audio_transcript.delta`` …
``response.done``. Without turn detection the client commits the buffer (or creates a
text item) and asks for a response: the turn goes to ``turns.run_turn`` with the call's
own paced output, so the reply is sent no faster than it plays either way. A
transcription session (``session.type: transcription``) runs the call without answers.

The role is the one ``model`` names (an id or a name the caller may use); any other
model makes an ad-hoc role of ``instructions`` and ``voice``. ``conversation.item.truncate``
keeps the stored reply as far as the client played it. Audio in and out is 24 kHz PCM
or 8 kHz G.711 µ-law / A-law; quotas count the audio seconds sent in and the characters
of every reply, and ``rate_limits.updated`` tells what is left.
"""

from __future__ import annotations

import base64
import binascii
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from sqlalchemy import select

from webapp.app import audio
from webapp.app.audio import denoise, telephony
from webapp.app.concurrency import spawn
from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db
from webapp.app.models import Conversation, Role
from webapp.app.services.conversation import calls, heard_reply, turns
from webapp.app.services.platform import api_keys
from webapp.app.services.sessions import roles
from webapp.app.services.speech import openai_audio
from webapp.app.services.speech.openai_audio import Caller

log = logging.getLogger(__name__)

OUTPUT_RATE = 24000
DEFAULT_INSTRUCTIONS = "You are a helpful, friendly voice assistant. Keep answers short."
FORMAT_RATES = {"pcm16": 24000, "g711_ulaw": telephony.G711_RATE,
                "g711_alaw": telephony.G711_RATE}
_GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
_GA_NAMES = {value: key for key, value in _GA_FORMATS.items()}
_PIECE_SECONDS = 0.1  # audio goes to the call in pieces well under CALL_MAX_FRAME_MS
_MIN_COMMIT_MS = 100
_AD_HOC_ROLE = "Realtime"

Send = Callable[[dict[str, Any]], None]


class RealtimeError(Exception):
    """A client event that cannot be done: told as OpenAI's ``error`` event."""

    def __init__(self, message: str, code: str, param: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message, self.code, self.param, self.kind = message, code, param, kind


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


@dataclass
class Settings:
    """The session's configuration, as ``session.update`` sets it."""

    kind: str = "realtime"
    model: str = "gpt-realtime"
    instructions: str = DEFAULT_INSTRUCTIONS
    voice: str = "alloy"
    input_format: str = "pcm16"
    output_format: str = "pcm16"
    turn_detection: dict[str, Any] | None = field(default_factory=lambda: {
        "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
        "silence_duration_ms": 400, "create_response": True, "interrupt_response": True})
    transcription: dict[str, Any] | None = None
    # None until the client names one (the server's CALL_NOISE_REDUCTION); "off" for null.
    noise_reduction: str | None = None
    speed: float = 1.0
    modalities: list[str] = field(default_factory=lambda: ["audio"])

    def render(self, session_id: str) -> dict[str, Any]:
        audio_in: dict[str, Any] = {
            "format": _format_object(self.input_format), "transcription": self.transcription,
            "turn_detection": self.turn_detection,
            "noise_reduction": {"type": self.noise_reduction}
            if self.noise_reduction not in (None, "off") else None}
        if self.kind == "transcription":
            return {"type": "transcription", "object": "realtime.transcription_session",
                    "id": session_id, "audio": {"input": audio_in}}
        return {"type": "realtime", "object": "realtime.session", "id": session_id,
                "model": self.model, "output_modalities": self.modalities,
                "instructions": self.instructions, "tools": [], "tool_choice": "auto",
                "max_output_tokens": "inf",
                "audio": {"input": audio_in, "output": {
                    "format": _format_object(self.output_format), "voice": self.voice,
                    "speed": self.speed}}}


def _format_object(name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _GA_NAMES[name]}
    if name == "pcm16":
        out["rate"] = FORMAT_RATES[name]
    return out


def _format_name(value: Any, param: str) -> str:
    """A format in either spelling: GA ``{"type": "audio/pcmu"}`` or beta ``"g711_ulaw"``."""
    if isinstance(value, dict):
        name = _GA_FORMATS.get(str(value.get("type")))
        if name == "pcm16" and value.get("rate", 24000) != 24000:
            raise RealtimeError("only 24000 Hz PCM is supported", "invalid_value", param)
    else:
        name = value if value in FORMAT_RATES else None
    if name is None:
        raise RealtimeError(f"unsupported audio format {value!r}; use audio/pcm (24 kHz), "
                            "audio/pcmu or audio/pcma", "invalid_value", param)
    return name


def _turn_detection(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("server_vad", "semantic_vad"):
        raise RealtimeError("turn_detection.type must be server_vad or semantic_vad (or "
                            "turn_detection null)", "invalid_value",
                            "session.audio.input.turn_detection")
    return {"create_response": True, "interrupt_response": True, **value}


def _noise_reduction(value: Any) -> str:
    if value is None:
        return "off"
    if not isinstance(value, dict) or value.get("type") not in denoise.MODES:
        raise RealtimeError("noise_reduction.type must be near_field or far_field (or "
                            "noise_reduction null)", "invalid_value",
                            "session.audio.input.noise_reduction")
    return str(value["type"])


def apply_update(settings: Settings, session: Any) -> None:
    """``session.update``'s ``session`` onto ``settings`` (GA fields and the beta ones)."""
    if not isinstance(session, dict):
        raise RealtimeError("session must be an object", "invalid_value", "session")
    if "type" in session:
        if session["type"] not in ("realtime", "transcription"):
            raise RealtimeError("session.type must be realtime or transcription",
                                "invalid_value", "session.type")
        settings.kind = session["type"]
    audio_config = session.get("audio") if isinstance(session.get("audio"), dict) else {}
    audio_in = audio_config.get("input") if isinstance(audio_config.get("input"), dict) else {}
    audio_out = audio_config.get("output") if isinstance(audio_config.get("output"),
                                                         dict) else {}
    if "format" in audio_in or "input_audio_format" in session:
        settings.input_format = _format_name(audio_in.get("format",
                                                          session.get("input_audio_format")),
                                             "session.audio.input.format")
    if "format" in audio_out or "output_audio_format" in session:
        settings.output_format = _format_name(
            audio_out.get("format", session.get("output_audio_format")),
            "session.audio.output.format")
    if "turn_detection" in audio_in or "turn_detection" in session:
        settings.turn_detection = _turn_detection(audio_in.get(
            "turn_detection", session.get("turn_detection")))
    if "noise_reduction" in audio_in or "input_audio_noise_reduction" in session:
        settings.noise_reduction = _noise_reduction(audio_in.get(
            "noise_reduction", session.get("input_audio_noise_reduction")))
    if "transcription" in audio_in or "input_audio_transcription" in session:
        settings.transcription = audio_in.get("transcription",
                                              session.get("input_audio_transcription"))
    voice = audio_out.get("voice", session.get("voice"))
    if voice is not None:
        if not isinstance(voice, str) or not voice:
            raise RealtimeError("voice must be a voice name", "invalid_value",
                                "session.audio.output.voice")
        settings.voice = voice
    speed = audio_out.get("speed", session.get("speed"))
    if speed is not None:
        if not isinstance(speed, int | float) or not 0.25 <= speed <= 1.5:
            raise RealtimeError("speed must be between 0.25 and 1.5", "invalid_value",
                                "session.audio.output.speed")
        settings.speed = float(speed)
    for name in ("instructions", "model"):
        if name in session:
            if not isinstance(session[name], str):
                raise RealtimeError(f"{name} must be a string", "invalid_value",
                                    f"session.{name}")
            setattr(settings, name, session[name])
    modalities = session.get("output_modalities", session.get("modalities"))
    if modalities is not None:
        if not isinstance(modalities, list) or not set(modalities) <= {"text", "audio"} \
                or not modalities:
            raise RealtimeError("output_modalities must be [\"audio\"] or [\"text\"]",
                                "invalid_value", "session.output_modalities")
        settings.modalities = ["audio"] if "audio" in modalities else ["text"]


def decode_audio(data: Any, fmt: str) -> bytes:
    """Base64 audio of the session's input format → 16-bit PCM at that format's rate."""
    if not isinstance(data, str):
        raise RealtimeError("audio must be base64", "invalid_value", "audio")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RealtimeError("audio is not valid base64", "invalid_value", "audio") from exc
    if fmt == "pcm16":
        if len(raw) % 2:
            raise RealtimeError("16-bit PCM needs an even number of bytes", "invalid_value",
                                "audio")
        return raw
    return telephony.g711_decode(raw, fmt)


class _Output:
    """The reply's audio turned into the session's output format, piece by piece."""

    def __init__(self, fmt: str, from_rate: int) -> None:
        self.format = fmt
        self.resampler = audio.StreamResampler(from_rate, FORMAT_RATES[fmt])
        self.seconds = 0.0

    def convert(self, pcm: bytes) -> bytes:
        out = self.resampler.write(pcm)
        self.seconds += len(out) / 2 / FORMAT_RATES[self.format]
        return out if self.format == "pcm16" else telephony.g711_encode(out, self.format)


class _Response:
    """One response: its ids, what it has said, and how to stop it."""

    def __init__(self, modality: str, cancel: threading.Event, *, asked: bool) -> None:
        self.id, self.item_id = new_id("resp"), new_id("item")
        self.modality = modality
        self.cancel = cancel
        self.asked = asked  # by response.create (else a turn of the hands-free call)
        self.output: _Output | None = None
        self.message_id: str | None = None
        self.transcript = ""
        self.status_reason: str | None = None
        self.done = threading.Event()
        self.opened = False


class RealtimeSession:
    """One ``/v1/realtime`` connection; ``handle`` takes each client event (a dict)."""

    def __init__(self, app: Flask, caller: Caller, lang: str, send: Send,
                 model: str | None = None) -> None:
        self.app, self.caller, self.lang, self.send_raw = app, caller, lang, send
        self.id = new_id("sess")
        self.settings = Settings()
        if model:
            self.settings.model = model
        self.role_id: int | None = None
        self.conversation_id: str | None = None
        self.call: calls.Call | None = None
        self.buffer = bytearray()
        self.pending: dict[str, Any] | None = None  # the next response's input
        self.last_item: str | None = None
        self.speech_item: str | None = None
        self.unheard_items: list[str] = []  # committed speech awaiting its transcript
        self.partial = ""
        self.response: _Response | None = None
        self.items: dict[str, str] = {}  # assistant item id → stored message id
        self.audio_ms = 0  # audio received since the call started
        self.audio_credit = 0.0  # seconds of audio already charged to the key, unused

    # -- to the client ----------------------------------------------------------------

    def send(self, kind: str, **fields: Any) -> None:
        self.send_raw({"type": kind, "event_id": new_id("event"), **fields})

    def error(self, exc: Exception, event_id: str | None = None) -> None:
        if isinstance(exc, RealtimeError):
            body = {"type": exc.kind, "code": exc.code, "message": exc.message,
                    "param": exc.param, "event_id": event_id}
        else:
            told = as_error(exc, self.lang)
            kind = "invalid_request_error" if told["code"] < 500 else "server_error"
            code = str(told.get("error_code") or "").lower() or None
            if told["code"] == 429:
                kind, code = "insufficient_quota", "insufficient_quota"
            body = {"type": kind, "code": code, "message": told["error"], "param": None,
                    "event_id": event_id}
        self.send("error", error=body)

    def open(self) -> None:
        self.send("session.created", session=self.settings.render(self.id))

    # -- from the client ----------------------------------------------------------------

    def handle(self, event: Any) -> None:
        """One client event; a bad one is answered with ``error`` and nothing changes."""
        event_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise RealtimeError("an event is a JSON object with a type", "invalid_event")
            handler = self._handlers().get(event["type"])
            if handler is None:
                raise RealtimeError(f"unknown event type {event['type']!r}", "invalid_event",
                                    "type")
            handler(event)
        except Exception as exc:  # every failure is told as an error event
            db.session.rollback()
            if not isinstance(exc, RealtimeError | ApiError):
                log.exception("realtime event %s failed", event.get("type"))
            self.error(exc, event_id)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {"session.update": self._update,
                "input_audio_buffer.append": self._append,
                "input_audio_buffer.commit": self._commit,
                "input_audio_buffer.clear": self._clear,
                "conversation.item.create": self._create_item,
                "conversation.item.truncate": self._truncate,
                "response.create": self._create_response,
                "response.cancel": self._cancel_response}

    def close(self) -> None:
        if self.caller.key_id is not None and self.audio_credit > 0:
            api_keys.give_back(self.caller.key_id, audio_seconds=round(self.audio_credit, 3))
        if self.call is not None:
            self.call.end("disconnected")
        if self.response is not None:
            self.response.cancel.set()

    def _update(self, event: dict[str, Any]) -> None:
        before = (self.settings.kind, self.settings.input_format,
                  bool(self.settings.turn_detection))
        apply_update(self.settings, event.get("session"))
        if self.settings.kind == "realtime" and self.conversation_id is not None:
            self._refresh_role()
        if before != (self.settings.kind, self.settings.input_format,
                      bool(self.settings.turn_detection)) and self.call is not None:
            self.call.end("reconfigured")  # the next audio starts one that fits
            self.call = None
        self.send("session.updated", session=self.settings.render(self.id))

    def _append(self, event: dict[str, Any]) -> None:
        pcm = decode_audio(event.get("audio"), self.settings.input_format)
        if not pcm:
            return
        rate = FORMAT_RATES[self.settings.input_format]
        self._spend_audio(len(pcm) / 2 / rate)
        if self.settings.turn_detection is None:
            self.buffer += pcm
            return
        call = self._live_call()
        step = int(rate * _PIECE_SECONDS) * 2
        for at in range(0, len(pcm), step):
            call.feed(pcm[at:at + step])
        self.audio_ms += len(pcm) * 500 // rate

    def _commit(self, event: dict[str, Any]) -> None:
        rate = FORMAT_RATES[self.settings.input_format]
        if self.settings.turn_detection is not None:
            raise RealtimeError("the server commits the buffer itself while turn detection "
                                "is on", "invalid_value", "type")
        if len(self.buffer) * 500 // rate < _MIN_COMMIT_MS:
            raise RealtimeError(f"buffer too small: at least {_MIN_COMMIT_MS} ms of audio is "
                                "needed", "input_audio_buffer_commit_empty")
        pcm = audio.resample(bytes(self.buffer), rate, audio.SPEECH_SAMPLE_RATE)
        self.buffer = bytearray()
        item_id = new_id("item")
        self.send("input_audio_buffer.committed", previous_item_id=self.last_item,
                  item_id=item_id)
        self._added({"id": item_id, "type": "message", "role": "user",
                     "content": [{"type": "input_audio", "transcript": None}]})
        if self.settings.kind == "transcription":
            spawn(self._transcribe, item_id, pcm)
        else:
            self.pending = {"pcm": pcm, "item_id": item_id}

    def _clear(self, event: dict[str, Any]) -> None:
        self.buffer = bytearray()
        self.send("input_audio_buffer.cleared")

    def _create_item(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            raise RealtimeError("only message items are supported", "invalid_value", "item")
        if item.get("role") != "user":
            raise RealtimeError("only user messages can be added", "invalid_value",
                                "item.role")
        content = item.get("content")
        if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0],
                                                                                 dict):
            raise RealtimeError("a user message has one content part", "invalid_value",
                                "item.content")
        part, item_id = content[0], item.get("id") or new_id("item")
        if part.get("type") in ("input_text", "text"):
            text = part.get("text")
            if not isinstance(text, str) or not text.strip():
                raise RealtimeError("text must not be empty", "invalid_value",
                                    "item.content[0].text")
            self.pending = {"text": text, "item_id": item_id}
            shown = [{"type": "input_text", "text": text}]
        elif part.get("type") == "input_audio":
            pcm = decode_audio(part.get("audio"), self.settings.input_format)
            rate = FORMAT_RATES[self.settings.input_format]
            self._spend_audio(len(pcm) / 2 / rate)
            self.pending = {"pcm": audio.resample(pcm, rate, audio.SPEECH_SAMPLE_RATE),
                            "item_id": item_id}
            shown = [{"type": "input_audio", "transcript": None}]
        else:
            raise RealtimeError("content type must be input_text or input_audio",
                                "invalid_value", "item.content[0].type")
        self._added({"id": item_id, "type": "message", "role": "user", "content": shown})

    def _truncate(self, event: dict[str, Any]) -> None:
        item_id, end_ms = event.get("item_id"), event.get("audio_end_ms")
        if not isinstance(end_ms, int) or end_ms < 0:
            raise RealtimeError("audio_end_ms must be a whole number of ms", "invalid_value",
                                "audio_end_ms")
        response = self.response
        if response is not None and response.item_id == item_id:
            self._stop(response, "client_cancelled")
            response.done.wait(30)
        message_id = self.items.get(str(item_id))
        if message_id is None:
            raise RealtimeError(f"no assistant item {item_id!r} with audio", "invalid_value",
                                "item_id")
        heard_reply.truncate(self.caller.user_id, message_id, end_ms / 1000)
        self.send("conversation.item.truncated", item_id=item_id,
                  content_index=event.get("content_index", 0), audio_end_ms=end_ms)

    def _create_response(self, event: dict[str, Any]) -> None:
        if self.settings.kind == "transcription":
            raise RealtimeError("a transcription session makes no responses", "invalid_value",
                                "type")
        if self.response is not None and not self.response.done.is_set():
            raise RealtimeError("a response is already in progress",
                                "conversation_already_has_active_response")
        if self.pending is None:
            raise RealtimeError("nothing to respond to: commit audio or create an item first",
                                "invalid_value")
        self._check_characters()
        pending, self.pending = self.pending, None
        if pending.get("pcm") is not None:
            self.unheard_items.append(pending["item_id"])  # the turn tells its transcript
        role_id, conversation_id = self._conversation()
        modality = self.settings.modalities[0]
        response = _Response(modality, threading.Event(), asked=True)
        self._open(response)
        output = calls.ReplyOutput(self._on_event, conversation_id,
                                   self.app.config["CALL_AUDIO_LEAD_MS"] / 1000,
                                   response.cancel)
        request = turns.TurnRequest(
            user_id=self.caller.user_id, role_id=role_id, session_id=conversation_id,
            text=pending.get("text"), pcm=pending.get("pcm"),
            response_type=turns.RESPONSE_VOICE if modality == "audio" else turns.RESPONSE_TEXT,
            audio_format="pcm", store_delivered=True)
        spawn(self._run_turn, request, output, response)

    def _cancel_response(self, event: dict[str, Any]) -> None:
        response = self.response
        if response is None or response.done.is_set():
            raise RealtimeError("there is no response to cancel", "response_cancel_not_active")
        self._stop(response, "client_cancelled")

    # -- the pipeline's side ------------------------------------------------------------

    def _charge(self, **amounts: Any) -> None:
        if self.caller.key_id is None:
            return
        self.caller.charge(**amounts)

    def _spend_audio(self, seconds: float) -> None:
        """Count appended audio against the key. A client appends every few tens of ms:
        the quota is charged ahead in whole seconds (one write a second, not one an
        append), and what is left of it is given back when the session ends."""
        if self.caller.key_id is None:
            return
        if self.audio_credit < seconds:
            block = float(math.ceil(seconds - self.audio_credit))
            self._charge(audio_seconds=block)
            self.audio_credit += block
        self.audio_credit -= seconds

    def _check_characters(self) -> None:
        if self.caller.key_id is None:
            return
        left = api_keys.remaining(self.caller.key_id)["characters"]
        if left is not None and left[1] <= 0:
            raise ApiError(429, "quota_exceeded", "QUOTA_EXCEEDED")

    def _ad_hoc_role(self) -> Role:
        """The caller's role for these instructions and this voice (made once)."""
        voice = openai_audio.resolve_voice(self.caller, self.settings.voice, "tts-1")
        instructions = self.settings.instructions or DEFAULT_INSTRUCTIONS
        role = db.session.scalar(select(Role).where(
            Role.owner_id == self.caller.user_id, Role.name == _AD_HOC_ROLE,
            Role.description == instructions, Role.voice_type == voice.voice_type).limit(1))
        if role is None:
            role = roles.create(self.caller.user_id, {
                "name": _AD_HOC_ROLE, "description": instructions, "gender": "",
                "age": 0, "voice_type": voice.voice_type})
        return role

    def _resolve_role(self) -> Role:
        try:
            return roles.named(self.settings.model, self.caller.user_id)
        except ApiError:
            return self._ad_hoc_role()

    def _conversation(self) -> tuple[int, str]:
        """The session's role and stored conversation, made on first use."""
        if self.role_id is None or self.conversation_id is None:
            role = self._resolve_role()
            _, conversation = turns.open_session(self.caller.user_id, role.id)
            self.role_id, self.conversation_id = role.id, conversation.id
        return self.role_id, self.conversation_id

    def _refresh_role(self) -> None:
        """New instructions or voice: the conversation goes on with the role they make."""
        role = self._resolve_role()
        if role.id != self.role_id:
            self.role_id = role.id
            conversation = db.session.get(Conversation, self.conversation_id)
            if conversation is not None:
                conversation.role_id = role.id
                conversation.voice_type = role.voice_type
                db.session.commit()

    def _live_call(self) -> calls.Call:
        if self.call is not None and not self.call.ended.is_set():
            return self.call
        answer = self.settings.kind == "realtime"
        role_id, conversation_id = self._conversation() if answer else (0, None)
        language = (self.settings.transcription or {}).get("language") or None
        # OpenAI's server_vad ends a turn on silence alone, after silence_duration_ms;
        # semantic_vad judges whether the speech sounds and reads finished.
        detection = self.settings.turn_detection or {}
        silence_ms = detection.get("silence_duration_ms")
        if not isinstance(silence_ms, int) or not 100 <= silence_ms <= 10000:
            silence_ms = None
        options = calls.CallOptions(role_id=role_id, session_id=conversation_id,
                                    sample_rate=FORMAT_RATES[self.settings.input_format],
                                    language=language, audio_format="pcm", answer=answer,
                                    end_of_turn="smart_turn" if detection.get("type")
                                    == "semantic_vad" else "silence",
                                    end_silence_ms=silence_ms,
                                    noise_reduction=self.settings.noise_reduction)
        self.call = calls.start_call(self.caller.user_id, self.lang, options, self._on_event)
        self.audio_ms = 0
        return self.call

    def _stop(self, response: _Response, reason: str) -> None:
        response.status_reason = reason
        response.cancel.set()

    def _transcribe(self, item_id: str, pcm: bytes) -> None:
        """A committed buffer of a transcription session without turn detection."""
        with self.app.app_context():
            try:
                language = (self.settings.transcription or {}).get("language") or None
                engine = self.app.extensions["providers"].stt_with_fallback()
                result = engine.transcribe_decoded(pcm, language)
                self._transcribed(item_id, result.text.strip())
            except Exception as exc:  # noqa: BLE001 - told as a failed transcription
                db.session.rollback()
                self.send("conversation.item.input_audio_transcription.failed",
                          item_id=item_id, content_index=0,
                          error={"type": "transcription_error", "code": None,
                                 "message": str(exc), "param": None})
            finally:
                db.session.remove()

    def _run_turn(self, request: turns.TurnRequest, output: calls.ReplyOutput,
                  response: _Response) -> None:
        with self.app.app_context():
            try:
                turns.run_turn(request, output, response.cancel)
            except Exception as exc:  # noqa: BLE001 - the response fails, the session goes on
                db.session.rollback()
                self._on_event("error", {**as_error(exc, self.lang)})
            finally:
                db.session.remove()
                self._finish(response)

    def _added(self, item: dict[str, Any]) -> None:
        item = {"object": "realtime.item", "status": "completed", **item}
        self.send("conversation.item.added", previous_item_id=self.last_item, item=item)
        self.send("conversation.item.done", previous_item_id=self.last_item, item=item)
        self.last_item = item["id"]

    def _transcribed(self, item_id: str, text: str) -> None:
        self.send("conversation.item.input_audio_transcription.completed", item_id=item_id,
                  content_index=0, transcript=text,
                  usage={"type": "duration", "seconds": 0})

    def _on_event(self, kind: str, data: dict[str, Any]) -> None:
        """An event of the call or the chat turn, told in OpenAI's words."""
        if kind == "vad":
            self._on_vad(data["state"])
        elif kind == "asr_partial":
            self._on_partial(str(data.get("text") or ""))
        elif kind == "asr_result":
            if self.unheard_items:
                self._transcribed(self.unheard_items.pop(0), str(data.get("text") or ""))
            self.partial = ""
        elif kind in ("ai_text_chunk", "tts_audio_chunk_start", "tts_audio_chunk"):
            self._on_reply(kind, data)
        elif kind == "chat_response":
            if self.response is not None:
                self.response.transcript = str(data.get("text") or "")
                self.response.message_id = str(data.get("message_id") or "") or None
        elif kind == "response_complete":
            response = self.response
            if response is not None and not response.asked:
                if data.get("interrupted") and not response.status_reason:
                    response.status_reason = "turn_detected"
                self._finish(response)
        elif kind == "error":
            self._on_error(data)

    def _on_vad(self, state: str) -> None:
        if state == "speech_start":
            self.speech_item = new_id("item")
            self.send("input_audio_buffer.speech_started", audio_start_ms=self.audio_ms,
                      item_id=self.speech_item)
            # The call pauses and cuts its own replies; one asked for by response.create
            # is cut here, as OpenAI's interrupt_response does.
            response = self.response
            if response is not None and response.asked and not response.done.is_set() \
                    and (self.settings.turn_detection or {}).get("interrupt_response", True):
                self._stop(response, "turn_detected")
        elif state == "speech_end" and self.speech_item is not None:
            item_id, self.speech_item = self.speech_item, None
            self.send("input_audio_buffer.speech_stopped", audio_end_ms=self.audio_ms,
                      item_id=item_id)
            self.send("input_audio_buffer.committed", previous_item_id=self.last_item,
                      item_id=item_id)
            self._added({"id": item_id, "type": "message", "role": "user",
                         "content": [{"type": "input_audio", "transcript": None}]})
            self.unheard_items.append(item_id)

    def _on_partial(self, text: str) -> None:
        """Partial reads revise the whole text; OpenAI's deltas only add to it, so only
        what extends the text told so far is told."""
        item_id = self.speech_item or (self.unheard_items[-1] if self.unheard_items else None)
        if item_id is None or not text.startswith(self.partial) or text == self.partial:
            return
        delta, self.partial = text[len(self.partial):], text
        self.send("conversation.item.input_audio_transcription.delta", item_id=item_id,
                  content_index=0, delta=delta)

    def _open(self, response: _Response) -> None:
        """``response.created`` and the reply's item and content part."""
        self.response = response
        response.opened = True
        self.send("response.created", response={
            "object": "realtime.response", "id": response.id, "status": "in_progress",
            "status_details": None, "output": [], "conversation_id": self.conversation_id,
            "output_modalities": [response.modality], "usage": None})
        item = {"id": response.item_id, "object": "realtime.item", "type": "message",
                "role": "assistant", "status": "in_progress", "content": []}
        self.send("response.output_item.added", response_id=response.id, output_index=0,
                  item=item)
        self.send("conversation.item.added", previous_item_id=self.last_item, item=item)
        self.last_item = response.item_id
        part = {"type": "audio", "transcript": ""} if response.modality == "audio" \
            else {"type": "text", "text": ""}
        self.send("response.content_part.added", response_id=response.id,
                  item_id=response.item_id, output_index=0, content_index=0, part=part)

    def _on_reply(self, kind: str, data: dict[str, Any]) -> None:
        response = self.response
        if response is None or response.done.is_set():
            # A reply of the hands-free call: its response opens with its first event.
            reply = self.call.reply if self.call is not None else None
            response = _Response("audio", reply.cancel if reply else threading.Event(),
                                 asked=False)
            self._open(response)
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0,
               "content_index": 0}
        if kind == "ai_text_chunk":
            delta = str(data.get("text") or "")
            name = "response.output_audio_transcript.delta" if response.modality == "audio" \
                else "response.output_text.delta"
            self.send(name, delta=delta, **ids)
        elif kind == "tts_audio_chunk_start":
            response.output = _Output(self.settings.output_format, int(data["sample_rate"]))
            response.message_id = str(data.get("message_id") or "") or None
            if response.message_id:
                self.items[response.item_id] = response.message_id
        elif kind == "tts_audio_chunk" and response.output is not None:
            pcm = base64.b64decode(data["audio_data"])
            out = response.output.convert(pcm)
            if out:
                self.send("response.output_audio.delta",
                          delta=base64.b64encode(out).decode("ascii"), **ids)

    def _on_error(self, data: dict[str, Any]) -> None:
        told = ApiError(int(data.get("code") or 500), "internal_error",
                        str(data.get("error_code") or "INTERNAL_ERROR"))
        body_message = str(data.get("error") or "")
        kind = "insufficient_quota" if told.status == 429 else (
            "invalid_request_error" if told.status < 500 else "server_error")
        self.send("error", error={"type": kind, "code": told.code.lower(),
                                  "message": body_message, "param": None, "event_id": None})
        response = self.response
        if response is not None and not response.done.is_set():
            response.status_reason = "failed"
            if not response.asked:  # a call's reply that failed says no more
                self._finish(response)

    def _finish(self, response: _Response) -> None:
        """The response's ``done`` events, ``response.done`` and what the quotas say."""
        if response.done.is_set() or not response.opened:
            response.done.set()
            return
        ids = {"response_id": response.id, "item_id": response.item_id, "output_index": 0,
               "content_index": 0}
        text = response.transcript
        if response.message_id:
            self.items[response.item_id] = response.message_id
        if response.modality == "audio":
            self.send("response.output_audio.done", **ids)
            self.send("response.output_audio_transcript.done", transcript=text, **ids)
            part = {"type": "audio", "transcript": text}
        else:
            self.send("response.output_text.done", text=text, **ids)
            part = {"type": "text", "text": text}
        self.send("response.content_part.done", part=part, **ids)
        reason = response.status_reason
        status = "failed" if reason == "failed" else "cancelled" if reason else "completed"
        content = [{"type": "output_audio", "transcript": text} if response.modality == "audio"
                   else {"type": "output_text", "text": text}]
        item = {"id": response.item_id, "object": "realtime.item", "type": "message",
                "role": "assistant", "status": "completed" if not reason else "incomplete",
                "content": content}
        self.send("response.output_item.done", response_id=response.id, output_index=0,
                  item=item)
        self.send("conversation.item.done", previous_item_id=None, item=item)
        details = None if not reason else {"type": status, "reason": reason}
        self.send("response.done", response={
            "object": "realtime.response", "id": response.id, "status": status,
            "status_details": details, "output": [item],
            "conversation_id": self.conversation_id,
            "output_modalities": [response.modality],
            "usage": {"total_tokens": len(text), "input_tokens": 0,
                      "output_tokens": len(text)}})
        response.done.set()
        self._count_reply(text)

    def _count_reply(self, text: str) -> None:
        if self.caller.key_id is None:
            return
        try:
            if text:
                self._charge(characters=len(text))
        except ApiError as exc:
            self.error(exc)
        limits = api_keys.remaining(self.caller.key_id)
        self.send("rate_limits.updated", rate_limits=[
            {"name": name, "limit": limit, "remaining": left,
             "reset_seconds": _seconds_to_next_month()}
            for name, pair in limits.items() if pair is not None
            for limit, left in [pair]])


def _seconds_to_next_month() -> float:
    now = time.gmtime()
    year, month = (now.tm_year + 1, 1) if now.tm_mon == 12 else (now.tm_year, now.tm_mon + 1)
    return max(0.0, time.mktime((year, month, 1, 0, 0, 0, 0, 0, 0)) - time.mktime(now))
