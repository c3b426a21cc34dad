"""Real-time chat over Socket.IO (``/chat``) against the web process under eventlet, in the
embedded mode (SQLite, no Redis, one process), with the local engines.

1. Time to first audio of a voice-to-voice turn (Whisper → scripted LLM at 0.03 s a
   piece → Piper), client emit to first ``tts_audio_chunk``. Target ≤ 1.0 s.
2. The same turn done naively (whole reply, whole synthesis, then send) against the
   streamed pipeline, both in this process with the same engines. Target ratio ≥ 3×.
3. The server's own delivery delay (chunk made → chunk received) at 50 concurrent
   conversations with engines that cost nearly nothing (eSpeak NG, LLM without delay).
   Target p95 ≤ 10 ms.
4. How many concurrent text conversations keep first audio under 1 s.
5. How many concurrent voice conversations keep first audio under 1.5 s.
6. How soon an interrupt stops the reply's audio: ``interrupt`` emitted while the reply
   plays → its ``tts_audio_chunk_end`` received (Piper, scripted LLM at 0.03 s a piece).

Targets are printed beside the figures, never asserted. Every figure says how many
samples it has; the last line is one JSON object with all of them.
"""

from __future__ import annotations

import asyncio
import base64
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.figures import publish
from bench.server import Server, register
from bench.stats import summary
from tests.helpers.paths import MODELS

UTTERANCE = "Could you tell me a little about the history of this old city?"
TEXT_MESSAGE = "I would like to visit the old harbour with my friends this weekend."
ROLE = {"name": "Ada", "description": "A patient teacher who explains things simply.",
        "gender": "女", "age": 36}
PIPER_VOICE = "piper:en_US-joe-medium"
ESPEAK_VOICE = "espeak:en-us"
LLM_DELAY = 0.03
TARGETS = {"voice_first_audio_ms": 1000.0, "naive_over_streaming": 3.0,
           "delivery_p95_ms": 10.0, "text_ramp_p95_ms": 1000.0, "voice_ramp_p95_ms": 1500.0,
           "interrupt_p95_ms": 800.0}
VOICE_WARM_UP_TURNS, VOICE_TURNS = 2, 10
IN_PROCESS_RUNS = 3
DELIVERY_CLIENTS, DELIVERY_ROUNDS = 50, 3
RAMP = (1, 2, 4, 8, 12, 16, 24, 32)
RAMP_ROUNDS = 2
TEXT_RAMP_STOP_MS, VOICE_RAMP_STOP_MS = 3000.0, 4000.0
INTERRUPT_WARM_UP_RUNS, INTERRUPT_RUNS = 1, 12
LONG_ANSWER = TEXT_MESSAGE + " Please answer at length."
TURN_TIMEOUT = 180.0
SERVER_TIMINGS = ("asr_ms", "llm_first_token_ms", "first_audio_ms", "total_ms")


def embedded_env(llm_delay: float, default_voice: str) -> dict[str, str]:
    """Server settings for the embedded mode, whatever the calling shell has set."""
    return {"SCRIPTED_LLM_DELAY": str(llm_delay), "DEFAULT_VOICE_TYPE": default_voice,
            "LLM_ENGINE": "scripted", "STT_ENGINE": "whisper", "WARM_UP": "true",
            "REDIS_URL": "", "SOCKETIO_MESSAGE_QUEUE": "", "CELERY_BROKER_URL": "",
            "S3_BUCKET": "", "DASHSCOPE_API_KEY": "", "LLM_BASE_URL": "", "LOG_LEVEL": "INFO"}


def start_server(work: Path, llm_delay: float, default_voice: str) -> Server:
    """A fresh web process with its own SQLite database, returned once its engines are warm."""
    work.mkdir(parents=True, exist_ok=True)
    server = Server(work, f"sqlite:///{work / 'bench.db'}", warm=True,
                    **embedded_env(llm_delay, default_voice))
    server.migrate()
    return server.start()


