"""A turn's steps as events to whoever listens, the same for a typed or spoken chat turn
and for a turn of a hands-free call: ``asr_result``, ``ai_text_chunk``,
``tts_audio_chunk_start`` / ``tts_audio_chunk`` / ``tts_audio_chunk_end``,
``chat_response`` and ``response_complete``, each naming its session.

The transport hands in how an event reaches its client (``emit``): to the session's
Socket.IO room, to one Socket.IO client, or as a JSON frame on a plain WebSocket.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from webapp.app.services.speech.audio_player import WebSocketAudioPlayer

Emit = Callable[[str, dict[str, Any]], None]


class ReplyEvents:
    """A ``turns.TurnSink`` that tells every step as an event through ``emit``.

    ``session_id`` may change until the turn is prepared (a turn that names no session
    gets a new one); every event carries the one current when it is sent.
    """

    paced = False  # the reply's audio goes out as it is made

    def __init__(self, emit: Emit, session_id: str) -> None:
        self.emit, self.session_id = emit, session_id
        self.player: WebSocketAudioPlayer | None = None

    def pace(self, seconds: float) -> bool:
        return True

    def heard_seconds(self) -> float | None:
        return None

    def _emit(self, event: str, data: dict[str, Any], **_: Any) -> None:
        # ``**_``: the audio player also passes the room it was made for, which is ours.
        self.emit(event, {**data, "session_id": self.session_id})

    def asr_result(self, text: str) -> None:
        self._emit("asr_result", {"text": text})

    def text_chunk(self, text: str) -> None:
        self._emit("ai_text_chunk", {"text": text})

    def audio_start(self, fmt: str, sample_rate: int, message_id: str) -> None:
        self.player = WebSocketAudioPlayer(self._emit, self.session_id, "tts_audio_chunk",
                                           format=fmt, sample_rate=sample_rate,
                                           message_id=message_id)
        self.player.start()

    def audio_chunk(self, data: bytes) -> None:
        if self.player is not None:
            self.player.write(data)

    def audio_end(self, audio_url: str | None, duration: float, reason: str | None) -> None:
        extra = {"reason": reason} if reason else {}
        if self.player is not None:
            self.player.stop(audio_url=audio_url, duration=duration, **extra)
        elif reason:
            self._emit("tts_audio_chunk_end", {"audio_url": None, "duration": 0.0,
                                               "chunks": 0, **extra})

    def _after_audio(self, event: str, data: dict[str, Any]) -> None:
        if self.player is not None:
            self.player.send(event, data)
        else:
            self._emit(event, data)

    def reply(self, payload: dict[str, Any]) -> None:
        self._after_audio("chat_response", payload)

    def complete(self, payload: dict[str, Any]) -> None:
        self._after_audio("response_complete", payload)


class QuietSink:
    """A ``turns.TurnSink`` that tells no one: subclasses keep the steps they want."""

    paced = False

    def pace(self, seconds: float) -> bool:
        return True

    def heard_seconds(self) -> float | None:
        return None

    def asr_result(self, text: str) -> None:
        return None

    def text_chunk(self, text: str) -> None:
        return None

    def audio_start(self, fmt: str, sample_rate: int, message_id: str) -> None:
        return None

    def audio_chunk(self, data: bytes) -> None:
        return None

    def audio_end(self, audio_url: str | None, duration: float, reason: str | None) -> None:
        return None

    def reply(self, payload: dict[str, Any]) -> None:
        return None

    def complete(self, payload: dict[str, Any]) -> None:
        return None
