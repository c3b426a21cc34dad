"""Mixed load on the embedded default: voices cloning while other clients write and read.

The web process runs as ``make run`` starts it (``wsgi.py`` under eventlet, SQLite, local
files, jobs in-process, local engines). For ``BENCH_LOAD_SECONDS`` (60) these clients run
at once, every one its own user, on loopback only:

- cloners: ``POST /api/voices`` (local provider, a Piper-made sample), then poll the job;
- talkers: Socket.IO ``/chat`` text turns, one after another, on one connection each;
- uploaders: ``POST /api/temfile/upload``;
- speakers: ``POST /api/tts`` (eSpeak NG);
- readers: voices, roles, sessions, uploads and ``/api/auth/me``;
- a prober: ``GET /api/health`` every 100 ms.

Every request has a 30 s timeout and every client stops when the time is up, so the run
ends by itself. Targets: 0 responses with status ≥ 500 and ``/api/health`` p95 < 200 ms.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.figures import publish
from bench.stats import summary

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", 60))
CLIENTS = {"cloners": int(os.environ.get("BENCH_LOAD_CLONERS", 3)),
           "talkers": int(os.environ.get("BENCH_LOAD_TALKERS", 4)),
           "uploaders": int(os.environ.get("BENCH_LOAD_UPLOADERS", 2)),
           "speakers": int(os.environ.get("BENCH_LOAD_SPEAKERS", 2)),
           "readers": int(os.environ.get("BENCH_LOAD_READERS", 3))}
TIMEOUT = 30.0
PROBE_INTERVAL = 0.1
TARGETS = {"server_errors": 0, "health_p95_ms": 200.0}
SAMPLE_TEXT = ("The old harbour was busy from the early morning. Fishing boats came in "
               "with their catch, and the market filled with voices, gulls and the smell "
               "of the sea. By noon the tide had turned and the boats went out again.")
CHAT_TEXT = "Tell me something about the sea."
VOICE = "espeak:en-us"
ROLE = {"name": "Load", "description": "A calm guide.", "gender": "女", "age": 30}


class Tally:
    """Every outcome of the run, counted under a lock (clients are threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.server_errors = 0
        self.health_ms: list[float] = []
        self.dropped = 0
        self.turns = 0
        self.clones: collections.Counter[str] = collections.Counter()

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def call(self, kind: str, method: str, url: str, **kwargs: Any) -> requests.Response | None:
        """One request, counted by kind; a 5xx, a 4xx, a timeout or a refused connection
        is an error of its own kind."""
        with self.lock:
            self.requests[kind] += 1
        try:
            response = requests.request(method, url, timeout=TIMEOUT, **kwargs)
        except requests.Timeout:
            self.error(f"{kind}: timeout")
            return None
        except requests.RequestException as exc:
            self.error(f"{kind}: {exc.__class__.__name__}")
            return None
        if response.status_code >= 500:
            with self.lock:
                self.server_errors += 1
        if response.status_code >= 400:
            self.error(f"{kind}: HTTP {response.status_code}")
            return None
        return response


def sample_wav(text: str) -> bytes:
    """Speech made by Piper, long enough (≈10 s) to clone a voice from."""
    from webapp.app.audio import encode
    from webapp.app.providers.base import SynthesisOptions
    from webapp.app.providers.tts.piper import PiperTextToSpeech

    spoken = PiperTextToSpeech({}).synthesize(text, SynthesisOptions())
    return encode(spoken.pcm, spoken.sample_rate, "wav")


Who = tuple[dict[str, str], int]


def participant(url: str) -> Who:
    """A new user with a role of its own: auth headers and the role id."""
    name, password = "load_" + uuid.uuid4().hex[:12], "bench-password"
    requests.post(f"{url}/api/auth/register", json={"username": name, "password": password},
                  timeout=TIMEOUT).raise_for_status()
    data = requests.post(f"{url}/api/auth/login", json={"username": name, "password": password},
                         timeout=TIMEOUT).json()["data"]
    headers = {"Authorization": f"Bearer {data['access_token']}"}
    response = requests.post(f"{url}/api/role/add", json={**ROLE, "voice_type": VOICE},
                             headers=headers, timeout=TIMEOUT)
    response.raise_for_status()
    return headers, response.json()["data"]["role_id"]


def cloner(url: str, who: Who, tally: Tally, stop: float, wav: bytes) -> None:
    headers, _ = who
    while time.time() < stop:
        response = tally.call("clone", "POST", f"{url}/api/voices", headers=headers,
                              data={"name": "load voice", "provider": "local",
                                    "labels": json.dumps({"language": "en"})},
                              files={"files": ("sample.wav", wav, "audio/wav")})
        if response is None:
            time.sleep(0.5)
            continue
        job_id = response.json()["data"]["job_id"]
        while time.time() < stop + TIMEOUT:
            polled = tally.call("job poll", "GET", f"{url}/api/jobs/{job_id}", headers=headers)
            status = polled.json()["data"]["status"] if polled is not None else None
            if status in ("succeeded", "failed"):
                with tally.lock:
                    tally.clones[status] += 1
                if status == "failed":
                    tally.error(f"clone job failed: {polled.json()['data']['error']}")
                break
            time.sleep(0.5)


def talker(url: str, who: Who, tally: Tally, stop: float) -> None:
    """Text turns over Socket.IO; a disconnect this client did not ask for is a drop."""
    import socketio

    headers, role_id = who
    token = headers["Authorization"].removeprefix("Bearer ")
    client = socketio.Client(reconnection=False)
    joined, done = threading.Event(), threading.Event()
    leaving = threading.Event()

    def on_error(data: Any) -> None:
        code = data.get("code") if isinstance(data, dict) else data
        if isinstance(code, int) and code >= 500:
            with tally.lock:
                tally.server_errors += 1
        tally.error(f"socket.io error event: {code}")
        done.set()

    def on_disconnect(*_: Any) -> None:
        if not leaving.is_set():
            with tally.lock:
                tally.dropped += 1
        done.set()

    client.on("joined", lambda _data: joined.set(), namespace="/chat")
    client.on("response_complete", lambda _data: done.set(), namespace="/chat")
    client.on("error", on_error, namespace="/chat")
    client.on("disconnect", on_disconnect, namespace="/chat")
    with tally.lock:
        tally.requests["socket.io connect"] += 1
    try:
        client.connect(url, namespaces=["/chat"], auth={"token": token},
                       transports=["websocket"], wait_timeout=TIMEOUT)
        client.emit("join", {"role_id": role_id, "audio_format": "mp3"}, namespace="/chat")
        if not joined.wait(TIMEOUT):
            tally.error("socket.io: no joined")
            return
        while time.time() < stop and client.connected:
            done.clear()
            with tally.lock:
                tally.requests["socket.io turn"] += 1
            client.emit("chat_message", {"role_id": role_id, "message": CHAT_TEXT,
                                         "type": "text", "response_type": 1}, namespace="/chat")
            if not done.wait(TIMEOUT * 2):
                tally.error("socket.io turn: no response_complete")
            elif client.connected:
                with tally.lock:
                    tally.turns += 1
    except socketio.exceptions.ConnectionError as exc:
        tally.error(f"socket.io connect: {exc}")
    finally:
        leaving.set()
        if client.connected:
            client.disconnect()


def uploader(url: str, who: Who, tally: Tally, stop: float, wav: bytes) -> None:
    headers, _ = who
    while time.time() < stop:
        tally.call("upload", "POST", f"{url}/api/temfile/upload", headers=headers,
                   files={"file": ("clip.wav", wav, "audio/wav")})


def speaker(url: str, who: Who, tally: Tally, stop: float) -> None:
    headers, _ = who
    while time.time() < stop:
        tally.call("tts", "POST", f"{url}/api/tts", headers=headers,
                   json={"text": CHAT_TEXT, "voice_type": VOICE, "format": "mp3"})


def reader(url: str, who: Who, tally: Tally, stop: float) -> None:
    headers, role_id = who
    paths = ("/api/voices", "/api/role/list", "/api/sessions", "/api/temfile/list",
             "/api/auth/me", f"/api/role/{role_id}", "/api/voiceTypes")
    turn = 0
    while time.time() < stop:
        tally.call("read", "GET", url + paths[turn % len(paths)], headers=headers)
        turn += 1


def prober(url: str, _who: Who | None, tally: Tally, stop: float) -> None:
    """Every probe's time counts, a failed or timed-out one included (it is what a load
    balancer's health check would have waited)."""
    while time.time() < stop:
        started = time.perf_counter()
        tally.call("health", "GET", f"{url}/api/health")
        elapsed = time.perf_counter() - started
        with tally.lock:
            tally.health_ms.append(elapsed * 1000)
        time.sleep(max(0.0, PROBE_INTERVAL - elapsed))


def quiet_health(url: str, probes: int = 30) -> dict[str, float]:
    """``/api/health`` with nothing else going on: what this machine gives at best."""
    latencies = []
    for _ in range(probes):
        started = time.perf_counter()
        requests.get(f"{url}/api/health", timeout=TIMEOUT).raise_for_status()
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(PROBE_INTERVAL)
    return summary(latencies)


def run(url: str, wav: bytes) -> Tally:
    """Every client's user and role is made first; then the clock starts for all at once."""
    work: list[tuple[Callable[..., None], tuple[Any, ...], int]] = [
        (cloner, (wav,), CLIENTS["cloners"]), (talker, (), CLIENTS["talkers"]),
        (uploader, (wav,), CLIENTS["uploaders"]), (speaker, (), CLIENTS["speakers"]),
        (reader, (), CLIENTS["readers"])]
    clients = [(fn, extra, participant(url)) for fn, extra, count in work for _ in range(count)]
    clients.append((prober, (), None))
    tally = Tally()
    stop = time.time() + SECONDS
    threads = []
    for fn, extra, who in clients:
        def body(fn: Callable[..., None] = fn, extra: tuple[Any, ...] = extra,
                 who: Who | None = who) -> None:
            try:
                fn(url, who, tally, stop, *extra)
            except Exception as exc:  # noqa: BLE001 - a client that dies is counted
                tally.error(f"{fn.__name__} died: {exc.__class__.__name__}: {exc}")
        threads.append(threading.Thread(target=body, daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, stop + 3 * TIMEOUT - time.time()))
    stuck = sum(thread.is_alive() for thread in threads)
    if stuck:
        tally.error(f"clients still waiting at the end: {stuck}")
    return tally


def report(tally: Tally, log: Path, quiet: dict[str, float]) -> dict[str, Any]:
    text = log.read_text(errors="replace") if log.exists() else ""
    health = summary(tally.health_ms) if tally.health_ms else {}
    return {"seconds": SECONDS, "clients": CLIENTS, "requests": dict(tally.requests),
            "requests_total": sum(tally.requests.values()), "server_errors": tally.server_errors,
            "errors": dict(tally.errors.most_common()), "health": health,
            "health_quiet": quiet,
            "dropped_socketio": tally.dropped, "turns_completed": tally.turns,
            "clones": dict(tally.clones),
            "machine_load_average": [round(x, 1) for x in os.getloadavg()],
            "server_log": {"database is locked": text.count("database is locked"),
                           "tracebacks": text.count("Traceback")}}


def print_table(row: dict[str, Any]) -> None:
    health = row["health"]
    print(f"\nEmbedded default under mixed load, {row['seconds']:g} s, clients {row['clients']}")
    print(f"{'requests (all kinds)':40} {row['requests_total']:>8}")
    for kind, count in sorted(row["requests"].items()):
        print(f"  {kind:38} {count:>8}")
    print(f"{'responses ≥ 500 (HTTP and Socket.IO)':40} {row['server_errors']:>8}   target 0")
    print(f"{'/api/health median':40} {health.get('median_ms', float('nan')):>6.1f}ms")
    print(f"{'/api/health p95':40} {health.get('p95_ms', float('nan')):>6.1f}ms   target < 200 ms")
    print(f"{'/api/health max':40} {health.get('max_ms', float('nan')):>6.1f}ms")
    quiet = row["health_quiet"]
    print(f"{'/api/health before the load, median/p95':40} {quiet['median_ms']:>6.1f}ms "
          f"/ {quiet['p95_ms']:.1f}ms")
    print(f"{'dropped Socket.IO connections':40} {row['dropped_socketio']:>8}")
    print(f"{'Socket.IO turns completed':40} {row['turns_completed']:>8}")
    print(f"{'clone jobs':40} {json.dumps(row['clones'])}")
    print(f"{'server log':40} {json.dumps(row['server_log'])}")
    print(f"{'machine load average (1, 5, 15 min)':40} {row['machine_load_average']}")
    print("errors by kind:" + ("" if row["errors"] else " none"))
    for kind, count in row["errors"].items():
        print(f"  {count:>6}  {kind[:110]}")


def main() -> None:
    from bench.bench_realtime import start_server

    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-load-"))
    wav = sample_wav(SAMPLE_TEXT)
    server = start_server(work, 0.0, VOICE)
    try:
        quiet = quiet_health(server.url)
        tally = run(server.url, wav)
    finally:
        server.stop()
    row = report(tally, server.log, quiet)
    print_table(row)
    print(f"server log: {server.log}")
    publish("load", {"bench": "load", "targets": TARGETS, **row})


if __name__ == "__main__":
    main()
