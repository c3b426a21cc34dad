"""The OpenAI-compatible API's overhead over the engines it wraps.

``/v1/audio/speech`` (time to first byte, and total) against Piper called directly in
this process (same text, same voice), and ``/v1/audio/transcriptions`` against
faster-whisper called directly on the same file with the same settings. The server is
``wsgi.py`` under eventlet (embedded mode, SQLite, history kept: every call is stored
as a message with its audio, as by default). Each figure is the median of ``ROUNDS``
calls after one warm-up; the direct and API calls take turns within each round, so
both see the same load on a shared machine. Ratios are API / direct, target ≤ 1.10.
The load average is printed because other work on the machine moves every figure.

Run: ``python -m bench openai``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench.figures import publish
from bench.server import Server, register
from webapp.app import audio
from webapp.app.providers.base import SynthesisOptions
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts.piper import PiperTextToSpeech

ROUNDS = int(os.environ.get("BENCH_OPENAI_ROUNDS", "5"))
VOICE = "piper:en_US-joe-medium"
SPEECH_TEXT = ("The library opens at nine in the morning and closes late in the evening. "
               "Many students come here to read quietly, and some of them stay all day.")
CLIP_TEXT = ("Every morning I walk to the station and buy a cup of coffee. The train to the "
             "city leaves from platform four in ten minutes. My sister is learning to play "
             "the piano, and she practices every day.")
TARGET = 1.10


def interleaved(runs: dict[str, Callable[[], tuple[float, ...]]]) -> dict[str, list[float]]:
    """Medians of each run's figures, the runs taking turns round by round."""
    for run in runs.values():
        run()
    samples: dict[str, list[tuple[float, ...]]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            samples[name].append(run())
    return {name: [statistics.median(column) for column in zip(*rows, strict=True)]
            for name, rows in samples.items()}


def direct_speech(engine: PiperTextToSpeech) -> tuple[float, float]:
    """First PCM chunk and last, in ms, from Piper's own stream."""
    started = time.perf_counter()
    first = None
    for _chunk in engine.synthesize_stream(SPEECH_TEXT, SynthesisOptions(voice="en_US-joe-medium")):
        first = first or time.perf_counter()
    return (first - started) * 1000, (time.perf_counter() - started) * 1000


def api_speech(url: str, key: str, token: str, fmt: str) -> tuple[float, float, float]:
    """First body byte and last, in ms, of a streamed ``/v1/audio/speech``, and the
    server's own first-audio time for it (from the stored message)."""
    started = time.perf_counter()
    first = None
    with requests.post(f"{url}/v1/audio/speech", headers={"Authorization": f"Bearer {key}"},
                       json={"model": "tts-1", "voice": VOICE, "input": SPEECH_TEXT,
                             "response_format": fmt}, stream=True, timeout=120) as response:
        response.raise_for_status()
        for _chunk in response.iter_content(chunk_size=None):
            first = first or time.perf_counter()
        message_id = response.headers["X-Message-Id"]
    ended = time.perf_counter()
    message = requests.get(f"{url}/api/messages/{message_id}",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    server_first = message["data"]["metadata"].get("first_audio_ms") or 0.0
    return (first - started) * 1000, (ended - started) * 1000, server_first


def direct_whisper(model: Any, path: Path, beam_size: int) -> float:
    started = time.perf_counter()
    segments, _info = model.transcribe(str(path), beam_size=beam_size, vad_filter=True,
                                       condition_on_previous_text=False)
    list(segments)
    return (time.perf_counter() - started) * 1000


def api_transcription(url: str, key: str, data: bytes) -> float:
    started = time.perf_counter()
    response = requests.post(f"{url}/v1/audio/transcriptions",
                             headers={"Authorization": f"Bearer {key}"},
                             files={"file": ("clip.wav", data, "audio/wav")},
                             data={"model": "whisper-1"}, timeout=120)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tingshuo-bench-openai-"))
    load_before = os.getloadavg()
    piper = PiperTextToSpeech({})
    clip_pcm = piper.synthesize(CLIP_TEXT, SynthesisOptions()).pcm
    rate = audio.SPEECH_SAMPLE_RATE
    clip = audio.encode(audio.resample(clip_pcm, piper.capabilities.sample_rate, rate), rate,
                        "wav")
    clip_path = work / "clip.wav"
    clip_path.write_bytes(clip)
    whisper = WhisperSpeechToText({"MODEL_CACHE_DIR": str(Path("instance/models").resolve())})
    whisper.warm_up()
    server = Server(work, f"sqlite:///{work / 'bench.db'}")
    server.migrate()
    figures: dict[str, float] = {}
    with server:
        user = register(server.url, "bench_openai")
        headers = {"Authorization": f"Bearer {user['access_token']}"}
        while not requests.get(f"{server.url}/api/health", timeout=5
                               ).json()["data"]["engines_warm"]:
            time.sleep(0.5)
        key = requests.post(f"{server.url}/api/keys", headers=headers,
                            json={"name": "bench"}, timeout=10).json()["data"]["key"]
        model = whisper._loaded()
        speech = interleaved({
            "direct": lambda: direct_speech(piper),
            "wav": lambda: api_speech(server.url, key, user["access_token"], "wav"),
            "mp3": lambda: api_speech(server.url, key, user["access_token"], "mp3"),
        })
        direct_first, direct_total = speech["direct"]
        figures.update(direct_first_ms=direct_first, direct_total_ms=direct_total)
        for fmt in ("wav", "mp3"):
            first, total, server_first = speech[fmt]
            figures.update({f"api_{fmt}_first_ms": first, f"api_{fmt}_total_ms": total,
                            f"api_{fmt}_server_first_audio_ms": server_first,
                            f"ttfb_ratio_{fmt}": first / direct_first,
                            f"total_ratio_{fmt}": total / direct_total})
        heard = interleaved({
            "direct": lambda: (direct_whisper(model, clip_path, whisper.beam_size),),
            "api": lambda: (api_transcription(server.url, key, clip),),
        })
        figures.update(whisper_direct_ms=heard["direct"][0],
                       api_transcription_ms=heard["api"][0],
                       transcription_ratio=heard["api"][0] / heard["direct"][0])
    load_after = os.getloadavg()
    print(f"rounds {ROUNDS} (medians), load average before {load_before[0]:.2f} "
          f"{load_before[1]:.2f} {load_before[2]:.2f}, after {load_after[0]:.2f} "
          f"{load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"{'figure':34} {'value':>10}  target")
    for name, value in figures.items():
        target = f"≤ {TARGET}" if "ratio" in name else ""
        print(f"{name:34} {value:10.2f}  {target}")
    publish("openai", {"bench": "openai", "rounds": ROUNDS, "load_before": load_before,
                        "load_after": load_after,
                        **{k: round(v, 3) for k, v in figures.items()}})
