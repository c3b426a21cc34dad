"""Capacity of the production shape: how many callers a web process carries.

Started here: Redis (a server of its own), S3 (moto), the fake DashScope with the real
service's timings (``asr_delay`` 0.15 s from audio to Paraformer's result, CosyVoice's
first audio after 0.2 s and then at real-time pace, Qwen at 0.02 s a piece), two web
processes under eventlet behind the same Redis, and a Celery worker; MariaDB is the
machine's, with a database of the benchmark's own (``BENCH_SCALE_DATABASE``,
``tingshuo_scale``; the server is ``BENCH_MYSQL_SERVER``).

Every caller is a Socket.IO client that speaks a phrase of its own at real-time pace in
40 ms pieces (then silence, as a microphone sends it) and waits for the spoken answer,
``BENCH_SCALE_TURNS`` (2) times a call. First audio is counted from the moment the last
voiced sample was sent. Beside the calls, ``BENCH_SCALE_CHATS`` (1) typed conversations
per web process take turns the whole time.

The ramp: one call alone first (its first-audio p95 is the reference), then
``BENCH_SCALE_STEPS`` (``1,5,10,20,30,40``) calls at once *per web process*, until
first-audio p95 passes 1.5x the reference, a turn fails, or the ramp has run for
``BENCH_SCALE_SECONDS`` (120; a step under way finishes). Then the same with local
engines (Moonshine, Piper, scripted LLM) and ``BENCH_SCALE_LOCAL_STEPS`` (``1,2,3,4``);
``BENCH_SCALE_ENGINES`` (``dashscope,local``) picks the ramps to run.
``BENCH_SCALE_WHOLE_RAMP=1`` runs every step even past the limit (the capacity is still
the last step before it), to see the shape on a busy machine.

Printed per step: first audio p50/p95, errors, transcripts that were not the caller's
own phrase, the server's own timings from the end of speech (recognition, first LLM
token, first audio), where else time went (event-loop lag and database + storage, from
``/api/health`` polled every 0.25 s; a Redis round trip), CPU seconds per call-second and
resident memory per call of the web processes with their engine processes, and the load
average. The last line is JSON.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.figures import publish
from bench.server import Server, mysql_url, register
from bench.stats import percentile
from tests.fakes.fake_dashscope import start_fake_dashscope
from tests.helpers.processes import celery_worker, start_all
from tests.helpers.services import MotoS3, RedisServer, new_bucket
from tests.helpers.sounds import RATE, speech

STEPS = [int(n) for n in os.environ.get("BENCH_SCALE_STEPS", "1,5,10,20,30,40").split(",")]
LOCAL_STEPS = [int(n) for n in os.environ.get("BENCH_SCALE_LOCAL_STEPS", "1,2,3,4").split(",")]
TURNS = int(os.environ.get("BENCH_SCALE_TURNS", "2"))
CHATS = int(os.environ.get("BENCH_SCALE_CHATS", "1"))
SECONDS = float(os.environ.get("BENCH_SCALE_SECONDS", "120"))
ENGINES = os.environ.get("BENCH_SCALE_ENGINES", "dashscope,local").split(",")
WHOLE_RAMP = os.environ.get("BENCH_SCALE_WHOLE_RAMP", "") == "1"
LIMIT = 1.5
PIECE_MS = 40
PIECE_BYTES = RATE * 2 * PIECE_MS // 1000
TURN_TIMEOUT = 60.0
PHRASES = ("Could you tell me a little about the history of this old city?",
           "What is the weather usually like here in the spring?",
           "Which museum would you visit first on a rainy day?",
           "How long does it take to walk down to the harbour?",
           "Is there a good place nearby for a quiet dinner tonight?",
           "What do people here usually eat for breakfast?")
ENGINE_SETTINGS = {
    "dashscope": {"STT_ENGINE": "paraformer", "LLM_ENGINE": "qwen",
                  "DEFAULT_VOICE_TYPE": "dashscope:longxiaochun_v2"},
    "local": {"STT_ENGINE": "whisper", "LLM_ENGINE": "scripted", "SCRIPTED_LLM_DELAY": "0.03",
              "DEFAULT_VOICE_TYPE": "piper:en_US-joe-medium"},
}


@dataclass
class Turn:
    first_audio_ms: float | None = None
    heard: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


class CallClient:
    """One call: a microphone task sending 40 ms every 40 ms, and the turns it spoke."""

    def __init__(self, url: str, token: str, role_id: int, phrase: str, pcm: bytes) -> None:
        self.url, self.token, self.role_id = url, token, role_id
        self.phrase, self.pcm = phrase, pcm
        self.turns: list[Turn] = []
        self.queued = bytearray()
        self.sent = 0
        self.marks: list[tuple[int, asyncio.Future[float]]] = []
        self.waiters: dict[str, asyncio.Future[Any]] = {}

    def _handler(self, name: str) -> Any:
        def handle(data: Any = None) -> None:
            turn = self.turns[-1] if self.turns else None
            if name == "asr_result" and turn is not None:
                turn.heard = data.get("text")
            waiter = self.waiters.get(name)
            if waiter is not None and not waiter.done():
                waiter.set_result((time.perf_counter(), data))
        return handle

    async def _wait(self, names: tuple[str, ...], timeout: float) -> tuple[str, float, Any]:
        loop = asyncio.get_running_loop()
        futures = {name: loop.create_future() for name in (*names, "error")}
        self.waiters = futures
        done, _ = await asyncio.wait(futures.values(), timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        self.waiters = {}
        if not done:
            raise TimeoutError(f"none of {names} within {timeout:g} s")
        name = next(n for n, f in futures.items() if f in done)
        at, data = futures[name].result()
        return name, at, data

    async def _microphone(self, sio: Any, stop: asyncio.Event) -> None:
        began, n = time.perf_counter(), 0
        while not stop.is_set():
            piece = bytes(self.queued[:PIECE_BYTES])
            del self.queued[:PIECE_BYTES]
            await sio.emit("call_audio", piece + b"\0" * (PIECE_BYTES - len(piece)),
                           namespace="/chat")
            now = time.perf_counter()
            before, self.sent = self.sent, self.sent + PIECE_BYTES
            for end, done in self.marks:
                if before < end <= self.sent and not done.done():
                    done.set_result(now - (self.sent - end) / 2 / RATE)
            n += 1
            await asyncio.sleep(max(0.0, began + n * PIECE_MS / 1000 - time.perf_counter()))

    async def run(self, start_delay: float) -> None:
        import socketio

        await asyncio.sleep(start_delay)
        sio = socketio.AsyncClient(reconnection=False)
        for name in ("call_started", "call_ended", "asr_result", "tts_audio_chunk",
                     "response_complete", "error"):
            sio.on(name, self._handler(name), namespace="/chat")
        stop = asyncio.Event()
        try:
            await sio.connect(self.url, namespaces=["/chat"], auth={"token": self.token},
                              transports=["websocket"], wait_timeout=30)
            waiting = asyncio.ensure_future(self._wait(("call_started",), 30))
            await asyncio.sleep(0)
            await sio.emit("call_start", {"role_id": self.role_id, "language": "en"},
                           namespace="/chat")
            name, _, data = await waiting
            if name != "call_started":
                raise RuntimeError(f"call refused: {data}")
            mic = asyncio.ensure_future(self._microphone(sio, stop))
            for _ in range(TURNS):
                await self._turn()
                await asyncio.sleep(random.uniform(0.3, 0.8))
            stop.set()
            await mic
            await sio.emit("call_end", {}, namespace="/chat")
            await asyncio.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 - a failed call is a figure
            self.turns.append(Turn(error=f"call: {exc!r}"))
        finally:
            stop.set()
            await sio.disconnect()

    async def _turn(self) -> None:
        turn = Turn()
        self.turns.append(turn)
        last_voiced: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.queued += self.pcm
        self.marks.append((self.sent + len(self.queued), last_voiced))
        try:
            spoken_at = await asyncio.wait_for(last_voiced, 60)
            name, at, data = await self._wait(("tts_audio_chunk",), TURN_TIMEOUT)
            if name == "error":
                turn.error = str(data)
                return
            turn.first_audio_ms = (at - spoken_at) * 1000
            name, _, data = await self._wait(("response_complete",), TURN_TIMEOUT)
            if name == "error":
                turn.error = str(data)
            else:
                turn.timings = data.get("timings") or {}
        except TimeoutError as exc:
            turn.error = str(exc)


async def chat_until(url: str, token: str, role_id: int, stop: asyncio.Event,
                     turns: list[Turn]) -> None:
    """Typed turns with spoken answers, one after another, until ``stop``."""
    import socketio

    sio = socketio.AsyncClient(reconnection=False)
    done: asyncio.Queue[tuple[str, float, Any]] = asyncio.Queue()
    for name in ("joined", "tts_audio_chunk", "response_complete", "error"):
        sio.on(name, lambda data=None, n=name: done.put_nowait((n, time.perf_counter(), data)),
               namespace="/chat")
    try:
        await sio.connect(url, namespaces=["/chat"], auth={"token": token},
                          transports=["websocket"], wait_timeout=30)
        await sio.emit("join", {"role_id": role_id}, namespace="/chat")
        while (await asyncio.wait_for(done.get(), 30))[0] != "joined":
            pass
        while not stop.is_set():
            turn = Turn()
            turns.append(turn)
            sent = time.perf_counter()
            await sio.emit("chat_message", {"role_id": role_id, "type": "text",
                                            "message": random.choice(PHRASES),
                                            "response_type": 1}, namespace="/chat")
            while True:
                name, at, data = await asyncio.wait_for(done.get(), TURN_TIMEOUT)
                if name == "tts_audio_chunk" and turn.first_audio_ms is None:
                    turn.first_audio_ms = (at - sent) * 1000
                elif name in ("response_complete", "error"):
                    turn.error = str(data) if name == "error" else None
                    break
            await asyncio.sleep(1.0)
    except Exception as exc:  # noqa: BLE001 - a failed conversation is a figure
        turns.append(Turn(error=f"chat: {exc!r}"))
    finally:
        await sio.disconnect()


class Probe:
    """``/api/health`` of each web process and a Redis PING every 0.25 s, on a thread."""

    def __init__(self, urls: list[str], redis_url: str) -> None:
        import redis

        self.urls, self.redis = urls, redis.Redis.from_url(redis_url)
        self.lag: list[float] = []
        self.storage: list[float] = []
        self.redis_ms: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(5)

    def _run(self) -> None:
        http = requests.Session()
        while not self.stop.wait(0.25):
            for url in self.urls:
                started = time.perf_counter()
                try:
                    body = http.get(url + "/api/health", timeout=10).json()["data"]
                except (requests.RequestException, ValueError, KeyError):
                    continue
                total = (time.perf_counter() - started) * 1000
                self.storage.append(body["elapsed_ms"])
                self.lag.append(max(0.0, total - body["elapsed_ms"]))
            started = time.perf_counter()
            self.redis.ping()
            self.redis_ms.append((time.perf_counter() - started) * 1000)


def _family(pid: int) -> list[int]:
    """``pid`` and its children (the engine processes of a web process, started from
    any of its threads)."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    children = []
    for thread in threads:
        try:
            children += [int(c) for c in (thread / "children").read_text().split()]
        except OSError:
            continue
    return [pid, *children]