def wait_for_idle_machine() -> None:
    """Wait (up to 40 minutes) while a test run is active, so neither distorts the other."""
    deadline = time.time() + 40 * 60
    while time.time() < deadline:
        found = subprocess.run(["pgrep", "-f", "pytest"], capture_output=True, text=True)
        if not found.stdout.strip():
            return
        print("a pytest run is active; waiting 60 s", flush=True)
        time.sleep(60)


def utterance_wav() -> tuple[bytes, float]:
    """The spoken question as WAV (made by Piper, so every run hears the same clip)."""
    from webapp.app.audio import encode
    from webapp.app.providers.base import SynthesisOptions
    from webapp.app.providers.tts.piper import PiperTextToSpeech

    spoken = PiperTextToSpeech({}).synthesize(UTTERANCE, SynthesisOptions())
    duration = len(spoken.pcm) / 2 / spoken.sample_rate
    return encode(spoken.pcm, spoken.sample_rate, "wav"), duration


def add_participant(url: str, voice_type: str) -> tuple[str, int]:
    """A new user with a role of its own; returns the access token and the role id."""
    data = register(url, "bench_rt_" + uuid.uuid4().hex[:12])
    token = data["access_token"]
    response = requests.post(f"{url}/api/role/add", json={**ROLE, "voice_type": voice_type},
                             headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return token, response.json()["data"]["role_id"]


@dataclass
class TurnResult:
    """What one client saw of one turn (times in ms from its emit)."""

    first_audio_ms: float | None = None
    delivery_ms: list[float] = field(default_factory=list)
    chunks_without_sent_at: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class Conversation:
    """One user talking to its own role over ``/chat``; times what it hears as it arrives."""

    def __init__(self, url: str, token: str, role_id: int) -> None:
        import socketio

        self.url, self.token, self.role_id = url, token, role_id
        self.client = socketio.AsyncClient(reconnection=False)
        self.joined = asyncio.Event()
        self.done = asyncio.Event()
        self.result = TurnResult()
        self.started = 0.0
        handlers: dict[str, Callable[[Any], None]] = {
            "joined": lambda _: self.joined.set(), "tts_audio_chunk": self._chunk,
            "response_complete": self._complete, "error": self._error}
        for event, handler in handlers.items():
            self.client.on(event, handler, namespace="/chat")

    def _chunk(self, data: dict[str, Any]) -> None:
        received = time.time()
        elapsed = (time.perf_counter() - self.started) * 1000
        if self.result.first_audio_ms is None:
            self.result.first_audio_ms = elapsed
        if "sent_at" in data:
            self.result.delivery_ms.append((received - float(data["sent_at"])) * 1000)
        else:
            self.result.chunks_without_sent_at += 1

    def _complete(self, data: dict[str, Any]) -> None:
        self.result.timings = dict(data.get("timings") or {})
        self.done.set()

    def _error(self, data: Any) -> None:
        self.result.error = str(data)
        self.done.set()

    async def open(self) -> None:
        """Connect over WebSocket only and join the role, as the browser console does."""
        await self.client.connect(self.url, namespaces=["/chat"], auth={"token": self.token},
                                  transports=["websocket"], wait_timeout=20)
        await self.client.emit("join", {"role_id": self.role_id, "audio_format": "mp3"},
                               namespace="/chat")
        await asyncio.wait_for(self.joined.wait(), 30)

    async def turn(self, event: str, payload: dict[str, Any]) -> TurnResult:
        """Send one message and wait for the whole reply."""
        self.result, self.done = TurnResult(), asyncio.Event()
        self.started = time.perf_counter()
        await self.client.emit(event, {"role_id": self.role_id, **payload}, namespace="/chat")
        try:
            await asyncio.wait_for(self.done.wait(), TURN_TIMEOUT)
        except TimeoutError:
            self.result.error = f"no response_complete within {TURN_TIMEOUT:g} s"
        return self.result

    async def close(self) -> None:
        await self.client.disconnect()


class InterruptedConversation(Conversation):
    """A conversation that interrupts its reply as soon as the reply's audio starts, and
    times what it still receives after that."""

    def __init__(self, url: str, token: str, role_id: int) -> None:
        super().__init__(url, token, role_id)
        self.first_chunk = asyncio.Event()
        self.chunks: list[float] = []
        self.ended_at: float | None = None
        self.end_reason: str | None = None
        self.client.on("tts_audio_chunk", self._chunk_arrived, namespace="/chat")
        self.client.on("tts_audio_chunk_end", self._end_arrived, namespace="/chat")

    def _chunk_arrived(self, data: dict[str, Any]) -> None:
        self.chunks.append(time.perf_counter())
        self.first_chunk.set()

    def _end_arrived(self, data: dict[str, Any]) -> None:
        self.ended_at = time.perf_counter()
        self.end_reason = data.get("reason")

    async def interrupted_turn(self) -> dict[str, Any]:
        """Ask for a long spoken reply, interrupt it at its first audio chunk, and wait
        for the turn's end. Times are ms from the ``interrupt`` emit."""
        self.result, self.done = TurnResult(), asyncio.Event()
        self.first_chunk, self.chunks = asyncio.Event(), []
        self.ended_at = self.end_reason = None
        await self.client.emit("chat_message", {
            "role_id": self.role_id, "message": LONG_ANSWER, "type": "text",
            "response_type": 1}, namespace="/chat")
        try:
            await asyncio.wait_for(self.first_chunk.wait(), TURN_TIMEOUT)
            sent = time.perf_counter()
            await self.client.emit("interrupt", {}, namespace="/chat")
            await asyncio.wait_for(self.done.wait(), TURN_TIMEOUT)
        except TimeoutError:
            return {"error": f"no reply audio or end within {TURN_TIMEOUT:g} s"}
        after = [t for t in self.chunks if t > sent]
        return {"error": self.result.error,
                "interrupted": self.end_reason == "interrupted",
                "end_ms": None if self.ended_at is None else (self.ended_at - sent) * 1000,
                "last_chunk_ms": (max(after) - sent) * 1000 if after else None,
                "chunks_after": len(after)}


async def open_conversations(url: str, voice_type: str, count: int) -> list[Conversation]:
    """Register ``count`` users (one role each), then connect and join them all."""
    people = [add_participant(url, voice_type) for _ in range(count)]
    conversations = [Conversation(url, token, role_id) for token, role_id in people]
    await asyncio.gather(*(c.open() for c in conversations))
    return conversations


async def all_at_once(group: Sequence[Conversation], event: str,
                      payload: dict[str, Any]) -> list[TurnResult]:
    """Every conversation of ``group`` sends its message at the same moment."""
    results = await asyncio.gather(*(c.turn(event, payload) for c in group))
    await asyncio.sleep(0.5)
    return list(results)


def median_timings(results: Sequence[TurnResult]) -> dict[str, float]:
    """The server's own per-turn timings (from ``response_complete``), median per step."""
    out = {}
    for name in SERVER_TIMINGS:
        values = [r.timings[name] for r in results if name in r.timings]
        if values:
            out[name] = round(statistics.median(values), 1)
    return out


def outside_pipeline(results: Sequence[TurnResult]) -> list[float]:
    """Client's first audio minus the server's ``first_audio_ms``: the time a turn spent
    before its pipeline started (socket, handler, database) plus encoding and delivery of
    the first chunk. Queueing in front of the turn shows up here, not in server timings."""
    return [r.first_audio_ms - r.timings["first_audio_ms"] for r in results
            if r.first_audio_ms is not None and "first_audio_ms" in r.timings]


def first_audio(results: Sequence[TurnResult]) -> tuple[list[float], int]:
    """Times to first audio of the turns that had one, and how many failed."""
    values = [r.first_audio_ms for r in results
              if r.first_audio_ms is not None and r.error is None]
    return values, len(results) - len(values)


async def voice_turns(conversation: Conversation, wav_b64: str) -> dict[str, Any]:
    """Section 1: sequential voice turns after a few unmeasured ones."""
    payload = {"audio": wav_b64, "format": "wav"}
    for _ in range(VOICE_WARM_UP_TURNS):
        await conversation.turn("voice_message", payload)
    results = [await conversation.turn("voice_message", payload) for _ in range(VOICE_TURNS)]
    values, errors = first_audio(results)
    return {**summary(values), "errors": errors, "server_timings_ms": median_timings(results),
            "outside_pipeline": summary(outside_pipeline(results) or [float("nan")])}


async def ramp(conversations: Sequence[Conversation], event: str, payload: dict[str, Any],
               stop_ms: float) -> list[dict[str, Any]]:
    """Sections 4 and 5: N conversations at once, N growing until p95 passes ``stop_ms``."""
    rows = []
    for n in RAMP:
        if n > len(conversations):
            break
        results: list[TurnResult] = []
        for _ in range(RAMP_ROUNDS):
            results += await all_at_once(conversations[:n], event, payload)
        values, errors = first_audio(results)
        row = {"clients": n, **summary(values or [float("nan")]), "errors": errors,
               "server_timings_ms": median_timings(results),
               "outside_pipeline": summary(outside_pipeline(results) or [float("nan")])}
        rows.append(row)
        if errors or row["p95_ms"] > stop_ms:
            break
    return rows


def largest_within(rows: Sequence[dict[str, Any]], limit_ms: float) -> int:
    """The largest N whose p95 stays under the limit with no failed turn (0 when none)."""
    good = [r["clients"] for r in rows if r["p95_ms"] < limit_ms and not r["errors"]]
    return max(good, default=0)


async def piper_sections(url: str, wav_b64: str) -> dict[str, Any]:
    """Sections 1, 4 and 5, on one server with Piper voices and the paced scripted LLM."""
    conversations = await open_conversations(url, PIPER_VOICE, max(RAMP))
    try:
        voice = await voice_turns(conversations[0], wav_b64)
        text_rows = await ramp(conversations, "chat_message",
                               {"message": TEXT_MESSAGE, "type": "text", "response_type": 1},
                               TEXT_RAMP_STOP_MS)
        voice_rows = await ramp(conversations, "voice_message",
                                {"audio": wav_b64, "format": "wav"}, VOICE_RAMP_STOP_MS)
    finally:
        await asyncio.gather(*(c.close() for c in conversations), return_exceptions=True)
    return {"voice_turn": voice, "text_ramp": text_rows, "voice_ramp": voice_rows}


async def loop_lag(lags: list[float], stop: asyncio.Event, tick: float = 0.005) -> None:
    """How late this process's own loop wakes up: the share of a delivery delay that is the
    receiving side's, not the server's."""
    while not stop.is_set():
        due = time.perf_counter() + tick
        await asyncio.sleep(tick)
        lags.append(max(0.0, time.perf_counter() - due) * 1000)


async def delivery_section(url: str) -> dict[str, Any]:
    """Section 3: 50 conversations in this one loop, all sending at once, a few rounds."""
    conversations = await open_conversations(url, ESPEAK_VOICE, DELIVERY_CLIENTS)
    payload = {"message": TEXT_MESSAGE, "type": "text", "response_type": 1}
    lags: list[float] = []
    stop = asyncio.Event()
    try:
        await all_at_once(conversations, "chat_message", payload)
        monitor = asyncio.create_task(loop_lag(lags, stop))
        results: list[TurnResult] = []
        for _ in range(DELIVERY_ROUNDS):
            results += await all_at_once(conversations, "chat_message", payload)
        stop.set()
        await monitor
    finally:
        await asyncio.gather(*(c.close() for c in conversations), return_exceptions=True)
    delays = [d for r in results for d in r.delivery_ms]
    values, errors = first_audio(results)
    row: dict[str, Any] = {"turns": len(results), "errors": errors,
                           "first_audio": summary(values or [float("nan")]),
                           "server_timings_ms": median_timings(results),
                           "outside_pipeline": summary(outside_pipeline(results)
                                                       or [float("nan")]),
                           "client_loop_lag": summary(lags or [float("nan")]),
                           "chunks_without_sent_at": sum(r.chunks_without_sent_at
                                                         for r in results)}
    if delays:
        row.update(method="receive time - sent_at", **summary(delays))
    else:
        row.update(method="no sent_at in chunks: client first audio - server first_audio_ms",
                   **row["outside_pipeline"])
    return row


async def interrupt_section(url: str) -> dict[str, Any]:
    """Section 6: one conversation interrupts its reply at the first audio chunk, again
    and again, after an unmeasured run."""
    token, role_id = add_participant(url, PIPER_VOICE)
    conversation = InterruptedConversation(url, token, role_id)
    await conversation.open()
    try:
        for _ in range(INTERRUPT_WARM_UP_RUNS):
            await conversation.interrupted_turn()
        runs = [await conversation.interrupted_turn() for _ in range(INTERRUPT_RUNS)]
    finally:
        await conversation.close()
    stopped = [r for r in runs if r.get("interrupted") and r.get("end_ms") is not None]
    return {"runs": len(runs), "errors": sum(1 for r in runs if r.get("error")),
            "ended_before_interrupt": sum(1 for r in runs
                                          if not r.get("error") and not r.get("interrupted")),
            **summary([r["end_ms"] for r in stopped] or [float("nan")]),
            "runs_with_chunks_after": sum(1 for r in stopped if r["chunks_after"]),
            "chunks_after_max": max((r["chunks_after"] for r in stopped), default=0),
            "last_chunk_after_max_ms": round(max(
                (r["last_chunk_ms"] for r in stopped if r["last_chunk_ms"] is not None),
                default=0.0), 2)}


def in_process_comparison(work: Path, wav: bytes) -> dict[str, Any]:
    """Section 2: naive (whole reply, whole synthesis, encode) against the streamed pipeline,
    both in this process with the same engines and LLM pace, so the ratio is like for like."""
    from webapp.app import audio, create_app
    from webapp.app.models import Role
    from webapp.app.providers.base import ChatOptions, SynthesisOptions
    from webapp.app.sentences import SentenceCutter
    from webapp.app.services.conversation.turns import persona_prompt
    from webapp.app.services.speech.reply_stream import stream_reply

    work.mkdir(parents=True, exist_ok=True)
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.db'}",
                      "INSTANCE_DIR": work, "STORAGE_DIR": work / "storage",
                      "TMP_DIR": work / "tmp", "MODEL_CACHE_DIR": MODELS,
                      "WHISPER_MODEL_DIR": str(MODELS / "whisper-base"),
                      "SCRIPTED_LLM_DELAY": LLM_DELAY, "LLM_ENGINE": "scripted",
                      "STT_ENGINE": "whisper", "SOCKETIO_ASYNC_MODE": "threading",
                      "SOCKETIO_MESSAGE_QUEUE": None, "LOG_LEVEL": "WARNING"})
    with app.app_context():
        providers = app.extensions["providers"]
        providers.warm_up()
        stt, llm, tts = providers.stt(), providers.llm(), providers.tts("piper")
        options = ChatOptions(persona=ROLE["name"])
        system = persona_prompt(Role(**ROLE), "")

        def messages(said: str) -> list[dict[str, str]]:
            return [{"role": "system", "content": system}, {"role": "user", "content": said}]

        def naive() -> tuple[float, float, str, str]:
            """Milliseconds to first audio, of which ASR; what was heard; the reply."""
            started = time.perf_counter()
            said = stt.transcribe(wav, None, {}).text.strip()
            asr = (time.perf_counter() - started) * 1000
            whole = llm.chat(messages(said), options)
            spoken = tts.synthesize(whole, SynthesisOptions())
            audio.encode(spoken.pcm, spoken.sample_rate, "mp3")
            return (time.perf_counter() - started) * 1000, asr, said, whole

        def streamed() -> tuple[float, float]:
            """Milliseconds to the first mp3 bytes of the first ``on_audio``, of which ASR."""
            started = time.perf_counter()
            first: list[float] = []
            encoders: list[Any] = []

            def on_audio(chunk: Any) -> None:
                if not encoders:
                    encoders.append(audio.StreamEncoder("mp3", chunk.sample_rate))
                if encoders[0].write(chunk.pcm) and not first:
                    first.append((time.perf_counter() - started) * 1000)

            said = stt.transcribe(wav, None, {}).text.strip()
            asr = (time.perf_counter() - started) * 1000
            stream_reply(llm, messages(said), tts, SynthesisOptions(), chat_options=options,
                         on_audio=on_audio)
            return first[0], asr

        _, _, transcript, reply = naive()
        streamed()
        naive_runs, streamed_runs = [], []
        for _ in range(IN_PROCESS_RUNS):
            naive_runs.append(naive()[:2])
            streamed_runs.append(streamed())
    cutter = SentenceCutter()
    pieces = cutter.feed(reply) + cutter.flush()
    naive_ms = [total for total, _ in naive_runs]
    streamed_ms = [total for total, _ in streamed_runs]
    after_naive = statistics.median(total - asr for total, asr in naive_runs)
    after_streamed = statistics.median(total - asr for total, asr in streamed_runs)
    return {"transcript": transcript, "reply_chars": len(reply), "reply_pieces": len(pieces),
            "reply_sentences": sum(1 for p in pieces if p.rstrip("”’\"')").endswith(
                (".", "!", "?", "…"))),
            "naive": summary(naive_ms), "streaming": summary(streamed_ms),
            "asr_ms": round(statistics.median(asr for _, asr in naive_runs + streamed_runs), 1),
            "ratio": round(statistics.median(naive_ms) / statistics.median(streamed_ms), 2),
            "ratio_after_asr": round(after_naive / after_streamed, 2)}


