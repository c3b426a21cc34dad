"""Each way a client can hold a conversation, behind one interface, so that every fault
is tried on every transport by parametrizing over ``TRANSPORTS``.

A transport sends one typed message asking for a spoken reply and reports what its
client saw: the error frame in that transport's own shape (or None), how long it
took, whether the reply ended normally, and how much audio arrived. Adding a transport
(the hands-free call, ``/v1``) is a subclass of ``Transport`` and a line in
``TRANSPORTS``.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import websocket

from tests.helpers.call_client import Caller
from tests.helpers.realtime import Recorder, User
from tests.helpers.sounds import speech


@dataclass
class Outcome:
    error: dict[str, Any] | None
    """The transport's error frame as it came, e.g. Socket.IO ``{error, code, error_code}``."""
    seconds: float
    finished: bool
    status: int | None = None
    """The error's HTTP-like status, read from the frame by the transport."""
    message: str | None = None
    """The error's human message, read from the frame by the transport."""
    audio_events: int = 0
    events: list[str] = field(default_factory=list)


class Conversation:
    """A user with a role and one session on a deployment, as every transport uses it."""

    def __init__(self, url: str, voice_type: str = "dashscope:longxiaochun_v2") -> None:
        self.user = User(url, voice_type=voice_type)
        self.url = url
        self.session_id = self.user.call("POST", "/api/sessions", json={
            "role_id": self.user.role_id})["data"]["session_id"]

    def messages(self) -> list[dict[str, Any]]:
        page = self.user.call("GET", f"/api/sessions/{self.session_id}/messages?page_size=100")
        return page["data"]["list"]

    def replies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages() if m["role"] == "assistant"]


class Transport(ABC):
    name: str

    @abstractmethod
    def turn(self, talk: Conversation, text: str, timeout: float) -> Outcome:
        """Say ``text``; wait (at most ``timeout`` s) for the reply's end or an error."""


class SocketIO(Transport):
    """Namespace ``/chat``: streamed text and audio events, ``error`` on failure."""

    name = "socketio"
    ENDINGS = ("error", "response_complete")

    def turn(self, talk: Conversation, text: str, timeout: float) -> Outcome:
        client = Recorder(talk.url, talk.user.token)
        try:
            client.join(talk.user.role_id, session_id=talk.session_id)
            mark = len(client.events)
            sent = client.emit("chat_message", {"role_id": talk.user.role_id, "message": text,
                                                "type": "text", "response_type": 1})
            deadline = time.time() + timeout
            with client.changed:
                while not any(name in self.ENDINGS for _, name, _ in client.events[mark:]):
                    remaining = deadline - time.time()
                    if remaining <= 0:
                        break
                    client.changed.wait(remaining)
            seen = client.events[mark:]
            end = next(((at, name, data) for at, name, data in seen if name in self.ENDINGS),
                       None)
            names = [name for _, name, _ in seen]
            error = end[2] if end and end[1] == "error" else None
            return Outcome(
                error=error, status=error["code"] if error else None,
                message=error["error"] if error else None,
                seconds=(end[0] if end else time.perf_counter()) - sent,
                finished=bool(end) and end[1] == "response_complete",
                audio_events=names.count("tts_audio_chunk"), events=names)
        finally:
            client.close()


class PlainWebSocket(Transport):
    """The plain WebSocket ``/api/ws/chat``: one reply frame, or ``{error, code}``."""

    name = "websocket"

    def turn(self, talk: Conversation, text: str, timeout: float) -> Outcome:
        ws = websocket.create_connection(
            talk.url.replace("http://", "ws://") + f"/api/ws/chat?token={talk.user.token}",
            timeout=timeout)
        try:
            sent = time.perf_counter()
            ws.send(json.dumps({"role_id": talk.user.role_id, "message": text, "type": "text",
                                "response_type": 1, "session_id": talk.session_id}))
            try:
                frame = json.loads(ws.recv())
            except websocket.WebSocketTimeoutException:
                return Outcome(error=None, seconds=time.perf_counter() - sent, finished=False)
            seconds = time.perf_counter() - sent
            failed = "error" in frame
            return Outcome(error=frame if failed else None, seconds=seconds,
                           finished=not failed, status=frame.get("code") if failed else None,
                           message=frame["error"] if failed else None,
                           events=["error" if failed else "reply"])
        finally:
            ws.close()


class HandsFreeCall(Transport):
    """A hands-free call on ``/chat``: the text is spoken (Piper) into the call's
    microphone stream at real-time pace; the turn ends at ``response_complete`` or an
    ``error`` event. Its time counts from the last voiced sample sent to the error, or
    to the reply's first audio: a call's reply is sent at the pace it is played, so its
    end says nothing about the server."""

    name = "call"
    ENDINGS = ("error", "response_complete")

    def turn(self, talk: Conversation, text: str, timeout: float) -> Outcome:
        caller = Caller(talk.url, talk.user.token)
        try:
            caller.start(talk.user.role_id, session_id=talk.session_id, language="en")
            mark = len(caller.events)
            # Spoken in one breath: a pause at a comma may let the call start a reply that
            # the rest of the sentence then drops, which would spend the one faulty
            # provider request the test arranged on a reply nobody hears.
            spoken_at = caller.say(speech(text.replace(",", "")), then_silence=0.0)
            try:
                caller.wait_for(self.ENDINGS, timeout, mark)
            except AssertionError:
                pass
            seen = caller.events[mark:]
            end = next(((at, name, data) for at, name, data in seen if name in self.ENDINGS),
                       None)
            names = [name for _, name, _ in seen]
            error = end[2] if end and end[1] == "error" else None
            first_audio = caller.first_time("tts_audio_chunk", mark)
            until = end[0] if error or not first_audio else first_audio
            return Outcome(
                error=error, status=error["code"] if error else None,
                message=error["error"] if error else None,
                seconds=(until if end or first_audio else time.perf_counter()) - spoken_at,
                finished=bool(end) and end[1] == "response_complete",
                audio_events=names.count("tts_audio_chunk"), events=names)
        finally:
            caller.end()
            caller.close()


TRANSPORTS: list[Transport] = [SocketIO(), PlainWebSocket(), HandsFreeCall()]
