"""Transports for real-time conversations: adapters that turn frames into chat-service
calls and the turn's steps back into events. No chat logic lives here."""

from __future__ import annotations

from flask import Flask

from webapp.app.extensions import socketio


def register_sockets(app: Flask) -> None:
    # Importing a plain-WebSocket module adds its routes to the blueprint: /api/ws/chat
    # and /api/ws/voice_chat first, then /api/ws/call.
    from webapp.app.sockets import websocket_chat  # noqa: F401
    # isort: split
    from webapp.app.sockets import websocket_call  # noqa: F401
    from webapp.app.sockets.socket_chat import ChatNamespace
    from webapp.app.sockets.websocket_blueprint import register_websockets

    socketio.on_namespace(ChatNamespace("/chat"))
    register_websockets(app)
