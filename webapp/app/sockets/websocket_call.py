"""``/api/ws/call``: the plain-WebSocket twin of the Socket.IO call events.

Binary frames are microphone audio (16-bit mono little-endian PCM); text frames are
JSON events ``{"type": "<event>", ...fields}`` both ways — ``call_start``, ``playback``
and ``call_end`` in; ``call_started``, ``vad``, ``asr_partial``, ``asr_result``,
``barge_in``, the reply's events and ``error`` out. Authentication is the blueprint's
(header or ``?token=``).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from flask import current_app, g
from simple_websocket import ConnectionClosed, Server

from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db
from webapp.app.services.conversation import calls
from webapp.app.services.platform import limits
from webapp.app.sockets import schemas
from webapp.app.sockets.websocket_blueprint import bp, sock

log = logging.getLogger(__name__)


class _Frames:
    """Sends JSON events on one socket; several green threads share it, one at a time."""

    def __init__(self, ws: Server, lang: str) -> None:
        self.ws, self.lang = ws, lang
        self.lock = threading.Lock()

    def send(self, event: str, payload: dict[str, Any]) -> None:
        try:
            with self.lock:
                self.ws.send(json.dumps({"type": event, **payload}, ensure_ascii=False))
        except ConnectionClosed:
            return

    def error(self, exc: Exception) -> None:
        self.send("error", as_error(exc, self.lang))


@sock.route("/api/ws/call", bp=bp)
def ws_call(ws: Server) -> None:
    frames = _Frames(ws, g.ws_lang)
    call: calls.Call | None = None
    idle = current_app.config["CHAT_IDLE_SECONDS"]
    try:
        while (raw := ws.receive(timeout=idle)) is not None:
            g.ws_slot.renew()
            try:
                if isinstance(raw, bytes):
                    if call is None or call.ended.is_set():
                        raise ApiError(400, "call_not_started", "CALL_NOT_STARTED")
                    call.feed(raw)
                    continue
                message = schemas.decode(raw)
                event = schemas.load("call_event", message, g.ws_lang)["type"]
                if event == "call_start":
                    if call is not None and not call.ended.is_set():
                        raise ApiError(409, "call_busy", "CALL_IN_PROGRESS")
                    options = schemas.load("call_start", message, g.ws_lang)
                    limits.hit("turns", g.ws_user_id)
                    call = calls.start_call(g.ws_user_id, g.ws_lang, options, frames.send)
                    frames.send("call_started", {"session_id": call.session_id,
                                                 "sample_rate": options.sample_rate})
                elif event == "playback":
                    played = schemas.load("playback", message, g.ws_lang)
                    if call is not None:
                        call.playback(played["message_id"], played["played_ms"])
                else:
                    schemas.load("call_end", message, g.ws_lang)
                    if call is not None:
                        call.end("hung_up")
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error frame
                db.session.rollback()
                frames.error(exc)
        ws.close(reason=1000, message="idle")
    except ConnectionClosed:
        pass
    finally:
        if call is not None:
            call.end("disconnected")
