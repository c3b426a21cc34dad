"""Recognising a caller's turn while it is still being spoken.

A live call re-reads the growing turn for partial transcripts and reads it once more
when the turn ends; what matters is how little is left to do at that moment.

- English: Moonshine tiny-en, whose cost follows the audio's length, so each re-read of
  a short turn is cheap and the last one takes a few hundred milliseconds at most.
- Other languages: Whisper base. A pass costs the same whatever the audio's length up
  to its window (10 seconds for a phrase, else Whisper's 30), so partial passes also
  *commit* the sentences that ended well before the current end of the turn; later
  passes and the final one read only the audio after them.
- DashScope (``STT_ENGINE=paraformer``): Paraformer's real-time recognition, fed as the
  turn is spoken, for every language.

Which local one serves a call follows the call's ``language``, else the conversation's
last recognised language, else Whisper detects it on the first turn and the call keeps
it. Every method here may be called from green code: the registry's engines run their
inference in the thread pool, and DashScope is network I/O. The samples go to the
engines as they are, never re-encoded.
"""

from __future__ import annotations

from typing import Any, Protocol

from flask import current_app

from webapp.app.audio import SPEECH_SAMPLE_RATE
from webapp.app.providers.base import ProviderError, Transcription

_BYTES_PER_SECOND = SPEECH_SAMPLE_RATE * 2
# A Whisper sentence ending this long before the live end of the turn will not change.
_STABLE_SECONDS = 1.0
# Whisper's language detection on the first second or so of a turn is often wrong; a
# partial pass settles the call's language only once it has heard this much.
_DETECT_SECONDS = 2.0
# Tokens a live Whisper pass may write: fast Mandarin is about 6 characters a second,
# each one or two tokens, plus timestamps; the ceiling leaves room for the prompt.
_TOKENS_BASE, _TOKENS_PER_SECOND, _MAX_TOKENS = 24, 12, 224
_WINDOW_SECONDS = 10


class LiveRecognizer(Protocol):
    """What a call uses of a recogniser. ``hear`` is handed the turn as it grows (a
    streaming service is sent what is new; the others ignore it), ``reset`` forgets the
    previous turn, ``partial`` / ``final`` read the turn so far / all of it."""

    name: str
    language: str | None
    parallel: bool  # may read a turn while another read of the same call runs

    def hear(self, pcm: bytes) -> None: ...

    def reset(self) -> None: ...

    def partial(self, pcm: bytes) -> str: ...

    def final(self, pcm: bytes) -> Transcription: ...


class _ReadsWholeTurns:
    """A recogniser that reads the audio it is given each time: nothing to stream."""

    def hear(self, pcm: bytes) -> None:
        return None


class MoonshineLive(_ReadsWholeTurns):
    """English: every pass reads the whole turn, which Moonshine does in proportion to it."""

    name = "moonshine"
    parallel = True  # the engine queues reads itself, and each is short

    def __init__(self) -> None:
        self.engine = current_app.extensions["providers"].stt("moonshine")
        self.language: str | None = "en"

    def partial(self, pcm: bytes) -> str:
        return self.engine.transcribe_decoded(pcm, "en").text

    def final(self, pcm: bytes) -> Transcription:
        return self.engine.transcribe_decoded(pcm, "en")

    def reset(self) -> None:
        return None


