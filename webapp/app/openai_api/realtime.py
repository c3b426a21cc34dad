"""``/v1/realtime``: OpenAI's Realtime API over a WebSocket, for the official SDKs
(``client.realtime.connect()``) and the voice front-ends that speak it. Frames are JSON
events both ways; the session itself is ``services.conversation.realtime_session``.

The caller is checked before the upgrade (an API key or a JWT as ``Authorization:
Bearer``, or a browser's ``openai-insecure-api-key.<key>`` subprotocol), so a refused
connection gets HTTP 401 in OpenAI's shape.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from flask import current_app, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed, Server

from webapp.app.api import language
from webapp.app.extensions import db
from webapp.app.openai_api import bp
from webapp.app.openai_api.auth import realtime_caller
from webapp.app.services.conversation.realtime_session import RealtimeSession

sock = Sock()


@bp.before_request
def _authenticate_realtime() -> None:
    if request.endpoint == "openai_api.realtime":
        g.realtime_caller = realtime_caller()
        db.session.remove()


class _Frames:
    """JSON events out on one socket; several green threads share it, one at a time."""

    def __init__(self, ws: Server) -> None:
        self.ws = ws
        self.lock = threading.Lock()

    def send(self, event: dict[str, Any]) -> None:
        try:
            with self.lock:
                self.ws.send(json.dumps(event, ensure_ascii=False))
        except ConnectionClosed:
            return


@sock.route("/realtime", bp=bp)
def realtime(ws: Server) -> None:
    frames = _Frames(ws)
    session = RealtimeSession(current_app._get_current_object(), g.realtime_caller,
                              language(), frames.send, request.args.get("model"))
    idle = current_app.config["CHAT_IDLE_SECONDS"]
    try:
        session.open()
        while (raw := ws.receive(timeout=idle)) is not None:
            try:
                event = json.loads(raw) if isinstance(raw, str) else None
            except ValueError:
                event = None
            session.handle(event)
            db.session.remove()
        ws.close(reason=1000, message="idle")
    except ConnectionClosed:
        pass
    finally:
        session.close()
