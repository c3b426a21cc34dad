"""A caller for hands-free voice calls: real speech streamed at real-time pace.

Used by the call tests and ``bench call``. The caller streams 16 kHz mono PCM (made by
``tests.helpers.sounds.speech``) in 40 ms pieces on the wall clock, as a microphone
would, and remembers when it sent the last voiced sample of each utterance.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import socketio
import websocket

from tests.helpers.realtime import EventLog
from tests.helpers.sounds import RATE

PIECE_MS = 40
PIECE_BYTES = RATE * 2 * PIECE_MS // 1000
EVENTS = ("call_started", "call_ended", "vad", "asr_partial", "asr_result", "ai_text_chunk",
          "tts_audio_chunk_start", "tts_audio_chunk", "tts_audio_chunk_end", "chat_response",
          "response_complete", "error")


class Caller(EventLog):
    """One call over Socket.IO ``/chat`` (or ``/api/ws/call`` with ``use_websocket``),
    recording every event with the time it arrived.

    Once the call has started, a microphone thread sends a 40 ms piece every 40 ms, as
    a real one does: what ``say`` queued, else silence; nothing between ``end`` and the
    next ``start``.
    """

    def __init__(self, url: str, token: str, use_websocket: bool = False) -> None:
        super().__init__()
        self.use_websocket = use_websocket
        self.send_lock = threading.Lock()
        self.queued = bytearray()
        self.queue_lock = threading.Lock()
        self.sent_bytes = 0
        self.marks: list[tuple[int, threading.Event, list[float]]] = []
        self.mic: threading.Thread | None = None
        self.closed = threading.Event()
        self.hung_up = threading.Event()  # after call_end the microphone sends nothing
        if use_websocket:
            ws_url = url.replace("http://", "ws://") + f"/api/ws/call?token={token}"
            self.ws = websocket.create_connection(ws_url, timeout=30)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            self.sio = socketio.Client(reconnection=False)
            for name in EVENTS:
                self.sio.on(name, self.handler(name), namespace="/chat")
            self.sio.connect(url, namespaces=["/chat"], auth={"token": token},
                             transports=["websocket"], wait_timeout=10)

    def _read(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except Exception:  # noqa: BLE001 - the socket closed
                return
            if not raw:
                return
            message = json.loads(raw)
            self.record(message.pop("type"), message)

    def send(self, event: str, data: Any) -> None:
        with self.send_lock:
            if self.use_websocket:
                if isinstance(data, bytes | bytearray):
                    self.ws.send_binary(bytes(data))
                else:
                    self.ws.send(json.dumps({"type": event, **data}))
            else:
                self.sio.emit(event, data, namespace="/chat")

    def start(self, role_id: int, **extra: Any) -> dict[str, Any]:
        mark = len(self.events)
        self.send("call_start", {"role_id": role_id, **extra})
        answer = self.wait_for(("call_started", "error"), 30, mark)
        if "sample_rate" in answer:
            self.hung_up.clear()
            if self.mic is None:
                self.mic = threading.Thread(target=self._microphone, daemon=True)
                self.mic.start()
        return answer

    def _microphone(self) -> None:
        seconds = PIECE_BYTES / 2 / RATE
        began = time.perf_counter()
        n = 0
        while not self.closed.is_set():
            with self.queue_lock:
                piece = bytes(self.queued[:PIECE_BYTES])
                del self.queued[:PIECE_BYTES]
            piece += b"\0" * (PIECE_BYTES - len(piece))
            try:
                if not self.hung_up.is_set():
                    self.send("call_audio", piece)
            except Exception:  # noqa: BLE001 - the connection is gone: the microphone stops
                return
            now = time.perf_counter()
            with self.queue_lock:
                before, self.sent_bytes = self.sent_bytes, self.sent_bytes + PIECE_BYTES
                for end, done, at in self.marks:
                    if before < end <= self.sent_bytes:
                        # The marked sample's own moment within this piece.
                        at.append(now - (self.sent_bytes - end) / 2 / RATE)
                        done.set()
            n += 1
            delay = began + n * seconds - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def queue(self, pcm: bytes) -> tuple[threading.Event, list[float]]:
        """Queue ``pcm`` for the microphone; the event is set when its last sample is sent."""
        done, at = threading.Event(), []
        with self.queue_lock:
            self.queued += pcm
            self.marks.append((self.sent_bytes + len(self.queued), done, at))
        return done, at

    def say(self, pcm: bytes, then_silence: float = 1.5) -> float:
        """Speak ``pcm`` (then the microphone hears silence for ``then_silence`` seconds);
        returns when the last sample of ``pcm`` was sent."""
        done, at = self.queue(pcm)
        done.wait(len(pcm) / 2 / RATE + 30)
        time.sleep(then_silence)
        return at[0]

    def speak_from(self, pcm: bytes) -> float:
        """Queue ``pcm`` and return (once sent) when its first sample went out."""
        first, first_at = self.queue(pcm[:2])
        rest, _ = self.queue(pcm[2:])
        first.wait(30)
        rest.wait(len(pcm) / 2 / RATE + 30)
        return first_at[0] - 2 / 2 / RATE

    def end(self) -> None:
        self.hung_up.set()
        self.send("call_end", {})

    def close(self) -> None:
        self.closed.set()
        if self.mic is not None:
            self.mic.join(2)
        if self.use_websocket:
            self.ws.close()
        else:
            self.sio.disconnect()