class WhisperLive(_ReadsWholeTurns):
    """Any language: partial passes commit stable sentences so the final pass reads only
    the tail. Greedy decoding (beam 1) keeps each pass short."""

    name = "whisper"
    parallel = False

    def __init__(self, language: str | None) -> None:
        self.engine = current_app.extensions["providers"].stt("whisper")
        self.language = language
        self._committed: list[str] = []
        self._committed_bytes = 0

    def _read(self, pcm: bytes) -> Transcription:
        # A phrase cut off mid-word can send Whisper into a loop of invented text, and its
        # usual retries at higher temperatures would repeat that several times: one pass,
        # with no more tokens than fast speech of this length needs.
        tokens = min(_MAX_TOKENS, _TOKENS_BASE + int(_TOKENS_PER_SECOND * len(pcm)
                                                     / _BYTES_PER_SECOND))
        # A phrase of a few seconds is read in a 10-second window rather than Whisper's
        # 30, a third of the work (the provider's ``_windowed`` says what was measured).
        return self.engine.transcribe_decoded(
            pcm, self.language, {"beam_size": 1, "single_pass": True, "max_new_tokens": tokens,
                                 "window_seconds": _WINDOW_SECONDS})

    def _joined(self, parts: list[str]) -> str:
        joiner = "" if (self.language or "").startswith(("zh", "ja", "yue")) else " "
        return joiner.join(part for part in parts if part).strip()

    def partial(self, pcm: bytes) -> str:
        start = self._committed_bytes
        result = self._read(pcm[start:])
        if len(pcm) - start >= _DETECT_SECONDS * _BYTES_PER_SECOND:
            self.language = self.language or result.language
        live_end = (len(pcm) - start) / _BYTES_PER_SECOND
        stable = [s for s in result.segments if s.end <= live_end - _STABLE_SECONDS]
        if stable and len(stable) < len(result.segments):
            self._committed += [s.text for s in stable]
            self._committed_bytes = start + int(stable[-1].end * SPEECH_SAMPLE_RATE) * 2
        return self._joined([*self._committed,
                             *(s.text for s in result.segments if s not in stable)])

    def final(self, pcm: bytes) -> Transcription:
        # A partial pass may still be committing: work from what was committed now.
        committed, start = list(self._committed), self._committed_bytes
        tail = pcm[start:]
        result = self._read(tail) if len(tail) >= _BYTES_PER_SECOND // 10 else Transcription("")
        self.language = self.language or result.language
        text = self._joined([*committed, result.text])
        return Transcription(text=text, language=self.language,
                             duration=len(pcm) / _BYTES_PER_SECOND)

    def reset(self) -> None:
        self._committed, self._committed_bytes = [], 0


class ParaformerLive:
    """DashScope's Paraformer, when it is the deployment's recogniser: the turn is
    streamed to the service as it is spoken (``hear``), a partial pass shows the service's
    interim text, and the final pass only sends the last piece and ends the task. Every
    call has its own live recognition (the engine runs them side by side)."""

    name = "paraformer"
    parallel = False

    def __init__(self, language: str | None) -> None:
        self.engine = current_app.extensions["providers"].stt("paraformer")
        self.language = language
        self._stream: Any = None
        self._sent = 0

    def _feed(self, pcm: bytes) -> Any:
        if self._stream is None:
            self._stream = self.engine.open_stream(self.language)
            self._sent = 0
        self._stream.send(pcm[self._sent:])
        self._sent = len(pcm)
        return self._stream

    def hear(self, pcm: bytes) -> None:
        """The turn so far, as it grows: what is new goes to the service at once, whose
        interim text then keeps up with the caller."""
        self._feed(pcm)

    def partial(self, pcm: bytes) -> str:
        """What the service has heard so far (``hear`` sends the audio)."""
        stream = self._stream
        return stream.text if stream is not None else ""

    def final(self, pcm: bytes) -> Transcription:
        stream = self._feed(pcm)
        self._stream = None
        result = stream.finish()
        return Transcription(text=result.text, language=self.language,
                             duration=len(pcm) / _BYTES_PER_SECOND)

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
        self._stream = None


def choose(language: str | None) -> LiveRecognizer:
    """The recogniser for a call in ``language`` (None: Whisper detects it), or Paraformer
    for every language when it is the deployment's recogniser (``STT_ENGINE``)."""
    registry = current_app.extensions["providers"]
    code = (language or "").lower()
    if current_app.config.get("STT_ENGINE") == "paraformer" \
            and registry.is_configured("stt", "paraformer"):
        return ParaformerLive(code.split("-")[0] or None)
    if code.startswith("en") and registry.is_configured("stt", "moonshine"):
        return MoonshineLive()
    if not registry.is_configured("stt", "whisper"):
        raise ProviderError("whisper", "not_configured", "no local recogniser for live calls")
    return WhisperLive(code.split("-")[0] or None)