def verdict(value: float, target: float, at_most: bool = True) -> str:
    """Targets are reported, never asserted: a benchmark that fails hides its figures."""
    met = value <= target if at_most else value >= target
    return "met" if met else "NOT met"


def print_voice_turn(row: dict[str, Any], clip_s: float) -> None:
    """Section 1 with the server's own step timings, so the slow step is visible."""
    target = TARGETS["voice_first_audio_ms"]
    print(f"\n1. Voice-to-voice time to first audio (Whisper → scripted LLM {LLM_DELAY} s/piece "
          f"→ Piper), {clip_s:.2f} s clip, {row['n']} sequential turns after "
          f"{VOICE_WARM_UP_TURNS} warm-up")
    print(f"   {'median':>10} {'p95':>10} {'max':>10} {'errors':>7}  target")
    print(f"   {row['median_ms']:>8.0f}ms {row['p95_ms']:>8.0f}ms {row['max_ms']:>8.0f}ms "
          f"{row['errors']:>7}  median ≤ {target:.0f} ms: "
          f"{verdict(row['median_ms'], target)}")
    print(f"   server's own timings (median, ms from the turn's start): "
          f"{row['server_timings_ms']}")
    print(f"   outside the pipeline's timing (client first audio − server first_audio_ms): "
          f"median {row['outside_pipeline']['median_ms']:.0f} ms, "
          f"max {row['outside_pipeline']['max_ms']:.0f} ms")


