"""Hands-free voice calls: a live microphone stream in, turns found by the server, each
turn answered through the chat service, and the caller able to cut in by speaking.

One ``Call`` per call. The transport hands it raw PCM (``feed``) and a function that
sends an event to the caller (``emit``); the call does the rest on green threads:

- every piece of audio is scored by Silero VAD in the thread pool, and the turn
  detector decides where turns start and end (``vad`` events);
- while the caller speaks, the growing turn is re-read for ``asr_partial`` events; as
  soon as the speech pauses the turn is read once more, so when the pause turns out to be
  the end of the turn the transcript is already there (or nearly);
- the turn goes to ``turns.run_turn`` like any other voice turn (stored as audio plus
  transcription; the reply streamed), its timings counted from the end of speech;
- the reply starts in the pause, as LiveKit's preemptive generation does: once the
  pause's read has the words, the reply is generated and synthesized but held (nothing
  sent, nothing stored) until the end-of-turn silence confirms the turn, and dropped
  unseen if the caller goes on, so that silence no longer adds to the wait;
- barge-in, in the manner of LiveKit's agents: speech during a reply first *pauses* the
  reply's audio (it stops being sent at once). Speech that goes on for
  ``CALL_INTERRUPT_MS``, or a short utterance with real words in it, interrupts: the
  reply is cancelled, what was heard is stored, and the speech becomes the next turn.
  A cough, a breath, or a backchannel ("uh-huh", "嗯", "对", "okay") lets the reply
  resume where it paused.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from webapp.app import audio
from webapp.app.audio import SPEECH_SAMPLE_RATE, denoise, end_of_turn
from webapp.app.audio.vad import SpeechScorer
from webapp.app.concurrency import run_blocking, sleep, spawn
from webapp.app.errors import ApiError, as_error
from webapp.app.extensions import db
from webapp.app.providers.base import Transcription
from webapp.app.services.conversation import call_claims, live_recognition, turn_completion, turns
from webapp.app.services.conversation.reply_events import Emit, ReplyEvents
from webapp.app.services.conversation.turn_detection import TurnDetector, TurnEvent, TurnSettings
from webapp.app.services.platform import limits
from webapp.app.services.speech import recorded_speech

log = logging.getLogger(__name__)

COUNT_EVERY_MS = 5000
"""A call's audio counts against its caller's day in pieces of this length (and the rest
when it ends): one database write per piece, not per frame."""
SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)

BACKCHANNELS = frozenset({
    "uh-huh", "uh huh", "uhhuh", "mm-hmm", "mm hmm", "mhm", "hmm", "mm", "okay", "ok",
    "yeah", "yep", "yes", "right", "sure", "i see", "got it", "oh", "ah", "uh", "um",
    "嗯", "嗯嗯", "对", "对对", "对对对", "是", "是的", "好", "好的", "哦", "噢", "啊", "行",
    "嗯嗯嗯", "对的",
})
_PUNCTUATION = re.compile(r"[\s\.,!?;:，。！？；：、…\"'“”‘’()（）-]+")

_HOLD_LIMIT_SECONDS = 60.0
# A pause is judged (Smart Turn, the transcript) once it has lasted this long: shorter
# pauses, between words, are many and rarely the end, and the pause's read usually takes
# longer anyway. The reply may start in the pause once it is judged finished.
_JUDGE_AFTER_MS = 192


def is_backchannel(text: str) -> bool:
    """True for nothing at all or a short acknowledgement that should not take the turn."""
    words = [w for w in _PUNCTUATION.split(text.lower()) if w]
    if not words:
        return True
    joined = " ".join(words)
    return joined in BACKCHANNELS or all(w in BACKCHANNELS for w in words) and len(words) <= 3


def is_hallucinated(text: str) -> bool:
    """True for nothing said, or for what a recogniser invents on noise or a cut-off
    word: one word or character said over and over ("They're low, low, low, low.",
    "S. s. s. s.", "谢谢谢谢谢谢")."""
    words = [w for w in _PUNCTUATION.split(text.lower()) if w]
    if not words:
        return True
    if len(words) == 1 and len(words[0]) >= 4 and any("\u4e00" <= c <= "\u9fff" for c in words[0]):
        words = list(words[0])  # unspaced writing: look at its characters
    if len(words) < 4:
        return False
    most = max(words.count(w) for w in set(words))
    return most >= 3 and most / len(words) >= 0.6


def _bad_audio(detail: str) -> ApiError:
    return ApiError(400, "call_bad_audio", "BAD_AUDIO", {"detail": detail})


@dataclass
class CallOptions:
    role_id: int
    session_id: str | None = None
    sample_rate: int = SPEECH_SAMPLE_RATE
    language: str | None = None
    audio_format: str = "mp3"
    # False: every turn is only recognised and told (``asr_result``), never answered or
    # stored; no session is opened (a transcription-only session of a transport).
    answer: bool = True
    # How this call decides a turn is over, and the silence that ends a finished one;
    # None takes ``CALL_END_OF_TURN`` / ``CALL_END_SILENCE_MS`` (a transport whose
    # protocol names them, like the Realtime API's ``server_vad``, sets them).
    end_of_turn: str | None = None
    end_silence_ms: int | None = None
    # Noise suppression of the caller's audio before anything listens to it:
    # ``near_field`` / ``far_field`` / ``off``; None takes ``CALL_NOISE_REDUCTION``.
    noise_reduction: str | None = None


class ReplyOutput(ReplyEvents):
    """A reply's events for a call, its audio sent no faster than it is played.

    The server keeps the caller at most ``lead`` seconds ahead of playback, so that when
    the caller cuts in the audio still to come was never sent. ``pause`` stops sending
    at once (a possible interruption) and tells the caller (``barge_in`` ``paused``: the
    client pauses its playback); ``resume`` carries on and tells it so; ``cancel`` ends
    the reply (``tts_audio_chunk_end`` ``interrupted``: the client drops what it holds).
    ``playback`` is the client's own report of how far it has played.
    """

    paced = True

    def __init__(self, emit: Emit, session_id: str, lead: float,
                 cancel: threading.Event) -> None:
        super().__init__(emit, session_id)
        self.lead, self.cancel = lead, cancel
        self.paused = False
        self.told_paused = False
        self.message_id: str | None = None
        self.reported: float | None = None
        self.sent = 0.0
        self.played = 0.0
        self._tick: float | None = None

    def audio_start(self, fmt: str, sample_rate: int, message_id: str) -> None:
        self.message_id = message_id
        super().audio_start(fmt, sample_rate, message_id)

    def pause(self) -> None:
        """Stop sending; a client already playing this reply pauses it."""
        self.paused = True
        if self.message_id is not None and not self.told_paused and not self.cancel.is_set():
            self.told_paused = True
            self._emit("barge_in", {"state": "paused", "message_id": self.message_id})

    def resume(self) -> None:
        """Go on sending; a client that paused resumes where it stopped."""
        self.paused = False
        if self.told_paused:
            self.told_paused = False
            self._emit("barge_in", {"state": "resumed", "message_id": self.message_id})

    def playback(self, message_id: str, played_ms: int) -> None:
        if message_id == self.message_id:
            self.reported = played_ms / 1000

    def heard_seconds(self) -> float | None:
        return self.reported

    def pace(self, seconds: float) -> bool:
        """Wait until the caller needs ``seconds`` more audio; False once cut off. With
        nothing more to send (0 s) it only waits out a pause, so a reply paused at its very
        end still ends as the caller's speech decides: heard, or interrupted."""
        while True:
            if self.cancel.is_set():
                return False
            now = time.monotonic()
            if self._tick is not None and not self.paused:
                self.played = min(self.sent, self.played + now - self._tick)
            self._tick = now
            if not self.paused and (not seconds or self.sent - self.played <= self.lead):
                break
            sleep(0.02)
        self.sent += seconds
        return True


