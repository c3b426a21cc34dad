"""How fast and how accurate the local engines are on this machine.

Run from the repository root: ``python -m bench.bench_engines``. Prints a table with
each figure beside its target, then one JSON line with every figure. Texts are fixed;
audio clips are made by Piper, so runs are comparable (Piper's own voice varies a little
from run to run).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.figures import publish
from tests.helpers.transcripts import word_error_rate
from webapp.app.audio import encode
from webapp.app.providers.base import SynthesisOptions
from webapp.app.providers.stt.whisper import WhisperSpeechToText
from webapp.app.providers.tts.espeak import EspeakTextToSpeech
from webapp.app.providers.tts.piper import PiperTextToSpeech

TARGETS = {
    "piper_rtf": 0.1, "espeak_rtf_en": 0.01, "espeak_rtf_zh": 0.01, "whisper_rtf_5s": 0.5,
    "whisper_rtf_10s": 0.5, "whisper_rtf_5s_en": 0.5, "whisper_rtf_10s_en": 0.5,
    "whisper_wer": 0.10, "piper_first_chunk_ms": 150.0, "espeak_first_chunk_ms": 150.0,
    "rss_mb": 1536.0,
}
ENGLISH_PASSAGE = (
    "The library opens at nine in the morning and closes late in the evening. "
    "Many students come here to read quietly, and some of them stay all day. "
    "On weekends the reading room is full, so it is better to arrive early."
)
MANDARIN_PASSAGE = "今天天气很好，我们一起去公园散步。公园里有很多花，还有一个安静的小湖。"
CLIP_5S = "The quick brown fox jumps over the lazy dog. Please remember to bring your umbrella."
CLIP_10S = (
    "Every morning I walk to the station and buy a cup of coffee. "
    "The train to the city leaves from platform four in ten minutes. "
    "My sister is learning to play the piano, and she practices every day."
)
WER_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to bring your umbrella tomorrow.",
    "Every morning I walk to the station and buy a cup of coffee.",
    "The library opens at nine and closes late in the evening.",
    "My sister is learning to play the piano.",
    "We visited the museum on Sunday and saw many paintings.",
    "Could you send me the report before the meeting on Friday?",
    "Technology changes quickly, but good habits last a lifetime.",
    "The weather is lovely today, so we are going for a walk.",
    "She bought fresh bread, cheese and apples at the market.",
)
FIRST_CHUNK_SENTENCE = "Hello, how can I help you today?"


def rss_mb() -> float:
    """This process's resident memory, from /proc/self/status (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def synthesis_rtf(engine: Any, text: str, voice: str | None, runs: int = 3) -> float:
    """Median synthesis time ÷ audio length."""
    ratios = []
    for _ in range(runs):
        chunk, elapsed = _timed(lambda: engine.synthesize(text, SynthesisOptions(voice=voice)))
        ratios.append(elapsed / (len(chunk.pcm) / 2 / chunk.sample_rate))
    return statistics.median(ratios)


def first_chunk_ms(engine: Any, text: str, voice: str | None, runs: int = 7) -> float:
    """Median time until a warm engine hands over its first audio chunk."""
    times = []
    for _ in range(runs):
        stream = engine.synthesize_stream(text, SynthesisOptions(voice=voice))
        _, elapsed = _timed(partial(next, stream))
        stream.close()
        times.append(elapsed * 1000)
    return statistics.median(times)


def recognition_rtf(whisper: WhisperSpeechToText, wav: bytes, seconds: float,
                    language: str | None, runs: int = 3) -> float:
    """Median recognition time ÷ clip length."""
    return statistics.median(
        _timed(lambda: whisper.transcribe(wav, language=language))[1] / seconds
        for _ in range(runs)
    )


def piper_clip(piper: PiperTextToSpeech, text: str) -> tuple[bytes, float]:
    chunk = piper.synthesize(text, SynthesisOptions())
    return encode(chunk.pcm, chunk.sample_rate, "wav"), len(chunk.pcm) / 2 / chunk.sample_rate


