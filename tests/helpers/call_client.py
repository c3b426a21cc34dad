"""A caller for hands-free voice calls: real speech streamed at real-time pace.

Used by the call tests and ``bench call``. The caller streams 16 kHz mono PCM (made by
``tests.helpers.sounds.speech``) in 40 ms pieces on the wall clock, as a microphone
would, and remembers when it sent the last voiced sample of each utterance.

It also plays the reply as a device would, on its own clock (``Playback``): what arrived
is played at real-time pace; ``barge_in`` ``paused`` holds it at once (and reports
``playback`` ``{message_id, played_ms}``), ``resumed`` plays on, and a reply that ends
``interrupted`` drops what is held. ``stops`` says when playback was held or dropped.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import websocket

from tests.helpers.realtime import EventLog, InOrderClient
from tests.helpers.sounds import RATE
from webapp.app import audio

PIECE_MS = 40
PIECE_BYTES = RATE * 2 * PIECE_MS // 1000
EVENTS = ("call_started", "call_ended", "vad", "asr_partial", "asr_result", "ai_text_chunk",
          "tts_audio_chunk_start", "tts_audio_chunk", "tts_audio_chunk_end", "chat_response",
          "response_complete", "error", "barge_in")


@dataclass
class Playback:
    """One reply being played on the client's clock (``perf_counter``): audio that has
    arrived plays at real-time pace, stalls when none is left, and stands still while
    paused. ``stopped_at`` is when it was held (paused) or dropped, if it was."""

    message_id: str
    fmt: str
    sample_rate: int
    received: float = 0.0  # seconds of audio that arrived
    played: float = 0.0
    running: bool = True
    dropped: bool = False
    last: float = field(default_factory=time.perf_counter)
    encoded: bytearray = field(default_factory=bytearray)

    def advance(self, now: float) -> None:
        if self.running and not self.dropped:
            self.played = min(self.received, self.played + now - self.last)
        self.last = now

    def add(self, data: bytes, now: float) -> None:
        self.advance(now)
        if self.fmt == "pcm":
            self.received += len(data) / 2 / self.sample_rate
        else:  # an encoded stream's length is known once what arrived is decoded
            self.encoded += data
            try:
                self.received = audio.probe(bytes(self.encoded)).duration
            except Exception:  # noqa: BLE001 - not enough of it yet to read
                return

    @property
    def sounding(self) -> bool:
        """True while sound comes out (something left to play, not paused or dropped)."""
        return self.running and not self.dropped and self.played < self.received


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
        self.playback: Playback | None = None
        self.play_lock = threading.Lock()
        # (when, message_id, "paused" | "dropped", whether sound was coming out then)
        self.stops: list[tuple[float, str, str, bool]] = []
        self.reports: list[dict[str, Any]] = []
        self.report_playback = True
        if use_websocket:
            ws_url = url.replace("http://", "ws://") + f"/api/ws/call?token={token}"
            self.ws = websocket.create_connection(ws_url, timeout=30)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        else:
            self.sio = InOrderClient(reconnection=False)
            for name in EVENTS:
                self.sio.on(name, self.handler(name), namespace="/chat")
            self.sio.connect(url, namespaces=["/chat"], auth={"token": token},
                             transports=["websocket"], wait_timeout=10)

    def record(self, name: str, data: Any) -> None:
        self._play(name, data)
        super().record(name, data)

    def _play(self, name: str, data: Any) -> None:
        """The device's side of each event: start, feed, hold, resume or drop playback."""
        if not isinstance(data, dict):
            return
        now = time.perf_counter()
        report = None
        with self.play_lock:
            current = self.playback
            if current is not None:
                current.advance(now)
            if name == "tts_audio_chunk_start":
                self.playback = Playback(data.get("message_id", ""), data.get("format", "mp3"),
                                         int(data.get("sample_rate") or 24000), last=now)
            elif current is None:
                return
            elif name == "tts_audio_chunk":
                current.add(base64.b64decode(data["audio_data"]), now)
            elif name == "barge_in" and data.get("message_id") == current.message_id:
                if data.get("state") == "paused" and current.running:
                    self.stops.append((now, current.message_id, "paused", current.sounding))
                    current.running = False
                    report = {"message_id": current.message_id,
                              "played_ms": round(current.played * 1000)}
                elif data.get("state") == "resumed":
                    current.running = True
            elif name == "tts_audio_chunk_end" and data.get("reason") == "interrupted":
                if current.running:
                    self.stops.append((now, current.message_id, "dropped", current.sounding))
                current.dropped = True
        if report is not None and self.report_playback:
            self.reports.append(report)
            threading.Thread(target=self.send, args=("playback", report), daemon=True).start()

    def played(self) -> float:
        """Seconds of the current reply played so far, on this client's clock."""
        with self.play_lock:
            if self.playback is None:
                return 0.0
            self.playback.advance(time.perf_counter())
            return self.playback.played

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

    def start(self, role_id: int, timeout: float = 30, **extra: Any) -> dict[str, Any]:
        mark = len(self.events)
        self.send("call_start", {"role_id": role_id, **extra})
        answer = self.wait_for(("call_started", "error"), timeout, mark)
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
