"""Under eventlet: DashScope engines called at once from green threads, against the fake.

Four CosyVoice syntheses, two Qwen streams, two Paraformer recognitions (side by side, in
the recognition process) and one voice enrollment run together while a green ticker ticks
every 20 ms — after one call of each kind, so first-use imports are not counted. Each
task's outcome carries when it started and ended, so a caller can tell whether the calls
overlapped (a call that blocked the loop would run the others after it, one at a time) and
how often the ticker ran meanwhile. Argument: JSON with http_url, ws_url, api_key,
sample_url. Prints one JSON line: finished, per-task outcomes, tick times, the worst gap
between ticks (a figure for ``bench loop``; it depends on the machine's load).
"""

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from webapp.app import audio  # noqa: E402
from webapp.app.providers.base import ChatOptions, SynthesisOptions  # noqa: E402
from webapp.app.providers.llm.dashscope import QwenChatModel  # noqa: E402
from webapp.app.providers.stt.dashscope import ParaformerSpeechToText  # noqa: E402
from webapp.app.providers.tts.dashscope import CosyVoiceTextToSpeech  # noqa: E402

OVERALL_TIMEOUT = 60.0
TICK = 0.02


def speech_wav(seconds: float) -> bytes:
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    return audio.encode(audio.float_to_pcm(0.3 * np.sin(2 * np.pi * 220 * t)), rate, "wav")


def synthesize(tts: CosyVoiceTextToSpeech, index: int) -> dict[str, Any]:
    chunks = list(tts.synthesize_sentence(f"第{index}个并发合成的句子，用来测试绿色线程。",
                                          SynthesisOptions()))
    return {"chunks": len(chunks), "bytes": sum(len(c.pcm) for c in chunks)}


def chat(llm: QwenChatModel, index: int) -> dict[str, Any]:
    pieces = list(llm.stream_chat([{"role": "user", "content": f"问题{index}"}], ChatOptions()))
    return {"pieces": len(pieces), "text": "".join(pieces)}


def recognise(stt: ParaformerSpeechToText, wav: bytes) -> dict[str, Any]:
    started = time.monotonic()
    result = stt.transcribe(wav)
    return {"text": result.text, "segments": len(result.segments),
            "started": started, "ended": time.monotonic()}


def enroll(tts: CosyVoiceTextToSpeech, sample_url: str) -> dict[str, Any]:
    voice = tts.add_voice("green", sample_url)
    statuses = [tts.voice_status(voice.voice_id)]
    deadline = time.monotonic() + 10
    while statuses[-1] != "ready" and time.monotonic() < deadline:
        eventlet.sleep(0.1)
        statuses.append(tts.voice_status(voice.voice_id))
    tts.delete_voice(voice.voice_id)
    return {"voice_id": voice.voice_id, "statuses": sorted(set(statuses))}


def main() -> None:
    options = json.loads(sys.argv[1])
    config = {"DASHSCOPE_API_KEY": options["api_key"],
              "DASHSCOPE_HTTP_BASE_URL": options["http_url"],
              "DASHSCOPE_WEBSOCKET_BASE_URL": options["ws_url"], "DASHSCOPE_TIMEOUT": 15}
    tts = CosyVoiceTextToSpeech(config)
    llm = QwenChatModel(config)
    stt = ParaformerSpeechToText(config)
    wav = speech_wav(1.5)

    ticks: list[float] = []
    running = True

    def ticker() -> None:
        ticks.append(time.monotonic())
        while running:
            eventlet.sleep(TICK)
            ticks.append(time.monotonic())

    jobs: dict[str, Any] = {}
    for i in range(4):
        jobs[f"tts{i}"] = (synthesize, tts, i)
    for i in range(2):
        jobs[f"llm{i}"] = (chat, llm, i)
        jobs[f"stt{i}"] = (recognise, stt, wav)
    jobs["enroll"] = (enroll, tts, options["sample_url"])

    outcomes: dict[str, Any] = {}

    def run(name: str, fn: Any, *args: Any) -> None:
        began = time.monotonic()
        try:
            outcomes[name] = {"ok": True, **fn(*args)}
        except Exception as exc:  # noqa: BLE001 - reported in the JSON
            outcomes[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        outcomes[name].update(began=began, finished=time.monotonic())

    synthesize(tts, 99)
    chat(llm, 99)
    recognise(stt, wav)
    tick = eventlet.spawn(ticker)
    eventlet.sleep(0.1)
    started = time.monotonic()
    pool = [eventlet.spawn(run, name, *job) for name, job in jobs.items()]
    finished = True
    try:
        with eventlet.Timeout(OVERALL_TIMEOUT):
            for green in pool:
                green.wait()
    except eventlet.Timeout:
        finished = False
    elapsed = time.monotonic() - started
    eventlet.sleep(0.1)
    running = False
    tick.wait()
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    print(json.dumps({"finished": finished, "elapsed": elapsed, "outcomes": outcomes,
                      "ticks": ticks, "worst_gap_ms": max(gaps) * 1000},
                     ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