def print_comparison(row: dict[str, Any]) -> None:
    """Section 2, with the ratio both with and without the ASR both ways share."""
    target = TARGETS["naive_over_streaming"]
    print(f"\n2. Naive against streamed, in this process (same Whisper, scripted LLM "
          f"{LLM_DELAY} s/piece, Piper, mp3), {row['naive']['n']} runs each after 1 warm-up")
    print(f"   heard: {row['transcript']!r}; reply {row['reply_chars']} characters, "
          f"{row['reply_sentences']} sentences ({row['reply_pieces']} spoken pieces)")
    print(f"   {'way':40} {'median':>10} {'max':>10}")
    for name, label in (("naive", "naive: whole reply → whole synthesis → mp3"),
                        ("streaming", "streamed: first on_audio, encoded to mp3")):
        print(f"   {label:40} {row[name]['median_ms']:>8.0f}ms {row[name]['max_ms']:>8.0f}ms")
    print(f"   ratio naive/streaming: {row['ratio']:.2f}×  (target ≥ {target:g}× for a "
          f"four-sentence reply: {verdict(row['ratio'], target, at_most=False)})")
    print(f"   both include the same ASR (median {row['asr_ms']:.0f} ms); after it, "
          f"naive/streaming = {row['ratio_after_asr']:.2f}×")


