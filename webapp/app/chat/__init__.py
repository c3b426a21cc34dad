"""Transports for real-time conversations: adapters that turn frames into chat-service
calls and the turn's steps back into events. No chat logic lives here."""

from __future__ import annotations

from flask import Flask

from webapp.app.extensions import socketio


def register_sockets(app: Flask) -> None:
    from webapp.app.chat.socket_chat import ChatNamespace
    from webapp.app.chat.websocket_chat import register_websockets

    socketio.on_namespace(ChatNamespace("/chat"))
    register_websockets(app)
