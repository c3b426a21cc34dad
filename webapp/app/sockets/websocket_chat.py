"""The plain WebSockets: ``/api/ws/chat`` (text or voice in; a text or a voice-URL
reply) and ``/api/ws/voice_chat`` (voice in; the reply's audio streamed in chunks)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import current_app, g
from simple_websocket import ConnectionClosed, Server

from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db
from webapp.app.services.conversation import turns
from webapp.app.services.conversation.reply_events import QuietSink
from webapp.app.services.platform import limits
from webapp.app.sockets import schemas
from webapp.app.sockets.websocket_blueprint import bp, sock

log = logging.getLogger(__name__)


class ReplySink(QuietSink):
    """``/api/ws/chat``: only the finished reply, as one frame."""

    def __init__(self, ws: Server) -> None:
        self.ws = ws

    def reply(self, payload: dict[str, Any]) -> None:
        out = {key: payload[key] for key in ("role_id", "message", "type", "format",
                                              "session_id", "message_id") if key in payload}
        self.ws.send(json.dumps(out, ensure_ascii=False))


class AudioSink(QuietSink):
    """``/api/ws/voice_chat``: every audio chunk as it is made; the last is_final."""

    def __init__(self, ws: Server, fmt: str) -> None:
        self.ws = ws
        self.format = fmt

    def _send(self, data: bytes, final: bool) -> None:
        self.ws.send(json.dumps({"type": "audio", "data": base64.b64encode(data).decode("ascii"),
                                 "format": self.format, "is_final": final}))

    def audio_chunk(self, data: bytes) -> None:
        self._send(data, False)

    def audio_end(self, audio_url: str | None, duration: float, reason: str | None) -> None:
        self._send(b"", True)


def _frames(ws: Server, event: str, voice: bool = False,
            **defaults: Any) -> Iterator[dict[str, Any]]:
    """Each message checked against ``event``'s schema, until the client goes quiet for
    ``CHAT_IDLE_SECONDS``. A malformed frame is answered with an error (in the socket's
    own error shape) and the connection stays usable."""
    idle = current_app.config["CHAT_IDLE_SECONDS"]
    while (raw := ws.receive(timeout=idle)) is not None:
        g.ws_slot.renew()
        try:
            yield schemas.load(event, schemas.decode(raw), g.ws_lang, **defaults)
        except ApiError as exc:
            yield_error(ws, exc, voice)


def yield_error(ws: Server, exc: Exception, voice: bool = False) -> None:
    """``/api/ws/voice_chat`` answers every error as its audio frames are shaped (a final
    frame of type ``error`` whose data is the message); ``/api/ws/chat`` as
    ``{error, code}``."""
    error = as_error(exc, g.ws_lang)
    if voice:
        ws.send(json.dumps({"type": "error", "data": error["error"], "format": "",
                            "is_final": True}, ensure_ascii=False))
    else:
        ws.send(json.dumps({"error": error["error"], "code": error["code"]},
                           ensure_ascii=False))


def _turn(ws: Server, request_: turns.TurnRequest, sink: Any, voice: bool) -> str | None:
    try:
        limits.hit("turns", request_.user_id)
        return turns.run_turn(request_, sink)["session_id"]
    except ConnectionClosed:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes an error frame
        db.session.rollback()
        yield_error(ws, exc, voice)
        return None


@sock.route("/api/ws/chat", bp=bp)
def ws_chat(ws: Server) -> None:
    """``{role_id, message, type, format?, response_type}`` → one reply each."""
    conversations: dict[int, str] = {}
    for frame in _frames(ws, "chat_message", response_type=turns.RESPONSE_TEXT):
        role_id, voice = frame["role_id"], frame["type"] == "voice"
        turn = turns.TurnRequest(
            user_id=g.ws_user_id, role_id=role_id,
            session_id=frame["session_id"] or conversations.get(role_id),
            text=None if voice else frame["message"],
            voice_url=frame["message"] if voice else None,
            response_type=frame["response_type"])
        session_id = _turn(ws, turn, ReplySink(ws), voice=False)
        if session_id:
            conversations[role_id] = session_id
    ws.close(reason=1000, message="idle")


@sock.route("/api/ws/voice_chat", bp=bp)
def ws_voice_chat(ws: Server) -> None:
    """``{role_id, voice_url | audio (base64), format}`` → ``{type, data, format,
    is_final}`` frames; the reply is always spoken, as MP3."""
    conversations: dict[int, str] = {}
    for frame in _frames(ws, "voice_message", voice=True):
        role_id, audio = frame["role_id"], frame["audio"] or None
        turn = turns.TurnRequest(
            user_id=g.ws_user_id, role_id=role_id,
            session_id=frame["session_id"] or conversations.get(role_id),
            voice_url=frame["voice_url"] if audio is None else None, audio=audio,
            response_type=turns.RESPONSE_VOICE, audio_format="mp3")
        session_id = _turn(ws, turn, AudioSink(ws, "mp3"), voice=True)
        if session_id:
            conversations[role_id] = session_id
    ws.close(reason=1000, message="idle")