def run(model_dir: Path) -> dict[str, float]:
    figures: dict[str, float] = {"rss_mb_at_start": rss_mb()}
    piper = PiperTextToSpeech({})
    espeak = EspeakTextToSpeech({})
    whisper = WhisperSpeechToText({"WHISPER_MODEL_DIR": str(model_dir), "WHISPER_THREADS": 2})
    figures["piper_load_s"] = _timed(piper.warm_up)[1]
    figures["espeak_load_s"] = _timed(espeak.warm_up)[1]
    figures["whisper_load_s"] = _timed(whisper.warm_up)[1]
    piper.synthesize("Warm up.", SynthesisOptions())
    figures["piper_rtf"] = synthesis_rtf(piper, ENGLISH_PASSAGE, None)
    figures["espeak_rtf_en"] = synthesis_rtf(espeak, ENGLISH_PASSAGE, "en-us")
    figures["espeak_rtf_zh"] = synthesis_rtf(espeak, MANDARIN_PASSAGE, "cmn")
    figures["piper_first_chunk_ms"] = first_chunk_ms(piper, FIRST_CHUNK_SENTENCE, None)
    figures["espeak_first_chunk_ms"] = first_chunk_ms(espeak, FIRST_CHUNK_SENTENCE, "en-us")
    for name, text in (("5s", CLIP_5S), ("10s", CLIP_10S)):
        wav, seconds = piper_clip(piper, text)
        whisper.transcribe(wav, language="en")
        figures[f"clip_{name}_seconds"] = seconds
        figures[f"whisper_rtf_{name}"] = recognition_rtf(whisper, wav, seconds, None)
        figures[f"whisper_rtf_{name}_en"] = recognition_rtf(whisper, wav, seconds, "en")
    errors = []
    for sentence in WER_SENTENCES:
        wav, _ = piper_clip(piper, sentence)
        errors.append(word_error_rate(sentence, whisper.transcribe(wav).text))
    figures["whisper_wer"] = statistics.mean(errors)
    figures["rss_mb"] = rss_mb()
    return figures


def _row(label: str, key: str, value: float, unit: str = "") -> str:
    target = TARGETS.get(key)
    if target is None:
        return f"  {label:<44} {value:>10.3f}{unit}"
    verdict = "ok" if value <= target else "MISSED"
    return f"  {label:<44} {value:>10.3f}{unit}   target ≤ {target:g}{unit}   {verdict}"


def report(figures: dict[str, float]) -> str:
    rows: Sequence[tuple[str, str, str]] = (
        ("Piper load (s)", "piper_load_s", ""),
        ("eSpeak NG initialise (s)", "espeak_load_s", ""),
        ("Whisper base assemble + load (s)", "whisper_load_s", ""),
        ("Piper RTF, English passage", "piper_rtf", ""),
        ("eSpeak NG RTF, English passage", "espeak_rtf_en", ""),
        ("eSpeak NG RTF, Mandarin passage", "espeak_rtf_zh", ""),
        ("Piper first chunk, one sentence", "piper_first_chunk_ms", " ms"),
        ("eSpeak NG first chunk, one sentence", "espeak_first_chunk_ms", " ms"),
        (f"Whisper RTF, {figures['clip_5s_seconds']:.1f} s clip, language detected",
         "whisper_rtf_5s", ""),
        (f"Whisper RTF, {figures['clip_5s_seconds']:.1f} s clip, language='en'",
         "whisper_rtf_5s_en", ""),
        (f"Whisper RTF, {figures['clip_10s_seconds']:.1f} s clip, language detected",
         "whisper_rtf_10s", ""),
        (f"Whisper RTF, {figures['clip_10s_seconds']:.1f} s clip, language='en'",
         "whisper_rtf_10s_en", ""),
        (f"Whisper WER, {len(WER_SENTENCES)} Piper sentences", "whisper_wer", ""),
        ("Resident memory, all models loaded (MB)", "rss_mb", " MB"),
    )
    lines = ["Local engines (2 Whisper threads, int8; medians of repeated runs)"]
    lines += [_row(label, key, figures[key], unit) for label, key, unit in rows]
    return "\n".join(lines)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-whisper-") as folder:
        figures = run(Path(folder))
    print(report(figures))
    publish("engines", {key: round(value, 4) for key, value in figures.items()})


if __name__ == "__main__":
    main()
