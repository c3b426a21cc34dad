"""Socket.IO namespace ``/chat``: join a session's room, send text or voice, hear the
reply streamed (``tts_audio_chunk_start`` / ``tts_audio_chunk`` / ``…_end``), interrupt it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request
from flask_socketio import Namespace, join_room

from webapp.app.api import language
from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db, socketio
from webapp.app.i18n import translate
from webapp.app.services.conversation import calls, turns
from webapp.app.services.conversation.reply_events import ReplyEvents
from webapp.app.services.platform import limits
from webapp.app.sockets import schemas
from webapp.app.sockets.auth import token_from, user_from_token

log = logging.getLogger(__name__)
NAMESPACE = "/chat"


@dataclass
class Client:
    user_id: int
    lang: str
    session_id: str | None = None
    role_id: int | None = None
    audio_format: str = "mp3"
    cancel: threading.Event | None = None
    busy: bool = False
    # The turn whose voice message is being read, if any (see on_voice_message).
    decoding: threading.Event | None = None
    call: calls.Call | None = None
    last_seen: float = field(default_factory=time.monotonic)


def _to_session_room(event: str, payload: dict[str, Any]) -> None:
    """A reply event to everyone in its session's room (every process, through Redis).
    An event with no session yet goes nowhere: an empty room would mean every client."""
    if payload["session_id"]:
        socketio.emit(event, payload, to=payload["session_id"], namespace=NAMESPACE)


class ChatNamespace(Namespace):
    def __init__(self, namespace: str) -> None:
        super().__init__(namespace)
        self.clients: dict[str, Client] = {}
        self._reaper_started = False

    def on_connect(self, auth: Any = None) -> bool:
        user_id = user_from_token(token_from(auth))
        if user_id is None:
            return False
        lang = auth.get("lang") if isinstance(auth, dict) else None
        self.clients[request.sid] = Client(
            user_id=user_id, lang=lang if lang in ("zh", "en") else language())
        self._start_reaper()
        return True

    def on_disconnect(self, reason: Any = None) -> None:
        client = self.clients.pop(request.sid, None)
        if client is not None and client.cancel is not None:
            client.cancel.set()
        if client is not None and client.call is not None:
            client.call.end("disconnected")

    def _client(self) -> Client:
        client = self.clients[request.sid]
        client.last_seen = time.monotonic()
        return client

    def _error(self, client: Client, exc: Exception) -> dict[str, Any]:
        error = as_error(exc, client.lang)
        self.emit("error", error, room=request.sid)
        return error

    def on_join(self, data: Any = None) -> dict[str, Any]:
        """``{role_id, session_id?, audio_format?}``; answered with ``joined`` and, for a
        client that asks for one, an acknowledgement: the ``joined`` payload, or the
        ``error`` payload when the join was refused."""
        client = self._client()
        try:
            frame = schemas.load("join", data, client.lang, audio_format=client.audio_format)
            role, session = turns.open_session(client.user_id, frame["role_id"],
                                               frame["session_id"])
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
            db.session.rollback()
            return self._error(client, exc)
        join_room(session.id)
        client.session_id, client.role_id = session.id, role.id
        client.audio_format = frame["audio_format"]
        joined = {"session_id": session.id, "role_id": role.id, "role": role.to_dict(),
                  "audio_format": client.audio_format}
        self.emit("joined", joined, room=request.sid)
        return joined

    def _load(self, client: Client, event: str, data: Any, **defaults: Any) -> Any:
        """The event's validated frame, or None once the client has been sent the error."""
        try:
            return schemas.load(event, data, client.lang, **defaults)
        except ApiError as exc:
            self._error(client, exc)
            return None

    def on_chat_message(self, data: Any = None) -> None:
        """A chat message: ``{role_id, message, type, format?, response_type}``."""
        client = self._client()
        frame = self._load(client, "chat_message", data, role_id=client.role_id)
        if frame is None:
            return
        voice = frame["type"] == "voice"
        self._start_turn(client, frame, text=None if voice else frame["message"],
                         voice_url=frame["message"] if voice else None)

    def on_voice_message(self, data: Any = None) -> None:
        """``{role_id, voice_url | audio (base64), format, session_id?}``."""
        client = self._client()
        frame = self._load(client, "voice_message", data, role_id=client.role_id)
        if frame is None:
            return
        if client.decoding is not None:
            # One decode per connection: audio sent while the previous message's audio is
            # still being read is refused (that turn goes on), so a client cannot pile up
            # decodes by sending faster than they finish. Once read, a new message
            # interrupts the previous reply as usual.
            self._error(client, ApiError(409, "voice_busy", "VOICE_MESSAGE_BUSY"))
            return
        audio = frame["audio"] or None
        self._start_turn(client, frame, voice_url=frame["voice_url"] if audio is None else None,
                         audio=audio)

    def on_interrupt(self, data: Any = None) -> None:
        client = self._client()
        if self._load(client, "interrupt", data) is None:
            return
        if client.cancel is not None:
            client.cancel.set()

    def on_call_start(self, data: Any = None) -> None:
        """``{role_id, session_id?, sample_rate?, language?}`` → ``call_started``."""
        client = self._client()
        if client.call is not None and not client.call.ended.is_set():
            self._error(client, ApiError(409, "call_busy", "CALL_IN_PROGRESS"))
            return
        sid = request.sid
        room: list[str] = []

        def emit(event: str, payload: dict[str, Any]) -> None:
            socketio.emit(event, payload, to=room[0] if room else sid, namespace=NAMESPACE)

        try:
            options = schemas.load("call_start", data, client.lang,
                                   audio_format=client.audio_format)
            limits.hit("turns", client.user_id)
            call = calls.start_call(client.user_id, client.lang, options, emit)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
            db.session.rollback()
            self._error(client, exc)
            return
        join_room(call.session_id)
        room.append(call.session_id)
        client.call, client.session_id, client.role_id = call, call.session_id, options.role_id
        self.emit("call_started", {"session_id": call.session_id,
                                   "sample_rate": options.sample_rate}, room=sid)

    def on_call_audio(self, data: Any = None) -> None:
        """Raw 16-bit mono little-endian PCM, 20–200 ms a piece."""
        client = self._client()
        try:
            if client.call is None or client.call.ended.is_set():
                raise ApiError(400, "call_not_started", "CALL_NOT_STARTED")
            client.call.feed(data)
        except ApiError as exc:
            self._error(client, exc)

    def on_playback(self, data: Any = None) -> None:
        """``{message_id, played_ms}``: what of the call's reply the caller has heard."""
        client = self._client()
        message = self._load(client, "playback", data)
        if message is not None and client.call is not None:
            client.call.playback(message["message_id"], message["played_ms"])

    def on_call_end(self, data: Any = None) -> None:
        client = self._client()
        if self._load(client, "call_end", data) is None:
            return
        if client.call is not None:
            client.call.end("hung_up")
            client.call = None

    def _start_turn(self, client: Client, frame: dict[str, Any], **message: Any) -> None:
        """A turn for a chat or voice message; ``message`` says what the user sent."""
        try:
            limits.hit("turns", client.user_id)
        except ApiError as exc:
            self._error(client, exc)
            return
        self._start(client, turns.TurnRequest(
            user_id=client.user_id, role_id=frame["role_id"],
            session_id=frame["session_id"] or client.session_id,
            response_type=frame["response_type"], audio_format=client.audio_format, **message))

    def _start(self, client: Client, turn: turns.TurnRequest) -> None:
        """Run the turn in the background so ``interrupt`` can arrive while it speaks."""
        if client.cancel is not None:
            client.cancel.set()
        cancel = threading.Event()
        client.cancel = cancel
        client.busy = True
        if turn.audio is not None or turn.voice_url:
            client.decoding = cancel
        sid = request.sid
        app = current_app._get_current_object()

        sink = ReplyEvents(_to_session_room, turn.session_id or "")

        def enter_room(prepared: turns.Turn) -> None:
            if client.decoding is cancel:
                client.decoding = None
            sink.session_id = prepared.session.id
            if client.session_id != prepared.session.id:
                socketio.server.enter_room(sid, prepared.session.id, namespace=NAMESPACE)
                client.session_id = prepared.session.id
                client.role_id = prepared.role.id

        def run() -> None:
            with app.app_context():
                try:
                    turns.run_turn(turn, sink, cancel, enter_room)
                except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
                    db.session.rollback()
                    socketio.emit("error", as_error(exc, client.lang), to=sid,
                                  namespace=NAMESPACE)
                finally:
                    if client.decoding is cancel:
                        client.decoding = None
                    client.busy = False
                    client.last_seen = time.monotonic()
                    db.session.remove()

        socketio.start_background_task(run)

    def _start_reaper(self) -> None:
        """Close connections idle for ``CHAT_IDLE_SECONDS`` (5 minutes by default)."""
        if self._reaper_started:
            return
        self._reaper_started = True
        idle = current_app.config["CHAT_IDLE_SECONDS"]

        def reap() -> None:
            while True:
                socketio.sleep(min(30.0, idle / 4))
                now = time.monotonic()
                for sid, client in list(self.clients.items()):
                    in_call = client.call is not None and not client.call.ended.is_set()
                    if not client.busy and not in_call and now - client.last_seen > idle:
                        log.info("closing idle socket %s", sid)
                        socketio.emit("error", {"error": translate("idle_closed", client.lang),
                                                "code": 408}, to=sid, namespace=NAMESPACE)
                        socketio.server.disconnect(sid, namespace=NAMESPACE)

        socketio.start_background_task(reap)
