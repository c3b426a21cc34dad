"""Honest users while others attack (embedded mode, local engines, scripted LLM).

Honest work, measured alone and then while attackers run at full speed:
- a call: an English question spoken at real-time pace → first reply audio;
- a chat turn: a Socket.IO text message → first reply audio;
- TTS: ``POST /api/tts/stream`` → first byte.

Attackers, each its own signed-up user, as fast as the server answers:
- the hostile corpus (``tests/helpers/hostile_audio.py``: hours of audio in small files,
  lying and truncated headers, playlists) to every route and socket that reads audio;
- a request flood: ``/api/voice/generate`` naming the honest user's session (publishing
  into someone else's stream) and playlist files to ``/api/stt``;
- 28 MB WebSocket frames, and call audio pushed far faster than speech.

Printed: honest first-audio p95 and errors per workload, quiet and under attack; the
attackers' requests and how many were refused (4xx), answered (2xx) or failed (5xx,
dropped); the server's resident memory (plateau when quiet, peak under attack); the load
average. ``BENCH_ABUSE_TURNS`` (3) sets the honest turns per workload and phase.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from bench.bench_call import load, one_turn
from bench.bench_realtime import add_participant, start_server
from bench.figures import publish
from bench.stats import percentile
from tests.helpers import hostile_audio, recordings
from tests.helpers.call_client import Caller
from tests.helpers.hostile_clients import FITS_A_FRAME, Attacker, resident_mb
from tests.helpers.realtime import Recorder
from tests.helpers.sounds import RATE, speech

TURNS = int(os.environ.get("BENCH_ABUSE_TURNS", "3"))
QUESTION = "Could you tell me a little about the history of this old city?"
TTS_TEXT = "The quick brown fox jumps over the lazy dog, and then it rests for a while."


class Memory:
    """The server's resident memory, sampled every 0.2 s while running."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, resident_mb(self.pid))
            except (OSError, RuntimeError):  # the process is gone
                return
            time.sleep(0.2)

    def close(self) -> float:
        self.stop.set()
        self.thread.join(2)
        return self.peak


def _call_turn(url: str, token: str, role_id: int, pcm: bytes) -> float | None:
    result = one_turn(url, token, role_id, pcm, "en")
    return result.get("first_audio_ms")


def _chat_turn(url: str, token: str, role_id: int) -> float | None:
    talker = Recorder(url, token)
    try:
        talker.join(role_id)
        mark = len(talker.events)
        sent = talker.emit("chat_message", {"role_id": role_id, "message": QUESTION,
                                            "type": "text", "response_type": 1})
        talker.wait_for(("tts_audio_chunk", "error"), 60, mark)
        first = talker.first_time("tts_audio_chunk", mark)
        talker.wait_for(("response_complete", "error"), 60, mark)
        return (first - sent) * 1000 if first else None
    finally:
        talker.close()


def _tts(url: str, token: str) -> float | None:
    started = time.perf_counter()
    with requests.post(f"{url}/api/tts/stream", headers={"Authorization": f"Bearer {token}"},
                       json={"text": TTS_TEXT, "voice_type": "piper:en_US-joe-medium"},
                       stream=True, timeout=60) as response:
        if response.status_code != 200:
            return None
        next(response.iter_content(1024))
        return (time.perf_counter() - started) * 1000


def honest_round(url: str, pcm: bytes, turns: int = TURNS) -> dict[str, dict[str, Any]]:
    """Each honest workload ``turns`` times, one after the other; p95 and errors."""
    token, role_id = add_participant(url, "piper:en_US-joe-medium")
    work = {"call": lambda: _call_turn(url, token, role_id, pcm),
            "chat turn": lambda: _chat_turn(url, token, role_id),
            "tts": lambda: _tts(url, token)}
    out = {}
    for name, run in work.items():
        times, errors = [], 0
        for _ in range(turns):
            try:
                value = run()
            except Exception:  # noqa: BLE001 - a failed turn is counted, not raised
                value = None
            if value is None:
                errors += 1
            else:
                times.append(value)
        out[name] = {"p95_ms": round(percentile(times, 0.95), 1), "errors": errors,
                     "n": turns}
    return out


