"""A hostile user against a running server: each corpus file sent to every entry point
that reads audio, over the transport that entry point speaks, and the answer reduced to
a status code. Shared by the live tests and ``bench abuse``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import requests
import websocket

from tests.helpers.realtime import Recorder, User

# Socket.IO and the plain WebSockets take at most WS_MAX_MESSAGE_BYTES (1 MB) a message;
# base64 adds a third, so files up to this size fit a frame.
FITS_A_FRAME = 700_000


def resident_mb(pid: int) -> float:
    """A process's resident memory (``VmRSS``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


class Attacker:
    """One signed-up user with an API key and open sockets, sending what it is given."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.user = User(url)
        self.key = self.user.call("POST", "/api/keys", json={"name": "k"})["data"]["key"]
        self.talker = Recorder(url, self.user.token)
        self.talker.join(self.user.role_id)
        ws_url = url.replace("http://", "ws://")
        self.voice_ws = websocket.create_connection(
            f"{ws_url}/api/ws/voice_chat?token={self.user.token}", timeout=60)

    def rest(self, name: str, data: bytes, clone: bool = True) -> dict[str, int]:
        """The file to every REST route that reads audio (cloning only with ``clone``):
        route → status."""
        http = self.user.http
        bearer = {"Authorization": f"Bearer {self.key}"}
        out = {}
        for route in ("/api/stt", "/api/upload_voice", "/api/temfile/upload"):
            out[route] = http.post(self.url + route, files={"file": (name, data)},
                                   timeout=60).status_code
        if clone:
            out["/api/voices"] = http.post(self.url + "/api/voices", data={
                "name": "x", "provider": "local"}, files={"files": (name, data)},
                timeout=60).status_code
        for route in ("/v1/audio/transcriptions", "/v1/audio/translations"):
            out[route] = requests.post(self.url + route, headers=bearer, data={
                "model": "whisper-1"}, files={"file": (name, data)}, timeout=60).status_code
        return out

    def sockets(self, data: bytes) -> dict[str, int]:
        """The file as an inline voice message on Socket.IO and ``/api/ws/voice_chat``:
        transport → the error's code (0 when no error came)."""
        encoded = base64.b64encode(data).decode()
        mark = len(self.talker.events)
        self.talker.emit("voice_message", {"role_id": self.user.role_id, "audio": encoded})
        error = self.talker.wait_for(("error", "asr_result"), 60, mark)
        self.voice_ws.send(json.dumps({"role_id": self.user.role_id, "audio": encoded}))
        frame = json.loads(self.voice_ws.recv())
        return {"socket.io voice_message": error.get("code", 0),
                "/api/ws/voice_chat": 400 if frame.get("type") == "error" else 0}

    def huge_frame(self, size: int = 28 * 1024 * 1024) -> str:
        """One message of ``size`` bytes to ``/api/ws/voice_chat``; how the server ended
        it (``closed 1009`` when it refused the message while it arrived)."""
        ws = websocket.create_connection(
            self.url.replace("http://", "ws://") + f"/api/ws/voice_chat?token={self.user.token}",
            timeout=60)
        try:
            ws.send(json.dumps({"role_id": self.user.role_id,
                                "audio": "A" * (size - 40)}))
            opcode, payload = ws.recv_data(control_frame=True)
            code = int.from_bytes(payload[:2], "big") if payload else 0
            return f"closed {code}" if opcode == websocket.ABNF.OPCODE_CLOSE else "answered"
        except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
            return "closed"
        finally:
            ws.close()

    def close(self) -> None:
        self.talker.close()
        self.voice_ws.close()