def print_delivery(row: dict[str, Any]) -> None:
    """Section 3, beside the receiving loop's own lateness, which is not the server's."""
    target = TARGETS["delivery_p95_ms"]
    print(f"\n3. Server's delivery delay, chunk made → chunk received, eSpeak NG, LLM without "
          f"delay, {DELIVERY_CLIENTS} concurrent conversations (one asyncio loop), "
          f"{DELIVERY_ROUNDS} rounds after 1 warm-up")
    print(f"   method: {row['method']}; {row['n']} chunks from {row['turns']} turns, "
          f"{row['errors']} failed turns, {row['chunks_without_sent_at']} chunks without sent_at")
    print(f"   {'median':>10} {'p95':>10} {'max':>10}  target")
    print(f"   {row['median_ms']:>8.1f}ms {row['p95_ms']:>8.1f}ms {row['max_ms']:>8.1f}ms  "
          f"p95 ≤ {target:g} ms: {verdict(row['p95_ms'], target)}")
    lag = row["client_loop_lag"]
    print(f"   receiving side: this process's own loop woke late by median "
          f"{lag['median_ms']:.1f} ms, p95 {lag['p95_ms']:.1f} ms, max {lag['max_ms']:.1f} ms "
          f"({lag['n']} ticks of 5 ms)")
    fa, outside = row["first_audio"], row["outside_pipeline"]
    print(f"   for context, first audio at this load: median {fa['median_ms']:.0f} ms, "
          f"p95 {fa['p95_ms']:.0f} ms; of it outside the pipeline's timing: median "
          f"{outside['median_ms']:.0f} ms, p95 {outside['p95_ms']:.0f} ms; server timings "
          f"{row['server_timings_ms']}")


