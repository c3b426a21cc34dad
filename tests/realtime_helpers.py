"""Clients for the real-time tests: a live server, REST set-up, and Socket.IO recording."""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import socketio

from bench.server import free_port

ROOT = Path(__file__).resolve().parent.parent


class LiveServer:
    """``wsgi.py`` under eventlet in a subprocess (embedded mode unless env says otherwise)."""

    def __init__(self, **env: str) -> None:
        import os

        self.work = Path(tempfile.mkdtemp(prefix="tingshuo-live-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "INSTANCE_DIR": str(self.work), "PORT": str(self.port),
                    "HOST": "127.0.0.1", "BASE_URL": self.url, "RATELIMIT_ENABLED": "false",
                    "MODEL_CACHE_DIR": str(ROOT / "instance" / "models"),
                    "FLASK_APP": "webapp.app:create_app", "LOG_LEVEL": "INFO", **env}
        for key in ("DATABASE_URL", "REDIS_URL", "S3_BUCKET", "DASHSCOPE_API_KEY"):
            if key not in env:
                self.env.pop(key, None)
        self.log = self.work / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveServer:
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=self.env,
                       check=True, capture_output=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "wsgi.py"], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                health = requests.get(self.url + "/api/health", timeout=1)
                if health.ok and health.json()["data"]["engines_warm"]:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start:\n" + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


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
        self.role_id = self.call("POST", "/api/role/add", json={
            "name": "Ada", "description": "A patient teacher who explains things simply.",
            "gender": "女", "age": 36, "voice_type": voice_type})["data"]["role_id"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.http.request(method, self.url + path, timeout=30, **kwargs).json()

    def upload(self, data: bytes, name: str = "voice.wav") -> dict[str, Any]:
        return self.call("POST", "/api/upload_voice", files={"file": (name, data)})


class Recorder:
    """A python-socketio client on ``/chat`` that timestamps every event it receives."""

    EVENTS = ("joined", "asr_result", "ai_text_chunk", "tts_audio_chunk_start",
              "tts_audio_chunk", "tts_audio_chunk_end", "chat_response", "response_complete",
              "error")

    def __init__(self, url: str, token: str | None, transports: tuple[str, ...] = ("websocket",)
                 ) -> None:
        self.client = socketio.Client(reconnection=False)
        self.events: list[tuple[float, str, Any]] = []
        self.changed = threading.Condition()
        for name in self.EVENTS:
            self.client.on(name, self._handler(name), namespace="/chat")
        self.client.on("disconnect", self._handler("disconnect"), namespace="/chat")
        auth = {"token": token} if token else None
        self.client.connect(url, namespaces=["/chat"], auth=auth, transports=list(transports),
                            wait_timeout=10)

    def _handler(self, name: str) -> Any:
        def record(data: Any = None, *rest: Any) -> None:
            with self.changed:
                self.events.append((time.perf_counter(), name, data))
                self.changed.notify_all()

        return record

    def emit(self, event: str, data: Any) -> float:
        sent = time.perf_counter()
        self.client.emit(event, data, namespace="/chat")
        return sent

    def wait_for(self, name: str, timeout: float = 60, after: int = 0) -> Any:
        deadline = time.time() + timeout
        with self.changed:
            while True:
                for _, event, data in self.events[after:]:
                    if event == name:
                        return data
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise AssertionError(f"no {name} within {timeout} s; got "
                                         f"{[e for _, e, _ in self.events[after:]]}")
                self.changed.wait(remaining)

    def join(self, role_id: int, **extra: Any) -> dict[str, Any]:
        mark = len(self.events)
        self.emit("join", {"role_id": role_id, **extra})
        return self.wait_for("joined", 20, mark)

    def turn_events(self, since: int) -> list[tuple[float, str, Any]]:
        return self.events[since:]

    def audio(self, since: int) -> bytes:
        return b"".join(base64.b64decode(data["audio_data"])
                        for _, name, data in self.events[since:] if name == "tts_audio_chunk")

    def close(self) -> None:
        self.client.disconnect()


def iter_names(events: list[tuple[float, str, Any]]) -> Iterator[str]:
    return (name for _, name, _ in events)
