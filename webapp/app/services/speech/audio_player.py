"""``WebSocketAudioPlayer``: audio to a Socket.IO room as
``<event>_start`` / ``<event>`` / ``<event>_end``, chunks base64-encoded and numbered.

Written to from a green thread it emits at once. Written to from a real OS thread of a
green process (an SDK callback in the thread pool), it hands the emit to the process's
thread relay instead, because emitting from a real thread hangs eventlet; the order of
one player's events is kept either way.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from webapp.app.concurrency import in_os_thread, is_green, thread_relay


class WebSocketAudioPlayer:
    def __init__(self, socket_emit_func: Callable[..., Any], session_id: str,
                 event_name: str = "audio_chunk", *, namespace: str | None = None,
                 format: str = "mp3", sample_rate: int = 0,
                 message_id: str | int | None = None) -> None:
        self.emit = socket_emit_func
        self.session_id = session_id
        self.event_name = event_name
        self.namespace = namespace
        self.format = format
        self.sample_rate = sample_rate
        self.message_id = message_id
        self.seq = 0
        self.started = False
        self.stopped = False
        self._pending = 0
        if is_green() and not in_os_thread():
            thread_relay()

    def _emit_now(self, event: str, payload: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {"room": self.session_id}
        if self.namespace:
            kwargs["namespace"] = self.namespace
        self.emit(event, payload, **kwargs)

    def _relayed(self, event: str, payload: dict[str, Any]) -> None:
        self._pending -= 1
        self._emit_now(event, payload)

    def _send(self, event: str, payload: dict[str, Any]) -> None:
        if in_os_thread() or self._pending:
            self._pending += 1
            thread_relay().submit(self._relayed, event, payload)
        else:
            self._emit_now(event, payload)

    def send(self, event: str, payload: dict[str, Any]) -> None:
        """Send another event of the same reply after every audio event already sent,
        those still being relayed from a worker thread included: a client must not hear
        that the reply is complete before its audio has ended."""
        self._send(event, payload)

    def start(self, **extra: Any) -> None:
        """Announce a new audio stream: format, sample rate and the message it belongs to."""
        if self.started:
            return
        self.started = True
        self._send(f"{self.event_name}_start", {"format": self.format,
                                                "sample_rate": self.sample_rate,
                                                "message_id": self.message_id, **extra})

    def write(self, audio_data: bytes) -> None:
        """Send one chunk (base64) with its sequence number and the time it was sent
        (``sent_at``, seconds since the epoch), so clients can measure delivery."""
        if not audio_data or self.stopped:
            return
        if not self.started:
            self.start()
        self._send(self.event_name, {"audio_data": base64.b64encode(audio_data).decode("ascii"),
                                     "seq": self.seq, "message_id": self.message_id,
                                     "sent_at": time.time()})
        self.seq += 1

    def stop(self, audio_url: str | None = None, duration: float | None = None,
             **extra: Any) -> None:
        """End the stream; a ``reason`` in ``extra`` says why when it ended early."""
        if self.stopped:
            return
        if not self.started:
            self.start()
        self.stopped = True
        self._send(f"{self.event_name}_end", {"audio_url": audio_url, "duration": duration,
                                              "chunks": self.seq,
                                              "message_id": self.message_id, **extra})