def print_ramp(title: str, rows: Sequence[dict[str, Any]], limit_ms: float,
               stop_ms: float) -> int:
    """Sections 4 and 5; returns the largest N within the limit."""
    print(f"\n{title}")
    print(f"   {RAMP_ROUNDS} rounds per N (samples = 2N); ramp stops once p95 > "
          f"{stop_ms / 1000:g} s")
    print("   'outside' = client first audio − server first_audio_ms (time before the pipeline")
    print("   started, plus first-chunk encoding and delivery), median / max")
    print(f"   {'N':>4} {'n':>4} {'median':>10} {'p95':>10} {'max':>10} {'errors':>6}  "
          f"{'p95 < ' + format(limit_ms / 1000, 'g') + ' s':<12} {'outside':>15}  "
          f"server medians (ms)")
    for r in rows:
        ok = "yes" if r["p95_ms"] < limit_ms and not r["errors"] else "no"
        timings = " ".join(f"{k.removesuffix('_ms')}={v:.0f}"
                           for k, v in r["server_timings_ms"].items())
        outside = f"{r['outside_pipeline']['median_ms']:.0f}/{r['outside_pipeline']['max_ms']:.0f}"
        print(f"   {r['clients']:>4} {r['n']:>4} {r['median_ms']:>8.0f}ms {r['p95_ms']:>8.0f}ms "
              f"{r['max_ms']:>8.0f}ms {r['errors']:>6}  {ok:<12} {outside + 'ms':>15}  "
              f"{timings}")
    best = largest_within(rows, limit_ms)
    print(f"   largest N with p95 < {limit_ms / 1000:g} s: {best}")
    return best