class _Reply:
    """A turn being answered: its output, its cancel switch, and when it is done."""

    def __init__(self, output: ReplyOutput, cancel: threading.Event) -> None:
        self.output, self.cancel = output, cancel
        self.done = threading.Event()


class _Pending:
    """A recognition running in the background, for the audio it was started on."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.ready = threading.Event()
        self.result: Transcription | None = None
        self.error: BaseException | None = None
        self.finished_at = 0.0
        self.stale = False  # the speech went on: nobody needs this read any more


class _Held:
    """The events of a reply started before its turn surely ended, kept back until it
    has (``confirm``: they go out, and so does everything after) or dropped unseen when
    the caller went on speaking (``drop``). ``wait`` is the chat service's ``go_ahead``."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.kept: list[tuple[str, dict[str, Any]]] = []
        self.holding, self.dropped = True, False
        self.confirmed_at: float | None = None
        self.decided = threading.Event()

    def __call__(self, event: str, data: dict[str, Any]) -> None:
        if self.dropped:
            return
        if self.holding:
            self.kept.append((event, data))
            return
        self.emit(event, data)

    def confirm(self) -> None:
        if self.dropped:
            return
        self.confirmed_at = time.perf_counter()
        while self.kept:  # what is said while these go out joins the queue
            self.emit(*self.kept.pop(0))
        self.holding = False
        self.decided.set()

    def drop(self) -> None:
        self.dropped, self.kept = True, []
        self.decided.set()

    def wait(self) -> float | None:
        # The call decides within one end-of-turn silence and one read; never wait forever.
        if not self.decided.wait(_HOLD_LIMIT_SECONDS):
            self.drop()
        return self.confirmed_at