class Attacks:
    """Every attacker in a thread of its own until ``stop``; answers counted by class."""

    def __init__(self, url: str, victim_session: str) -> None:
        self.url, self.victim = url, victim_session
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.corpus = hostile_audio.corpus()
        self.threads = [threading.Thread(target=self._guard, args=(job,), daemon=True)
                        for job in (self._corpus, self._corpus, self._flood, self._frames,
                                    self._fast_call)]
        for thread in self.threads:
            thread.start()

    def _count(self, status: int) -> None:
        kind = ("refused" if 400 <= status < 500 else "answered" if status < 400 and status
                else "failed")
        with self.lock:
            self.counts["requests"] += 1
            self.counts[kind] += 1

    def _guard(self, job: Any) -> None:
        while not self.stop.is_set():
            try:
                job()
            except Exception:  # noqa: BLE001 - a dropped connection counts as failed
                self._count(0)
                time.sleep(0.5)

    def _corpus(self) -> None:
        attacker = Attacker(self.url)
        try:
            for item in self.corpus:
                if self.stop.is_set():
                    return
                for status in attacker.rest(f"{item.name}.wav", item.data).values():
                    self._count(status)
                if len(item.data) <= FITS_A_FRAME:
                    for code in attacker.sockets(item.data).values():
                        self._count(code)
        finally:
            attacker.close()

    def _flood(self) -> None:
        attacker = Attacker(self.url)
        playlist = hostile_audio.PLAYLISTS["ffconcat"]
        try:
            for n in range(50):
                if self.stop.is_set():
                    return
                self._count(attacker.user.http.post(
                    f"{self.url}/api/voice/generate", json={
                        "messageId": n, "text": f"Injected {n}.", "debateId": self.victim},
                    timeout=60).status_code)
                self._count(attacker.user.http.post(
                    f"{self.url}/api/stt", files={"file": ("x.wav", playlist)},
                    timeout=60).status_code)
        finally:
            attacker.close()

    def _frames(self) -> None:
        attacker = Attacker(self.url)
        try:
            outcome = attacker.huge_frame()
            self._count(413 if outcome.startswith("closed") else 200)
        finally:
            attacker.close()

    def _fast_call(self) -> None:
        attacker = Attacker(self.url)
        caller = Caller(self.url, attacker.user.token)
        try:
            caller.start(attacker.user.role_id, language="en")
            caller.hung_up.set()
            mark = len(caller.events)
            for _ in range(200):
                if "call_ended" in caller.names(mark):
                    break
                caller.send("call_audio", bytes(RATE * 2 // 5))
            try:
                caller.wait_for(("call_ended",), 10, mark)
                self._count(400)
            except AssertionError:  # the call took it all
                self._count(200)
        finally:
            caller.close()
            attacker.close()

    def close(self) -> Counter[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)
        return self.counts


def main() -> None:
    # Cut at the last voiced sample: the call's figure counts from the end of the speech
    # (the microphone goes on sending silence after it, which ends the turn).
    pcm = recordings.until_last_voiced(speech(QUESTION))
    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as tmp:
        server = start_server(Path(tmp), 0.02, "piper:en_US-joe-medium")
        try:
            assert server.process.popen is not None
            pid = server.process.popen.pid
            honest_round(server.url, pcm, turns=1)  # warm every path once
            quiet_memory = Memory(pid)
            quiet = honest_round(server.url, pcm)
            plateau = quiet_memory.close()
            token, _ = add_participant(server.url, "piper:en_US-joe-medium")
            victim = requests.post(f"{server.url}/api/sessions", json={},
                                   headers={"Authorization": f"Bearer {token}"},
                                   timeout=30).json()["data"]["session_id"]
            attack_memory = Memory(pid)
            attacks = Attacks(server.url, victim)
            attacked = honest_round(server.url, pcm)
            counts = attacks.close()
            peak = attack_memory.close()
            alive = server.process.running
        finally:
            server.stop()
    print(f"load average: {load()}")
    print(f"{'honest workload':<12} {'quiet p95 ms':>13} {'errors':>7} "
          f"{'attacked p95 ms':>16} {'errors':>7} {'ratio':>6}")
    for name in quiet:
        q, a = quiet[name], attacked[name]
        ratio = a["p95_ms"] / q["p95_ms"] if q["p95_ms"] else float("nan")
        print(f"{name:<12} {q['p95_ms']:>13} {q['errors']:>7} {a['p95_ms']:>16} "
              f"{a['errors']:>7} {ratio:>6.2f}")
    print(f"attacker requests: {counts['requests']}, refused (4xx): {counts['refused']}, "
          f"answered (2xx): {counts['answered']}, failed (5xx / dropped): {counts['failed']}")
    print(f"server RSS: plateau {plateau:.0f} MB quiet, peak {peak:.0f} MB under attack "
          f"(+{peak - plateau:.0f} MB); server alive after: {alive}")
    publish("abuse", {"bench": "abuse", "quiet": quiet, "attacked": attacked,
                       "attacks": dict(counts), "rss_plateau_mb": round(plateau),
                       "rss_peak_mb": round(peak), "alive": alive, "load": load()})


if __name__ == "__main__":
    main()
