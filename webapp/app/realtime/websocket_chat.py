"""The plain WebSockets: ``/api/ws/chat`` (text or voice in; a text or a voice-URL
reply) and ``/api/ws/voice_chat`` (voice in; the reply's audio streamed in chunks)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server

from webapp.app.api import error_response, language
from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db
from webapp.app.realtime.auth import token_from, user_from_token
from webapp.app.services import chat

log = logging.getLogger(__name__)

bp = Blueprint("chat", __name__)
sock = Sock()


@bp.before_request
def _authenticate() -> Response | None:
    """Refuse the upgrade (HTTP 401) without a valid token."""
    user_id = user_from_token(token_from())
    if user_id is None:
        return error_response(ApiError(401, "unauthorized", "UNAUTHORIZED"))
    g.ws_user_id = user_id
    g.ws_lang = language()
    return None


class _Quiet:
    """A turn's steps a client of this transport does not hear about."""

    def asr_result(self, text: str) -> None:
        return None

    def text_chunk(self, text: str) -> None:
        return None

    def audio_start(self, fmt: str, sample_rate: int, message_id: str) -> None:
        return None

    def audio_chunk(self, data: bytes) -> None:
        return None

    def audio_end(self, audio_url: str | None, duration: float, reason: str | None) -> None:
        return None

    def reply(self, payload: dict[str, Any]) -> None:
        return None

    def complete(self, payload: dict[str, Any]) -> None:
        return None


class ReplySink(_Quiet):
    """``/api/ws/chat``: only the finished reply, as one frame."""

    def __init__(self, ws: Server) -> None:
        self.ws = ws

    def reply(self, payload: dict[str, Any]) -> None:
        out = {key: payload[key] for key in ("role_id", "message", "type", "format",
                                              "session_id", "message_id") if key in payload}
        self.ws.send(json.dumps(out, ensure_ascii=False))


class AudioSink(_Quiet):
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


def _receive(ws: Server, voice: bool = False) -> dict[str, Any] | None:
    """The next message as a JSON object; None when the client went quiet for too long.

    A malformed frame is answered with an error (in the socket's own error shape) and
    the connection stays usable.
    """
    idle = current_app.config["CHAT_IDLE_SECONDS"]
    while True:
        raw = ws.receive(timeout=idle)
        if raw is None:
            return None
        try:
            message = json.loads(raw)
            if isinstance(message, dict):
                return message
        except (ValueError, TypeError):
            pass
        yield_error(ws, ApiError(400, "bad_request", "BAD_MESSAGE",
                                 {"detail": "a message is a JSON object"}), voice)


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


def _turn(ws: Server, request_: chat.TurnRequest, sink: Any, voice: bool) -> str | None:
    try:
        return chat.run_turn(request_, sink)["session_id"]
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
    while (message := _receive(ws)) is not None:
        try:
            role_id = int(message["role_id"])
            kind = message.get("type", "text")
            if kind not in ("text", "voice") or not isinstance(message.get("message"), str):
                raise ValueError
            response_type = int(message.get("response_type", 0))
        except (KeyError, TypeError, ValueError):
            yield_error(ws, ApiError(400, "bad_request", "BAD_MESSAGE", {
                "detail": "expected {role_id, message, type: text|voice, response_type}"}))
            continue
        turn = chat.TurnRequest(
            user_id=g.ws_user_id, role_id=role_id,
            session_id=message.get("session_id") or conversations.get(role_id),
            text=message["message"] if kind == "text" else None,
            voice_url=message["message"] if kind == "voice" else None,
            response_type=response_type)
        session_id = _turn(ws, turn, ReplySink(ws), voice=False)
        if session_id:
            conversations[role_id] = session_id
    ws.close(reason=1000, message="idle")


@sock.route("/api/ws/voice_chat", bp=bp)
def ws_voice_chat(ws: Server) -> None:
    """``{role_id, voice_url, format}`` → ``{type, data, format, is_final}``."""
    conversations: dict[int, str] = {}
    while (message := _receive(ws, voice=True)) is not None:
        try:
            role_id = int(message["role_id"])
            voice_url = message["voice_url"]
            if not isinstance(voice_url, str) or not voice_url:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            yield_error(ws, ApiError(400, "bad_request", "BAD_MESSAGE", {
                "detail": "expected {role_id, voice_url, format}"}), voice=True)
            continue
        turn = chat.TurnRequest(
            user_id=g.ws_user_id, role_id=role_id,
            session_id=message.get("session_id") or conversations.get(role_id),
            voice_url=voice_url, response_type=chat.RESPONSE_VOICE, audio_format="mp3")
        session_id = _turn(ws, turn, AudioSink(ws, "mp3"), voice=True)
        if session_id:
            conversations[role_id] = session_id
    ws.close(reason=1000, message="idle")


def register_websockets(app: Flask) -> None:
    from webapp.app.realtime import websocket_call  # noqa: F401 - adds /api/ws/call to bp

    app.register_blueprint(bp)
    sock.init_app(app)
