"""Under eventlet: Piper, eSpeak NG and Whisper called at once from green threads through
``run_blocking`` / ``iterate_blocking``, while a green ticker ticks every 20 ms.

Records on which OS thread each piece of engine work ran (the loop's own thread would
mean the loop was held for it) and when the ticker ran. Argument: the Whisper model
folder. Prints one JSON line: results, elapsed seconds, the loop's thread, the threads
the engines ran on, tick times, and the worst gap between ticks (a figure for
``bench loop``; it depends on the machine's load).
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

from eventlet import patcher  # noqa: E402

from webapp.app.audio import encode  # noqa: E402
from webapp.app.concurrency import iterate_blocking, run_blocking  # noqa: E402
from webapp.app.providers.base import SynthesisOptions  # noqa: E402
from webapp.app.providers.stt.whisper import WhisperSpeechToText  # noqa: E402
from webapp.app.providers.tts.espeak import EspeakTextToSpeech  # noqa: E402
from webapp.app.providers.tts.piper import PiperTextToSpeech  # noqa: E402

OVERALL_TIMEOUT = 60
TICK = 0.02
# The OS thread's id (a green thread's id would be the greenlet's, after monkey_patch).
os_thread = patcher.original("threading").get_ident
engine_threads: set[int] = set()


def on_record(items: Iterator[Any]) -> Iterator[Any]:
    """``items``, noting the OS thread each one is made on."""
    while True:
        engine_threads.add(os_thread())
        try:
            item = next(items)
        except StopIteration:
            return
        yield item


def recorded(fn: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        engine_threads.add(os_thread())
        return fn(*args)

    return call


def main() -> None:
    piper = PiperTextToSpeech({})
    espeak = EspeakTextToSpeech({})
    whisper = WhisperSpeechToText({"WHISPER_MODEL_DIR": sys.argv[1]})
    for engine in (piper, espeak, whisper):
        run_blocking(engine.warm_up)
    clip = run_blocking(piper.synthesize, "Please open the window.", SynthesisOptions())
    sample = encode(clip.pcm, clip.sample_rate, "wav")

    ticks: list[float] = []
    running = True

    def ticker() -> None:
        ticks.append(time.monotonic())
        while running:
            eventlet.sleep(TICK)
            ticks.append(time.monotonic())

    def talk(index: int) -> int:
        size = 0
        text = f"Speaker {index} says hello. This is a second sentence."
        english = piper.synthesize_stream(text, SynthesisOptions())
        for chunk in iterate_blocking(on_record(iter(english))):
            size += len(chunk.pcm)
        mandarin = espeak.synthesize_stream("今天天气很好。再见。", SynthesisOptions(voice="cmn"))
        for chunk in iterate_blocking(on_record(iter(mandarin))):
            size += len(chunk.pcm)
        return size

    def listen() -> str:
        return run_blocking(recorded(whisper.transcribe), sample, "en").text

    ticker_thread = eventlet.spawn(ticker)
    eventlet.sleep(0.1)
    started = time.monotonic()
    workers = [eventlet.spawn(talk, i) for i in range(4)] + [eventlet.spawn(listen)]
    with eventlet.Timeout(OVERALL_TIMEOUT):
        results = [worker.wait() for worker in workers]
    ended = time.monotonic()
    running = False
    ticker_thread.wait()
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    print(json.dumps({"results": results, "elapsed": ended - started, "started": started,
                      "ended": ended, "loop_thread": os_thread(),
                      "engine_threads": sorted(engine_threads), "ticks": ticks,
                      "worst_gap": max(gaps)}))


if __name__ == "__main__":
    main()