def usage(pids: list[int], children_only: bool = False) -> tuple[float, float]:
    """CPU seconds used so far and resident MB now, summed over the processes (or only
    their children: the engine processes)."""
    ticks, pages, page = 0, 0, os.sysconf("SC_PAGE_SIZE")
    for pid in (p for root in pids for p in _family(root)[1 if children_only else 0:]):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK"), pages * page / 2**20


def ms(values: list[float], fraction: float) -> float:
    return round(percentile(values, fraction), 1) if values else float("nan")


def median_timings(turns: list[Turn]) -> dict[str, float]:
    out = {}
    for name in ("asr_ms", "llm_first_token_ms", "first_audio_ms"):
        found = [t.timings[name] for t in turns if name in t.timings]
        if found:
            out[name] = ms(found, 0.5)
    return out


@dataclass
class Stack:
    """The running web processes, and users with a role each: the first
    ``CHATS * len(urls)`` type, the others call."""

    urls: list[str]
    pids: list[int]
    redis_url: str
    voice: str
    people: list[tuple[str, int]] = field(default_factory=list)
    idle_cpu: float = 0.0  # CPU seconds a second the web processes spend with no call

    def measure_idle(self, seconds: float = 5.0) -> None:
        before, _ = usage(self.pids)
        with Probe(self.urls, self.redis_url):
            time.sleep(seconds)
        self.idle_cpu = (usage(self.pids)[0] - before) / seconds

    def _new_person(self, index: int) -> tuple[str, int]:
        url = self.urls[index % len(self.urls)]
        token = register(url, "scale_" + uuid.uuid4().hex[:12])["access_token"]
        role = requests.post(f"{url}/api/role/add", json={
            "name": "Ada", "description": "A patient guide to the city.", "gender": "女",
            "age": 36, "voice_type": self.voice}, headers={"Authorization": f"Bearer {token}"},
            timeout=60).json()
        return token, role["data"]["role_id"]

    def person(self, index: int) -> tuple[str, int]:
        return self.people[index]

    def caller(self, index: int) -> tuple[str, int]:
        return self.people[CHATS * len(self.urls) + index]

    def need_callers(self, count: int) -> None:
        wanted = CHATS * len(self.urls) + count
        with ThreadPoolExecutor(8) as pool:
            self.people += pool.map(self._new_person, range(len(self.people), wanted))