class _Speculation:
    """A reply started in the pause that may end the turn, from the audio read then.

    ``ready`` is set once the reply has started (``reply``) or will not (no words)."""

    def __init__(self, pending: _Pending, pcm: bytes, speech_end: float,
                 silence_ms: int) -> None:
        self.pending, self.pcm, self.speech_end = pending, pcm, speech_end
        self.silence_ms = silence_ms
        self.reply: _Reply | None = None
        self.held: _Held | None = None
        self.ready = threading.Event()
        self.dropped = False

    def drop(self) -> None:
        self.dropped = True
        if self.held is not None:
            self.held.drop()
        if self.reply is not None:
            self.reply.cancel.set()


class Call:
    """One live call; see the module's docstring. Methods are called from green code."""

    def __init__(self, app: Flask, user_id: int, lang: str, options: CallOptions,
                 emit: Emit) -> None:
        config = app.config
        self.app, self.user_id, self.lang, self.options = app, user_id, lang, options
        mode = options.end_of_turn or config["CALL_END_OF_TURN"]
        end_silence_ms = options.end_silence_ms or config["CALL_END_SILENCE_MS"]
        self.emit = emit
        self.session_id = ""
        self.settings = TurnSettings(
            threshold=config["CALL_VAD_THRESHOLD"],
            release=max(0.05, config["CALL_VAD_THRESHOLD"] - 0.15),
            end_silence_ms=end_silence_ms,
            min_speech_ms=config["CALL_MIN_SPEECH_MS"],
            max_turn_ms=int(config["CALL_MAX_TURN_SECONDS"] * 1000),
            judged=mode != "silence",
            # A verdict is normally in within a few hundred ms; on a machine too busy to
            # give one, the turn still ends, later than any verdict would have made it.
            undecided_ms=2 * max(config["CALL_UNFINISHED_SILENCE_MS"], end_silence_ms))
        self.completion = turn_completion.CompletionSettings(
            complete_ms=end_silence_ms,
            unfinished_ms=max(config["CALL_UNFINISHED_SILENCE_MS"], end_silence_ms),
            clause_ms=config["CALL_CLAUSE_SILENCE_MS"],
            threshold=config["CALL_TURN_THRESHOLD"])
        # ``smart_turn``: how it sounds and what it says; ``transcript``: what it says;
        # ``silence``: neither, every pause of the end silence ends the turn.
        self.turn_model = mode == "smart_turn" and end_of_turn.available()
        self.words_wait = config["CALL_JUDGE_WORDS_MS"] / 1000
        self.interrupt_ms = config["CALL_INTERRUPT_MS"]
        self.speculate = config["CALL_SPECULATIVE_REPLY"]
        self.partial_ms = config["CALL_PARTIAL_MS"]
        self.lead = config["CALL_AUDIO_LEAD_MS"] / 1000
        self.max_frame_bytes = config["CALL_MAX_FRAME_MS"] * options.sample_rate * 2 // 1000
        self.max_seconds = config["CALL_MAX_SECONDS"]
        self.max_speed = config["CALL_MAX_AUDIO_SPEED"]
        self.burst_ms = config["CALL_AUDIO_BURST_MS"]
        self.fed_ms = 0.0
        self.first_audio: float | None = None
        self.idle_seconds = config["CALL_IDLE_SECONDS"]
        self.detector = TurnDetector(self.settings)
        self.scorer = SpeechScorer()
        self.resampler = audio.StreamResampler(options.sample_rate, SPEECH_SAMPLE_RATE)
        noise_reduction = options.noise_reduction or config["CALL_NOISE_REDUCTION"]
        self.noise_reduction = noise_reduction if noise_reduction != "off" \
            and denoise.available() else None
        self.denoiser: denoise.Denoiser | None = None
        self.recognizer: live_recognition.LiveRecognizer | None = None
        self.inbox: deque[tuple[bytes, float]] = deque()
        self.wake = threading.Event()
        self.ended = threading.Event()
        self.end_reason = ""
        self.started_at = time.monotonic()
        self.last_audio = time.monotonic()
        self.received_ms = 0
        self.arrivals: deque[tuple[int, float]] = deque(maxlen=400)
        self.reply: _Reply | None = None
        self.turn_no = 0
        self.closed_turn = 0
        self.pending: _Pending | None = None
        self.speculation: _Speculation | None = None
        self.pause_no, self.pause_audio = 0, b""
        self.judged_pause = 0  # the last pause sent to be judged
        self.finishing = 0  # turns that ended and are not answered yet
        self.partial_busy = False
        self.partial_at_ms = 0
        self.partial_rest_until = 0.0
        self.last_partial = ""
        self.asr_lock = threading.Semaphore(1)
        self.turn_lock = threading.Semaphore(1)
        self.barge_in = False
        self.detecting = False
        self.turns = 0
        self.claim: call_claims.Claim | None = None
        self.slot: limits.Slot | None = None
        self.counted_ms = 0

    # -- the transport's side ---------------------------------------------------------

    def start(self) -> str:
        """Open (or create) the session and claim it (a call that only transcribes has
        none); the caller commits nothing else. A caller has at most ``USER_MAX_CALLS``
        calls at once (429 beyond), with audio left for the day."""
        self.slot = limits.hold("calls", self.user_id, limits.CALL_SLOT_SECONDS)
        try:
            limits.require_allowance(self.user_id)
            language = self.options.language
            if self.options.answer:
                role, session = turns.open_session(self.user_id, self.options.role_id,
                                                   self.options.session_id)
                self.session_id = session.id
                self.claim = call_claims.claim(session.id,
                                               self.app.config["REDIS_URL"] or None)
                if self.claim is None:
                    raise ApiError(409, "call_busy", "CALL_IN_PROGRESS")
                language = language or turns.conversation_language(session.id)
            self.recognizer = live_recognition.choose(language)
            self.detecting = self.recognizer.language is None
        except Exception:
            self._release()
            raise
        spawn(self._run)
        log.info("call started in session %s (recogniser %s, language %s)", self.session_id,
                 self.recognizer.name, language)
        return self.session_id

    def feed(self, pcm: Any) -> None:
        """One piece of microphone audio; bad pieces are refused and the call goes on."""
        if self.ended.is_set():
            raise ApiError(400, "call_not_started", "CALL_NOT_STARTED")
        if not isinstance(pcm, bytes | bytearray | memoryview):
            raise _bad_audio("call_audio carries raw 16-bit PCM bytes")
        pcm = bytes(pcm)
        if not pcm or len(pcm) % 2:
            raise _bad_audio("16-bit PCM needs an even, non-zero number of bytes")
        if len(pcm) > self.max_frame_bytes:
            raise _bad_audio(f"at most {self.max_frame_bytes} bytes "
                             f"({self.max_frame_bytes * 500 // self.options.sample_rate} ms)"
                             " per piece")
        self._check_pace(len(pcm) * 500 / self.options.sample_rate)
        self.last_audio = time.monotonic()
        self.inbox.append((pcm, time.perf_counter()))
        self.wake.set()

    def _check_pace(self, piece_ms: float) -> None:
        """A microphone sends audio as fast as it is spoken. Audio arriving more than
        ``CALL_MAX_AUDIO_SPEED`` times faster (beyond a ``CALL_AUDIO_BURST_MS`` head start
        for what a client buffered) ends the call: nothing a caller says needs it, and it
        is what a client pushing a file into the call to tie up the server does. So the
        inbox never holds more than that head start plus what the analysis lags."""
        now = time.monotonic()
        if self.first_audio is None:
            self.first_audio = now
        self.fed_ms += piece_ms
        allowed = self.burst_ms + self.max_speed * (now - self.first_audio) * 1000
        if self.fed_ms > allowed:
            self.end("too_fast")
            raise ApiError(400, "audio_too_fast", "AUDIO_TOO_FAST",
                           {"speed": f"{self.max_speed:g}"})

    def playback(self, message_id: str, played_ms: int) -> None:
        """The caller's device has played ``played_ms`` of reply ``message_id``."""
        reply = self.reply
        if reply is not None:
            reply.output.playback(message_id, played_ms)

    def end(self, reason: str = "ended") -> None:
        """Hang up: a reply in flight is cut and stored as far as it was heard."""
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended.set()
        self.wake.set()
        self._drop_speculation()
        if self.reply is not None:
            self.reply.cancel.set()

    # -- the call's own green thread --------------------------------------------------

    def _run(self) -> None:
        with self.app.app_context():
            try:
                while not self.ended.is_set():
                    self.wake.wait(1.0)
                    self.wake.clear()
                    self._check_limits()
                    while self.inbox and not self.ended.is_set():
                        self._listen()
            except Exception as exc:  # a failing call tells its caller
                log.exception("call in session %s failed", self.session_id)
                self._error(exc)
                self.end("failed")
            finally:
                if self.reply is not None:
                    self.reply.done.wait(30)
                self._count_audio(final=True)
                self._release()
                self.emit("call_ended", {"session_id": self.session_id,
                                         "reason": self.end_reason, "turns": self.turns})
                db.session.remove()

    def _release(self) -> None:
        if self.denoiser is not None:
            self.denoiser.close()
            self.denoiser = None
        if self.claim is not None:
            self.claim.release()
            self.claim = None
        if self.slot is not None:
            self.slot.release()
            self.slot = None

    def _count_audio(self, final: bool = False) -> None:
        """Count the audio heard so far against the caller's day; a call that would pass
        the day's allowance is ended with the refusal (what was heard still counts)."""
        heard = self.received_ms - self.counted_ms
        if heard <= 0 or (heard < COUNT_EVERY_MS and not final):
            return
        self.counted_ms += heard
        try:
            limits.charge(self.user_id, audio_seconds=heard / 1000, over=final)
        except ApiError as exc:
            limits.charge(self.user_id, audio_seconds=heard / 1000, over=True)
            self._error(exc)
            self.end("limit")
        except Exception:  # an unreachable database does not end the call
            db.session.rollback()
            log.exception("counting the audio of the call in session %s failed",
                          self.session_id)

    def _check_limits(self) -> None:
        if self.claim is not None:
            self.claim.renew()
        if self.slot is not None:
            self.slot.renew()
        self._count_audio()
        now = time.monotonic()
        if now - self.started_at > self.max_seconds:
            self.end("max_length")
        elif now - self.last_audio > self.idle_seconds:
            self.end("idle")

    def _error(self, exc: Exception, emit: Emit | None = None) -> None:
        (emit or self.emit)("error", {**as_error(exc, self.lang),
                                      "session_id": self.session_id})

    def _listen(self) -> None:
        """Score everything that has arrived in one trip to the thread pool (when the
        machine is busy pieces pile up, and one trip each would only fall further behind)."""
        pieces = []
        while self.inbox:
            pcm, received = self.inbox.popleft()
            pieces.append(pcm)
            self.received_ms += len(pcm) * 500 // self.options.sample_rate
            self.arrivals.append((self.received_ms, received))

        def analyse() -> list[tuple[bytes, float]]:
            heard = self.resampler.write(b"".join(pieces))
            if self.noise_reduction is not None:
                if self.denoiser is None:
                    self.denoiser = denoise.Denoiser(self.noise_reduction)
                heard = self.denoiser.process(heard)
            return self.scorer.score(heard)

        windows = run_blocking(analyse)
        for event in self.detector.push(windows):
            self._on_turn_event(event)
        if self.detector.silence_ms >= _JUDGE_AFTER_MS and self.pending is not None \
                and self.judged_pause != self.pause_no:
            self.judged_pause = self.pause_no
            spawn(self._judge, self.pause_no, self.pending, self.pause_audio,
                  self.detector.voiced_ms)
        if self.detector.speaking:
            self._while_speaking()

    def _arrival(self, audio_ms: int) -> float:
        """When the piece holding audio time ``audio_ms`` reached the server."""
        for end_ms, received in self.arrivals:
            if end_ms >= audio_ms:
                return received
        return time.perf_counter()

    def _on_turn_event(self, event: TurnEvent) -> None:
        if event.kind == "speech_start":
            self._drop_speculation()
            self.turn_no += 1
            self.pending, self.partial_at_ms, self.last_partial = None, 0, ""
            if self.recognizer is not None:
                self.recognizer.reset()
            self.emit("vad", {"state": "speech_start", "session_id": self.session_id})
            if self.reply is not None and not self.reply.done.is_set():
                self.barge_in = True
                self.reply.output.pause()
        elif event.kind == "pause":
            self.pending = self._recognise_later(event.audio, speculative=True)
            self.pause_no, self.pause_audio = event.pause_no, event.audio
        elif event.kind == "resume":
            if self.pending is not None:
                self.pending.stale = True
            self.pending = None
            self._drop_speculation()
        elif event.kind == "speech_end":
            self.emit("vad", {"state": "speech_end", "session_id": self.session_id})
            # Finished beside the listening loop, which must not fall behind the caller;
            # one at a time, so turns are answered in the order they were spoken.
            self.finishing += 1
            spawn(self._finish_turn, event, self._speech_end_time(), self.pending, self.turn_no,
                  self.speculation)
            self.pending, self.speculation = None, None

    def _judge(self, pause_no: int, pending: _Pending, pcm: bytes, voiced_ms: int) -> None:
        """Decide how much silence ends the turn at this pause: by how it sounds (Smart
        Turn, in the thread pool) and by the pause's read. Speech during a reply is judged
        by silence alone: what matters there is whether it interrupts, and that is told
        quickly. A turn judged finished may start its reply now, held until it ends."""
        try:
            began = time.monotonic()
            probability = None
            if self.turn_model and not self.barge_in:
                probability = run_blocking(end_of_turn.probability, pcm)
            if probability is None:
                pending.ready.wait()
            elif not pending.ready.wait(max(0.0, began + self.words_wait - time.monotonic())):
                # The read of the pause is late (a long Mandarin turn on a busy machine):
                # the score judges alone rather than keep the caller waiting for words.
                log.info("pause %d in session %s: its words are late, judged by how it sounds",
                         pause_no, self.session_id)
            result = pending.result if pending.ready.is_set() and pending.result else \
                Transcription("")
            if self.barge_in or pending.error is not None or not self.settings.judged:
                silence = self.completion.complete_ms
            else:
                silence = turn_completion.silence_for(
                    probability, result.text, result.language or self._language(), voiced_ms,
                    self.completion)
            log.info("pause %d in session %s judged: %s ms of silence ends it "
                     "(end of turn %.2f, %r)", pause_no, self.session_id, silence,
                     -1 if probability is None else probability, result.text)
            if pause_no != self.pause_no or self.pending is not pending:
                return  # the caller went on meanwhile
            finished = silence == self.completion.complete_ms \
                or silence < self.completion.unfinished_ms
            if finished and self._may_speculate():
                self.speculation = _Speculation(pending, pcm,
                                                self._arrival(self.detector.last_voiced_ms),
                                                silence)
                spawn(self._speculate, self.speculation)
            event = self.detector.decide(pause_no, silence)
            if event is not None:
                self._on_turn_event(event)
        except Exception:  # without a verdict the turn ends after the longest silence
            log.exception("judging a pause in session %s failed", self.session_id)

    def _language(self) -> str | None:
        return self.recognizer.language if self.recognizer is not None else None

    def _while_speaking(self) -> None:
        if self.barge_in and self.detector.voiced_ms >= self.interrupt_ms:
            self._interrupt()
        if self.recognizer is not None and self.pending is None:
            try:  # a streaming recogniser is sent the turn as it grows
                self.recognizer.hear(self.detector.speech())
            except Exception:  # its partial and final reads will tell what went wrong
                log.exception("streaming the turn to the recogniser failed")
        voiced = self.detector.voiced_ms
        if not self.partial_busy and self.pending is None \
                and voiced - self.partial_at_ms >= self.partial_ms \
                and time.monotonic() >= self.partial_rest_until:
            self.partial_at_ms = voiced
            self.partial_busy = True
            spawn(self._partial, self.turn_no, self.detector.speech())

    def _partial(self, turn_no: int, pcm: bytes) -> None:
        try:
            with self.app.app_context():
                # One partial at a time, and none once the speech has paused: the
                # end-of-turn read is then running and should have the CPU to itself.
                if self.pending is not None or not self.asr_lock.acquire(blocking=False):
                    return
                began = time.monotonic()
                try:
                    text = self.recognizer.partial(pcm) if self.recognizer else ""
                finally:
                    self.asr_lock.release()
                    # Partial reads take at most half the time: a read still running
                    # when the speech pauses delays the one that ends the turn, and a
                    # slow engine (Whisper, a busy machine) would otherwise never rest.
                    self.partial_rest_until = 2 * time.monotonic() - began
                text = recorded_speech.polished_text(
                    text, self.recognizer.language if self.recognizer else None,
                    self.options.language)
                # A partial may still land after the speech ended, never after the final.
                if not is_hallucinated(text) and text != self.last_partial \
                        and turn_no == self.turn_no and turn_no > self.closed_turn:
                    self.last_partial = text
                    self.emit("asr_partial", {"text": text, "session_id": self.session_id})
        except Exception:  # a failed partial only loses a preview
            log.exception("partial recognition failed")
        finally:
            self.partial_busy = False

    def _recognise_later(self, pcm: bytes, speculative: bool = False) -> _Pending:
        """Read the turn in the background. One read per call at a time: a read started
        on a pause (speculative) waits for a partial read still running, and is given up
        if the speech has gone on by then, so a slow engine never gathers a queue of
        reads that are out of date before they start."""
        # Moonshine reads side by side (its engine queues them); Whisper is one model in turn.
        exclusive = self.recognizer is None or not self.recognizer.parallel
        pending = _Pending(len(pcm))

        def work() -> None:
            try:
                if exclusive:
                    self.asr_lock.acquire()
                if speculative and pending.stale:
                    return
                with self.app.app_context():
                    assert self.recognizer is not None
                    pending.result = self.recognizer.final(pcm)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                pending.error = exc
            finally:
                if exclusive:
                    self.asr_lock.release()
                pending.finished_at = time.perf_counter()
                pending.ready.set()

        spawn(work)
        return pending

    def _interrupt(self) -> None:
        """The caller really is taking the turn: cut the reply where it was."""
        self.barge_in = False
        if self.reply is not None:
            self.reply.cancel.set()

    def _resume(self) -> None:
        """It was not an interruption after all: the reply carries on."""
        if self.barge_in and self.reply is not None:
            self.reply.output.resume()
        self.barge_in = False

    def _speech_end_time(self) -> float:
        """When the last voiced sample of the turn that just ended reached the server."""
        return self._arrival(self.detector.last_voiced_ms)

    def _may_speculate(self) -> bool:
        """A reply may start in a pause when nothing else is being answered or said."""
        return (self.speculate and self.options.answer and not self.barge_in
                and not self.finishing
                and not self.ended.is_set()
                and (self.reply is None or self.reply.done.is_set()))

    def _drop_speculation(self) -> None:
        if self.speculation is not None:
            self._drop(self.speculation)
            self.speculation = None

    def _drop(self, spec: _Speculation) -> None:
        if spec.reply is not None and not spec.dropped:
            log.info("a reply started in a pause in session %s was dropped unheard",
                     self.session_id)
        spec.drop()

    def _speculate(self, spec: _Speculation) -> None:
        """Start answering what the pause's read heard, held back until the turn ends:
        the reply is then ready to be heard when the end of the turn is confirmed."""
        try:
            spec.pending.ready.wait()
            result = spec.pending.result
            if spec.dropped or spec.pending.error is not None or result is None \
                    or not result.text.strip():
                return
            spec.held = _Held(self.emit)
            spec.reply = self._start_reply(spec.pcm, result, spec.speech_end,
                                           spec.pending, spec.silence_ms, spec.held)
        finally:
            spec.ready.set()

    def _finish_turn(self, event: TurnEvent, speech_end: float, pending: _Pending | None,
                     turn_no: int, spec: _Speculation | None) -> None:
        with self.app.app_context(), self.turn_lock:
            try:
                self._turn_ended(event, speech_end, pending, spec)
                self.closed_turn = max(self.closed_turn, turn_no)
            except Exception as exc:  # a failed turn is told; the call goes on
                log.exception("call turn in session %s failed", self.session_id)
                self._error(exc)
            finally:
                self.finishing -= 1
                db.session.remove()

    def _turn_ended(self, event: TurnEvent, speech_end: float, pending: _Pending | None,
                    spec: _Speculation | None) -> None:
        try:
            if not event.audio:
                self._resume()
                return
            if pending is None or pending.size != len(event.audio):
                pending = self._recognise_later(event.audio)
            pending.ready.wait()
            if pending.error is not None:
                self._resume()
                self._error(pending.error if isinstance(pending.error, Exception)
                            else RuntimeError(str(pending.error)))
                return
            result = pending.result or Transcription("")
            if self.barge_in:
                log.info("speech during a reply in session %s: %r, %d ms voiced",
                         self.session_id, result.text, event.voiced_ms)
            if is_hallucinated(result.text) or (self.barge_in and is_backchannel(result.text)):
                self._resume()
                return
            if not self.options.answer:
                self._learn_language(result)
                self.turns += 1
                self.emit("asr_result", {"text": result.text.strip(),
                                         "session_id": self.session_id})
                return
            self._interrupt()
            if spec is not None and spec.pending is pending and self._adopt(spec, result):
                spec = None
                return
            self._answer(event.audio, result, speech_end, pending, event.silence_ms)
        finally:
            if spec is not None:
                self._drop(spec)

    def _learn_language(self, result: Transcription) -> None:
        if self.detecting and result.language:
            # The first turn told which language this is: from now on its own recogniser.
            self.detecting = False
            self.recognizer = live_recognition.choose(result.language)

    def _adopt(self, spec: _Speculation, result: Transcription) -> bool:
        """The turn ended as it was when its reply started: let that reply be heard."""
        spec.ready.wait()
        if spec.dropped or spec.reply is None or spec.held is None or spec.held.dropped:
            return False
        self._learn_language(result)
        if self.ended.is_set():
            return False
        self.reply = spec.reply
        self.turns += 1
        spec.held.confirm()
        spec.reply.output.resume()
        return True

    def _answer(self, pcm: bytes, result: Transcription, speech_end: float,
                pending: _Pending, silence_ms: int) -> None:
        previous = self.reply
        if previous is not None:
            previous.done.wait()
        # The turn was read by the recogniser in use before what it heard may change it.
        read_by = self.recognizer.name if self.recognizer else None
        self._learn_language(result)
        if self.ended.is_set():
            return
        self.reply = self._start_reply(pcm, result, speech_end, pending, silence_ms,
                                       read_by=read_by)
        self.turns += 1

    def _start_reply(self, pcm: bytes, result: Transcription, speech_end: float,
                     pending: _Pending, silence_ms: int, held: _Held | None = None,
                     read_by: str | None = None) -> _Reply:
        """Answer ``result`` through the chat service; with ``held``, nothing of the
        reply is heard or stored until ``held`` is confirmed."""
        cancel = threading.Event()
        output = ReplyOutput(held or self.emit, self.session_id, self.lead, cancel)
        output.paused = held is not None
        reply = _Reply(output, cancel)
        asr_ms = max(0.0, (pending.finished_at - speech_end) * 1000)
        request = turns.TurnRequest(
            user_id=self.user_id, role_id=self.options.role_id, session_id=self.session_id,
            pcm=pcm, response_type=turns.RESPONSE_VOICE,
            audio_format=self.options.audio_format, recognised=result,
            recognised_by=read_by or (self.recognizer.name if self.recognizer else None),
            started=speech_end,
            timings={"asr_ms": round(asr_ms, 1), "turn_silence_ms": silence_ms},
            store_delivered=True,
            go_ahead=held.wait if held is not None else None)
        spawn(self._reply, request, reply)
        return reply

    def _reply(self, request: turns.TurnRequest, reply: _Reply) -> None:
        with self.app.app_context():
            try:
                done = turns.run_turn(request, reply.output, reply.cancel)
                if not done.get("abandoned"):
                    log.info("call turn in session %s, from the end of speech: %s",
                             self.session_id, done["timings"])
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error event
                db.session.rollback()
                # A reply that was held and dropped is never told, its failure neither.
                self._error(exc, reply.output.emit)
            finally:
                db.session.remove()
                reply.done.set()


def start_call(user_id: int, lang: str, options: CallOptions, emit: Emit) -> Call:
    """Begin a call for a transport; raises ``ApiError`` when it cannot start."""
    call = Call(current_app._get_current_object(), user_id, lang, options, emit)
    call.start()
    return call
