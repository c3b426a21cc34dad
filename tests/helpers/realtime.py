"""Clients for real-time tests against a running server: a user set up over REST, and
Socket.IO clients that timestamp every event they receive."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import engineio
import requests
import socketio


class _InOrderEngineIO(engineio.Client):
    """python-engineio hands every message to a new thread, so two events that arrive
    back to back (a reply's audio end and its ``response_complete``) can be recorded the
    other way round on a loaded machine. A browser handles them as they arrive; so does
    this client."""

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    """A python-socketio client whose handlers see events in the order they arrived."""

    def _engineio_client_class(self) -> type[engineio.Client]:
        return _InOrderEngineIO


class User:
    """A registered user with a role, talking to a server over REST."""

    def __init__(self, url: str, voice_type: str = "piper:en_US-joe-medium") -> None:
        self.url = url
        self.http = requests.Session()
        self.name = "u" + uuid.uuid4().hex[:10]
        self.http.post(f"{url}/api/auth/register",
                       json={"username": self.name, "password": "long-enough"}, timeout=10)
        data = self.http.post(f"{url}/api/auth/login",
                              json={"username": self.name, "password": "long-enough"},
                              timeout=10).json()["data"]
        self.token = data["access_token"]
        self.id = data["user"]["id"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"
        added = self.call("POST", "/api/role/add", json={
            "name": "Ada", "description": "A patient teacher who explains things simply.",
            "gender": "女", "age": 36, "voice_type": voice_type})
        assert added.get("data"), f"the role was not added: {added}"
        self.role_id = added["data"]["role_id"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, self.url + path, timeout=30, **kwargs).json()

    def upload(self, data: bytes, name: str = "voice.wav") -> dict[str, Any]:
        return self.call("POST", "/api/upload_voice", files={"file": (name, data)})


class EventLog:
    """Every event a client receives, with the ``perf_counter`` time it arrived, and a
    way to wait for one. Positions in ``events`` (``after``) mark where a turn began."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, Any]] = []
        self.changed = threading.Condition()

    def record(self, name: str, data: Any) -> None:
        with self.changed:
            self.events.append((time.perf_counter(), name, data))
            self.changed.notify_all()

    def handler(self, name: str) -> Callable[..., None]:
        """A Socket.IO event handler that records ``name``."""

        def record(data: Any = None, *rest: Any) -> None:
            self.record(name, data)

        return record

    def wait_for(self, names: str | tuple[str, ...], timeout: float = 60, after: int = 0,
                 where: Callable[[Any], bool] | None = None) -> Any:
        """The data of the first of ``names`` since ``after`` (that ``where`` accepts)."""
        wanted = (names,) if isinstance(names, str) else names
        deadline = time.time() + timeout
        with self.changed:
            while True:
                for _, event, data in self.events[after:]:
                    if event in wanted and (where is None or where(data)):
                        return data
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise AssertionError(f"no {wanted} within {timeout} s; got "
                                         f"{[e for _, e, _ in self.events[after:]]}")
                self.changed.wait(remaining)

    def first_time(self, name: str, after: int = 0) -> float | None:
        return next((t for t, event, _ in self.events[after:] if event == name), None)

    def names(self, after: int = 0) -> list[str]:
        return [event for _, event, _ in self.events[after:]]

    def story(self, after: int = 0) -> list[tuple[float, str, Any]]:
        """What happened since ``after``, for a failing assertion's message: each event's
        time since the first, its name, and its text or state (audio chunks in short)."""
        if len(self.events) <= after:
            return []
        start = self.events[after][0]
        told = []
        for at, event, data in self.events[after:]:
            detail = data.get("text", data.get("state", data.get("reason"))) \
                if isinstance(data, dict) and event != "tts_audio_chunk" else None
            told.append((round(at - start, 2), event, detail))
        return told

    def audio(self, after: int = 0) -> bytes:
        """The reply audio received since ``after``, its chunks joined."""
        return b"".join(base64.b64decode(data["audio_data"])
                        for _, event, data in self.events[after:] if event == "tts_audio_chunk")


class Recorder(EventLog):
    """A python-socketio client on ``/chat`` that timestamps every event it receives."""

    EVENTS = ("joined", "asr_result", "ai_text_chunk", "tts_audio_chunk_start",
              "tts_audio_chunk", "tts_audio_chunk_end", "chat_response", "response_complete",
              "error")

    def __init__(self, url: str, token: str | None, transports: tuple[str, ...] = ("websocket",)
                 ) -> None:
        super().__init__()
        self.client = InOrderClient(reconnection=False)
        for name in (*self.EVENTS, "disconnect"):
            self.client.on(name, self.handler(name), namespace="/chat")
        auth = {"token": token} if token else None
        self.client.connect(url, namespaces=["/chat"], auth=auth, transports=list(transports),
                            wait_timeout=10)

    def emit(self, event: str, data: Any) -> float:
        """Send ``event``; returns the ``perf_counter`` time it was sent."""
        sent = time.perf_counter()
        self.client.emit(event, data, namespace="/chat")
        return sent

    def join(self, role_id: int, **extra: Any) -> dict[str, Any]:
        mark = len(self.events)
        self.emit("join", {"role_id": role_id, **extra})
        return self.wait_for("joined", 20, mark)

    def turn_events(self, since: int) -> list[tuple[float, str, Any]]:
        return self.events[since:]

    def close(self) -> None:
        self.client.disconnect()


def iter_names(events: list[tuple[float, str, Any]]) -> Iterator[str]:
    return (name for _, name, _ in events)