def print_interrupt(row: dict[str, Any]) -> None:
    """Section 6, with what still arrived after the interrupt was sent."""
    target = TARGETS["interrupt_p95_ms"]
    print(f"\n6. Interrupt while the reply plays (Piper, scripted LLM {LLM_DELAY} s/piece): "
          f"emit interrupt at the first tts_audio_chunk → tts_audio_chunk_end, {row['n']} of "
          f"{row['runs']} runs after {INTERRUPT_WARM_UP_RUNS} warm-up")
    print(f"   {'median':>10} {'p95':>10} {'max':>10} {'errors':>7}  target")
    print(f"   {row['median_ms']:>8.0f}ms {row['p95_ms']:>8.0f}ms {row['max_ms']:>8.0f}ms "
          f"{row['errors']:>7}  p95 ≤ {target:.0f} ms: {verdict(row['p95_ms'], target)}")
    print(f"   audio chunks still received after the interrupt: in "
          f"{row['runs_with_chunks_after']} runs, at most {row['chunks_after_max']} "
          f"(the last {row['last_chunk_after_max_ms']:.0f} ms after it); replies that had "
          f"ended before it: {row['ended_before_interrupt']}")


def server_problems(log: Path) -> dict[str, int]:
    """Tracebacks and error lines the web process logged during a section."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return {"tracebacks": text.count("Traceback"),
            "error_lines": sum(1 for line in text.splitlines() if " ERROR " in line)}


def main() -> None:
    """In-process comparison first (no server competing for the cores), then one server
    per set of settings; tables are printed together at the end, then the JSON line."""
    wait_for_idle_machine()
    wall = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-realtime-"))
    wav, clip_s = utterance_wav()
    wav_b64 = base64.b64encode(wav).decode("ascii")

    print("section 2: in-process comparison", flush=True)
    comparison = in_process_comparison(work / "inprocess", wav)

    wait_for_idle_machine()
    print("sections 1, 4, 5: Piper server", flush=True)
    server = start_server(work / "piper", LLM_DELAY, PIPER_VOICE)
    try:
        piper = asyncio.run(piper_sections(server.url, wav_b64))
        print("section 6: interrupts, same server", flush=True)
        interrupt = asyncio.run(interrupt_section(server.url))
    finally:
        server.stop()
    piper_log = server_problems(server.log)

    wait_for_idle_machine()
    print("section 3: eSpeak NG server", flush=True)
    server = start_server(work / "espeak", 0.0, ESPEAK_VOICE)
    try:
        delivery = asyncio.run(delivery_section(server.url))
    finally:
        server.stop()
    espeak_log = server_problems(server.log)

    print_voice_turn(piper["voice_turn"], clip_s)
    print_comparison(comparison)
    print_delivery(delivery)
    text_best = print_ramp(
        f"4. Concurrent text conversations (Piper, scripted LLM {LLM_DELAY} s/piece): "
        f"emit → first tts_audio_chunk", piper["text_ramp"], TARGETS["text_ramp_p95_ms"],
        TEXT_RAMP_STOP_MS)
    voice_best = print_ramp(
        f"5. Concurrent voice conversations ({clip_s:.2f} s clip, Whisper → scripted LLM → "
        f"Piper): emit → first tts_audio_chunk", piper["voice_ramp"],
        TARGETS["voice_ramp_p95_ms"], VOICE_RAMP_STOP_MS)
    print_interrupt(interrupt)
    elapsed = time.perf_counter() - wall
    print(f"\nserver logs: {work}/piper/server.log {piper_log}, "
          f"{work}/espeak/server.log {espeak_log}")
    print(f"run time: {elapsed:.0f} s")
    publish("realtime", {
        "bench": "realtime", "mode": "embedded (SQLite, no Redis, one web process)",
        "clip_seconds": round(clip_s, 2), "targets": TARGETS,
        "voice_turn": piper["voice_turn"], "naive_vs_streaming": comparison,
        "delivery_50_clients": delivery, "text_ramp": piper["text_ramp"],
        "text_max_clients_p95_under_1s": text_best, "voice_ramp": piper["voice_ramp"],
        "voice_max_clients_p95_under_1_5s": voice_best, "interrupt": interrupt,
        "server_log_problems": {"piper": piper_log, "espeak": espeak_log},
        "run_seconds": round(elapsed, 1)})


if __name__ == "__main__":
    main()
