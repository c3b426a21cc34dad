"""What a client may send over the real-time transports: one marshmallow schema per event,
the same ones for Socket.IO (``/chat``) and the plain WebSockets (``/api/ws/…``).

A frame that does not fit its schema is refused with ``400 BAD_MESSAGE`` and a message
that names the field; the transport sends it in its own error shape and the connection
stays open. Fields a schema does not know are ignored: older clients send a few the
server never reads (``format`` on a text message, for one).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from webapp.app.api import ApiError
from webapp.app.audio import SPEECH_SAMPLE_RATE, denoise
from webapp.app.i18n import MESSAGES, translate
from webapp.app.schemas import BoundedInteger, Id, has_lone_surrogate
from webapp.app.services.conversation.calls import SAMPLE_RATES, CallOptions
from webapp.app.services.conversation.turns import (
    RESPONSE_RANDOM,
    RESPONSE_TEXT,
    RESPONSE_VOICE,
    STREAM_FORMATS,
)


class Text(fields.String):
    """A string that can be stored: a lone UTF-16 surrogate (``"\\ud800"`` in JSON) is no
    character, and no database takes it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if has_lone_surrogate(text):
            raise ValidationError("lone_surrogate")
        return text


class SessionId(Text):
    """A session id, or nothing: an empty string means "no session named"."""

    def __init__(self) -> None:
        super().__init__(load_default=None, allow_none=True)

    def _deserialize(self, value: Any, attr: str | None, data: Any,
                     **kwargs: Any) -> str | None:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 64:
            raise ValidationError("not a session id")
        return text or None


class Base64Audio(fields.String):
    """Audio sent inline as base64 (a ``data:`` URL prefix is allowed), decoded."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bytes:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text.startswith("data:") and "," in text[:64]:
            text = text.split(",", 1)[1]
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("not base64") from exc


def _response_type() -> BoundedInteger:
    # 0 text, 1 voice, 2 either at random; a transport may default to another.
    return BoundedInteger(minimum=RESPONSE_TEXT, maximum=RESPONSE_RANDOM,
                          load_default=RESPONSE_VOICE)


class FrameSchema(Schema):
    class Meta:
        unknown = EXCLUDE


class JoinSchema(FrameSchema):
    """``join``: the role to talk to, in a session of the caller's (a new one if none)."""

    role_id = Id(required=True)
    session_id = SessionId()
    audio_format = fields.String(load_default="mp3", validate=validate.OneOf(STREAM_FORMATS))


class ChatMessageSchema(FrameSchema):
    """A message (Socket.IO ``chat_message``, ``/api/ws/chat``): text, or the URL
    of an own upload when ``type`` is ``voice``."""

    role_id = Id(required=True)
    message = Text(required=True)
    type = fields.String(load_default="text", validate=validate.OneOf(("text", "voice")))
    response_type = _response_type()
    session_id = SessionId()


class VoiceMessageSchema(FrameSchema):
    """Speech to answer (Socket.IO ``voice_message``, ``/api/ws/voice_chat``): the URL of
    an own upload, or the audio itself in base64."""

    role_id = Id(required=True)
    voice_url = Text(load_default=None)
    audio = Base64Audio(load_default=None)
    format = fields.String(load_default=None)
    response_type = _response_type()
    session_id = SessionId()

    @validates_schema
    def _has_speech(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("voice_url") and not data.get("audio"):
            raise ValidationError("a voice message needs voice_url or audio")


class InterruptSchema(FrameSchema):
    """``interrupt``: stop the reply being spoken."""

    session_id = SessionId()


class CallStartSchema(FrameSchema):
    """``call_start``: a hands-free call with a role; ``language`` picks the recogniser."""

    role_id = Id(required=True)
    session_id = SessionId()
    sample_rate = fields.Integer(
        strict=True, load_default=SPEECH_SAMPLE_RATE, validate=validate.OneOf(
            SAMPLE_RATES, error=f"must be one of {', '.join(map(str, SAMPLE_RATES))}"))
    language = Text(load_default=None, allow_none=True, validate=validate.Length(max=16))
    audio_format = fields.String(load_default="mp3", validate=validate.OneOf(STREAM_FORMATS))
    noise_reduction = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(
        (*denoise.MODES, "off")))

    @post_load
    def _options(self, data: dict[str, Any], **kwargs: Any) -> CallOptions:
        return CallOptions(role_id=data["role_id"], session_id=data["session_id"],
                           sample_rate=data["sample_rate"], language=data["language"] or None,
                           audio_format=data["audio_format"],
                           noise_reduction=data["noise_reduction"])


class CallEndSchema(FrameSchema):
    """``call_end``: hang up."""


class PlaybackSchema(FrameSchema):
    """``playback``: how much of a call's reply the caller's device has played."""

    message_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    played_ms = fields.Integer(strict=False, required=True,
                               validate=validate.Range(min=0, max=3_600_000))


class CallEventSchema(FrameSchema):
    """A text frame of ``/api/ws/call``: ``{"type": "<event>", ...that event's fields}``."""

    type = fields.String(required=True, validate=validate.OneOf(("call_start", "call_end",
                                                                      "playback")))


EVENTS: dict[str, Schema] = {
    "join": JoinSchema(), "chat_message": ChatMessageSchema(),
    "voice_message": VoiceMessageSchema(), "interrupt": InterruptSchema(),
    "call_start": CallStartSchema(), "call_end": CallEndSchema(),
    "playback": PlaybackSchema(),
    "call_event": CallEventSchema(),
}
# Events whose payload may be left out altogether (``socket.emit("interrupt")``).
OPTIONAL_PAYLOAD = frozenset({"interrupt", "call_end"})


def bad_frame(detail: str) -> ApiError:
    return ApiError(400, "bad_request", "BAD_MESSAGE", {"detail": detail})


def decode(raw: str | bytes) -> Any:
    """A plain-WebSocket text frame's JSON."""
    try:
        return json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise bad_frame("a frame is a JSON object") from exc


def load(event: str, data: Any, lang: str, **defaults: Any) -> Any:
    """``data`` checked against ``event``'s schema; ``defaults`` fill in fields the frame
    leaves out (those that are None are left out too). Raises ``ApiError`` 400
    ``BAD_MESSAGE`` naming the first field at fault, in ``lang``."""
    schema = EVENTS[event]
    if data is None and event in OPTIONAL_PAYLOAD:
        data = {}
    if not isinstance(data, dict):
        raise bad_frame(f"expected a JSON object {{{_shape(schema)}}}")
    given = {**{k: v for k, v in defaults.items() if v is not None}, **data}
    try:
        return schema.load(given)
    except ValidationError as exc:
        raise _refused(exc, lang) from exc


def _shape(schema: Schema) -> str:
    return ", ".join(name + ("" if field.required else "?")
                     for name, field in schema.fields.items())


def _refused(exc: ValidationError, lang: str) -> ApiError:
    name, message = _first_error(exc.normalized_messages())
    if message == "Missing data for required field.":
        detail = translate("field_required", lang, field=name)
    elif message in MESSAGES:
        detail = translate(message, lang, field=name)
    elif name == "_schema":
        detail = message
    else:
        detail = f"{name}: {message}"
    return ApiError(400, "bad_request", "BAD_MESSAGE", {"detail": detail},
                    {"fields": exc.normalized_messages()})


def _first_error(messages: Any, name: str = "_schema") -> tuple[str, str]:
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        return _first_error(value, str(key))
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], name)
    return name, str(messages)