def run_step(stack: Stack, per_web: int, voices: dict[int, bytes], only_one: bool = False,
             exact: bool = True) -> dict[str, Any]:
    """``per_web`` calls at once on each web process (or one call in all), and the chats;
    with ``exact``, a transcript other than the caller's own phrase counts (the fake
    DashScope knows the phrases; a local recogniser may miss a word)."""
    calls = 1 if only_one else per_web * len(stack.urls)
    stack.need_callers(calls)
    clients = [CallClient(stack.urls[i % len(stack.urls)], *stack.caller(i),
                          PHRASES[i % len(PHRASES)], voices[i % len(PHRASES)])
               for i in range(calls)]
    chat_turns: list[Turn] = []
    cpu_before, _ = usage(stack.pids)
    engines_before, _ = usage(stack.pids, children_only=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()

    async def everything() -> None:
        stop = asyncio.Event()
        chats = [asyncio.ensure_future(chat_until(
            url, *stack.person(k), stop, chat_turns))
            for k, url in enumerate(stack.urls * CHATS)] if not only_one else []
        await asyncio.gather(*(c.run(random.uniform(0, 1.5)) for c in clients))
        stop.set()
        await asyncio.gather(*chats)

    with Probe(stack.urls, stack.redis_url) as probe:
        asyncio.run(everything())
    seconds = time.perf_counter() - started
    cpu_after, rss = usage(stack.pids)
    engines_after, _ = usage(stack.pids, children_only=True)
    busy = (cpu_after - cpu_before) / seconds - stack.idle_cpu
    turns = [t for c in clients for t in c.turns]
    first = [t.first_audio_ms for t in turns if t.first_audio_ms is not None]
    crossed = sum(1 for c in clients for t in c.turns
                  if exact and t.heard is not None and t.heard != c.phrase)
    return {
        "calls": calls, "per_web": 0 if only_one else per_web, "turns": len(turns),
        "errors": sum(1 for t in turns if t.error),
        "error_example": next((t.error for t in turns if t.error), None),
        "not_own_phrase": crossed,
        "first_audio_p50_ms": ms(first, 0.5), "first_audio_p95_ms": ms(first, 0.95),
        "server_from_end_of_speech_ms": median_timings(turns),
        "chat_turns": len(chat_turns), "chat_errors": sum(1 for t in chat_turns if t.error),
        "chat_first_audio_p95_ms": ms([t.first_audio_ms for t in chat_turns
                                       if t.first_audio_ms is not None], 0.95),
        "loop_lag_p95_ms": ms(probe.lag, 0.95), "database_storage_p95_ms": ms(probe.storage, 0.95),
        "redis_p95_ms": ms(probe.redis_ms, 0.95),
        "cpu_per_call": round(busy / calls, 3),
        "engine_process_cpu_share": round((engines_after - engines_before) / seconds
                                          / max(busy + stack.idle_cpu, 1e-9), 2),
        "rss_mb": round(rss, 1), "seconds": round(seconds, 1),
        "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


@contextmanager
def production_stack(engines: str, work: Path, redis: RedisServer, fake: Any) -> Any:
    database = mysql_url(os.environ.get("BENCH_SCALE_DATABASE", "tingshuo_scale"))
    if database is None:
        raise RuntimeError("the capacity bench needs MariaDB (BENCH_MYSQL_SERVER)")
    with MotoS3(work / "moto.log") as moto:
        env = {"REDIS_URL": redis.url(), "CELERY_QUEUE": "scale-" + uuid.uuid4().hex[:8],
               "WARM_UP": "true", "SECRET_KEY": "scale-secret-0123456789abcdef",
               "JWT_SECRET_KEY": "scale-jwt-secret-0123456789abcdef", "LLM_BASE_URL": "",
               "DASHSCOPE_API_KEY": fake.api_key, "DASHSCOPE_HTTP_BASE_URL": fake.http_url,
               "DASHSCOPE_WEBSOCKET_BASE_URL": fake.ws_url, "CALL_IDLE_SECONDS": "60",
               **ENGINE_SETTINGS[engines], **new_bucket(moto.endpoint, "scale/")}
        webs = []
        for i in range(2):
            (work / f"{engines}{i}").mkdir()
            webs.append(Server(work / f"{engines}{i}", database, warm=True, **env))
        webs[0].migrate()
        worker = celery_worker(env["CELERY_QUEUE"], webs[0].env, work / f"{engines}-worker.log")
        try:
            start_all([worker, *webs])
            yield Stack([w.url for w in webs], [w.process.popen.pid for w in webs],
                        redis.url(), ENGINE_SETTINGS[engines]["DEFAULT_VOICE_TYPE"])
        finally:
            for web in webs:
                web.stop()
            worker.stop(timeout=30)


def ramp(engines: str, steps: list[int], work: Path, redis: RedisServer, fake: Any,
         voices: dict[int, bytes]) -> dict[str, Any]:
    with production_stack(engines, work, redis, fake) as stack:
        deadline = time.monotonic() + SECONDS
        _, idle_rss = usage(stack.pids)
        stack.measure_idle()
        exact = engines == "dashscope"
        run_step(stack, 1, voices, only_one=True, exact=exact)  # every path once, unmeasured
        single = run_step(stack, 1, voices, only_one=True, exact=exact)
        limit = LIMIT * single["first_audio_p95_ms"]
        rows, carried, breached = [], 0, False
        report(engines, single, limit)
        for per_web in steps:
            if time.monotonic() > deadline:
                print(f"  (stopped: BENCH_SCALE_SECONDS={SECONDS:g} spent)", flush=True)
                break
            row = run_step(stack, per_web, voices, exact=exact)
            base = row["rss_mb"] - idle_rss
            row["rss_mb_per_call"] = round(base / row["calls"], 1)
            rows.append(row)
            report(engines, row, limit)
            if row["errors"] or row["not_own_phrase"] or row["first_audio_p95_ms"] > limit:
                breached = True
                if not WHOLE_RAMP:
                    break
            if not breached:
                carried = per_web
    return {"engines": engines, "single": single, "steps": rows,
            "limit_ms": round(LIMIT * single["first_audio_p95_ms"], 1),
            "idle_cpu_seconds_per_second": round(stack.idle_cpu, 3),
            "idle_rss_mb": round(idle_rss, 1), "calls_per_web_process": carried,
            "calls_per_core": round(carried * len(stack.urls) / (os.cpu_count() or 1), 1)}


def report(engines: str, row: dict[str, Any], limit: float) -> None:
    print(f"  {engines} {row['calls']} calls ({row['per_web'] or '1 in all'} per web): "
          f"first audio p50 {row['first_audio_p50_ms']} / p95 {row['first_audio_p95_ms']} ms "
          f"(limit {limit:.0f}), errors {row['errors']}, not own phrase "
          f"{row['not_own_phrase']}; server {row['server_from_end_of_speech_ms']}; loop lag "
          f"p95 {row['loop_lag_p95_ms']} ms, db+storage p95 {row['database_storage_p95_ms']} "
          f"ms, redis p95 {row['redis_p95_ms']} ms; {row['cpu_per_call']} CPU s per call-s "
          f"({row['engine_process_cpu_share']:.0%} in engine processes), "
          f"{row.get('rss_mb_per_call', '-')} MB per call ({row['rss_mb']} MB); chat "
          f"{row['chat_turns']} turns, {row['chat_errors']} errors; load {row['load_1min']}"
          + (f"; e.g. {row['error_example']}" if row["error_example"] else ""), flush=True)


def moonshine_cost(pcm: bytes, reads: int = 6) -> dict[str, Any]:
    """What isolating Moonshine costs: a read in the engine's model process against the
    same read on a model in this process (alternating, same audio), and the model
    process's resident memory."""
    from moonshine_voice import ModelArch, Transcriber

    from webapp.app.audio import pcm_to_float
    from webapp.app.providers.stt.moonshine import MoonshineSpeechToText, _model_dir

    engine = MoonshineSpeechToText({"MOONSHINE_PROCESSES": 1})
    engine.warm_up()
    here = Transcriber(model_path=str(_model_dir()), model_arch=ModelArch.TINY)
    isolated, direct = [], []
    for _ in range(reads):
        started = time.perf_counter()
        engine.transcribe_pcm(pcm)
        isolated.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        here.transcribe_without_streaming(pcm_to_float(pcm).tolist(), RATE)
        direct.append((time.perf_counter() - started) * 1000)
    model_rss = usage([os.getpid()], children_only=True)[1]
    return {"isolated_read_median_ms": ms(isolated, 0.5), "in_process_read_median_ms":
            ms(direct, 0.5), "model_process_rss_mb": round(model_rss, 1),
            "audio_seconds": round(len(pcm) / 2 / RATE, 2),
            "load_1min": round(os.getloadavg()[0], 2)}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-scale-"))
    voices = {i: speech(text) for i, text in enumerate(PHRASES)}
    fake = start_fake_dashscope(asr_delay=0.15, tts_first_packet=0.2, tts_pace=1.0,
                                token_delay=0.02)
    fake.teach(dict(zip(PHRASES, voices.values(), strict=True)))
    redis = RedisServer().start()
    results = []
    isolation = moonshine_cost(voices[0]) if "local" in ENGINES else {}
    if isolation:
        print(f"Moonshine in a process of its own: {isolation}", flush=True)
    try:
        for engines in ENGINES:
            print(f"ramp with {engines} engines", flush=True)
            steps = STEPS if engines == "dashscope" else LOCAL_STEPS
            results.append(ramp(engines, steps, work, redis, fake, voices))
    finally:
        redis.close()
        fake.stop()
    for result in results:
        print(f"{result['engines']}: {result['calls_per_web_process']} calls per web process "
              f"within {LIMIT}x the single call's first-audio p95 "
              f"({result['single']['first_audio_p95_ms']} ms); "
              f"{result['calls_per_core']} per core ({os.cpu_count()} cores, shared)")
    publish("scale", {"bench": "scale", "results": results, "moonshine_isolation": isolation,
                       "load_average": [round(x, 2) for x in os.getloadavg()]})


if __name__ == "__main__":
    main()
