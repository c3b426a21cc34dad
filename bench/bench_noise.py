"""Does noise suppression pay? ``python -m bench noise``.

Real recorded speech (``tests/data/speech``: two English, two Mandarin speakers) with
noise mixed in at 10 and 5 dB SNR over its voiced part (other people talking, a fan,
music: ``tests/helpers/recordings.py``), heard as a call hears it, with DeepFilterNet
off, ``near_field`` and ``far_field`` (``webapp/app/audio/denoise.py``, fed in 40 ms
pieces as a call's audio arrives). For each noise and mode it prints:

- ``error``: the recognition error of what a call's recogniser makes of the sentence
  (Moonshine for English, word error rate; Whisper base for Mandarin, character error
  rate), averaged over the four recordings; ``clean`` is the same without noise;
- ``false_turns``: turns the call's voice detector would start in four seconds of that
  noise alone (at least ``CALL_MIN_SPEECH_MS`` of windows scored as speech), over the
  four recordings' noise;
- the CPU time suppression costs per second of audio.

The figures are the engines', not a call's end to end: they say whether the cleaned
audio is heard better, which is what the option is for.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from bench.figures import publish
from tests.helpers import recordings
from tests.helpers.mandarin import character_error_rate
from tests.helpers.transcripts import word_error_rate
from webapp.app.audio import denoise
from webapp.app.audio.vad import WINDOW, SpeechScorer
from webapp.app.providers.stt.moonshine import MoonshineSpeechToText
from webapp.app.providers.stt.whisper import WhisperSpeechToText

RATE = recordings.RATE
PIECE = RATE * 2 * 40 // 1000  # 40 ms of 16-bit audio, as a call's pieces come
MIN_SPEECH_MS = 250
SAID = {
    "en-librispeech-1995-1837-0001": (
        "en", "It was the first great sorrow of his life. It was not so much the loss of "
              "the cotton itself but the fantasy, the hopes, the dreams built around it."),
    "en-jfk-ask-not": (
        "en", "And so my fellow Americans, ask not what your country can do for you, ask "
              "what you can do for your country."),
    "zh-aishell-BAC009S0724W0121": ("zh", "广州市房地产中介协会分析"),
    "zh-wenet-long": ("zh", "富士康在印度工厂出现大规模感染目前工厂产量已下降超百分之五十"),
}
MODES = ("off", "near_field", "far_field")


def cleaned(pcm: bytes, mode: str) -> bytes:
    if mode == "off":
        return pcm
    denoiser = denoise.Denoiser(mode)
    try:
        return b"".join(denoiser.process(pcm[at:at + PIECE]) for at in range(0, len(pcm), PIECE))
    finally:
        denoiser.close()


def false_turns(pcm: bytes) -> int:
    """Turns a call would start: runs of speech-scored windows ≥ ``MIN_SPEECH_MS``."""
    needed = MIN_SPEECH_MS * RATE // 1000 // WINDOW + 1
    turns = run = 0
    for _, probability in SpeechScorer().score(pcm):
        run = run + 1 if probability >= 0.5 else 0
        turns += run == needed
    return turns


def error_of(language: str, said: str, heard: str) -> float:
    if language == "en":
        return word_error_rate(said, heard)

    def characters(text: str) -> list[str]:
        return [c for c in text if c.strip() and c not in "，。,.!?？！%"]

    edits, length = character_error_rate(characters(said), characters(heard))
    return edits / length


def main() -> None:
    moonshine = MoonshineSpeechToText({})
    whisper = WhisperSpeechToText({})
    moonshine.warm_up()
    whisper.warm_up()
    denoise.warm_up()

    def recognise(language: str, pcm: bytes) -> str:
        engine = moonshine if language == "en" else whisper
        return engine.transcribe_decoded(pcm, language).text

    def over_recordings(make: Callable[[str, str, bytes], float]) -> float:
        return statistics.mean(make(language, said, recordings.recording(name))
                               for name, (language, said) in SAID.items())

    figures: dict[str, float] = {"clean_error": round(over_recordings(
        lambda language, said, speech: error_of(language, said, recognise(language, speech))),
        3)}
    print(f"clean speech: error {figures['clean_error']:.2f}")
    print(f"{'noise':14} {'mode':11} {'error':>6} {'false turns':>12}")
    for snr in (10, 5):
        for noise in ("babble", "fan", "music"):
            for mode in MODES:
                errors, turns = [], 0
                for seed, (name, (language, said)) in enumerate(SAID.items()):
                    speech = recordings.recording(name)
                    sound = getattr(recordings, noise)(len(speech) / RATE / 2 + 4, seed=seed)
                    noisy = recordings.mix(speech, sound, snr)
                    alone = recordings.noise_alone(speech, sound, snr, seconds=4)
                    errors.append(error_of(language, said, recognise(
                        language, cleaned(noisy, mode))))
                    turns += false_turns(cleaned(alone, mode))
                label = f"{noise}_{snr}db_{mode}"
                figures[f"{label}_error"] = round(statistics.mean(errors), 3)
                figures[f"{label}_false_turns"] = turns
                print(f"{noise + f' {snr} dB':14} {mode:11} {statistics.mean(errors):6.2f} "
                      f"{turns:12d}", flush=True)
    speech = recordings.recording("en-jfk-ask-not")
    started = time.process_time()
    cleaned(speech, "near_field")
    figures["cpu_seconds_per_audio_second"] = round(
        (time.process_time() - started) / (len(speech) / RATE / 2), 3)
    print(f"suppression CPU: {figures['cpu_seconds_per_audio_second']:.3f} s per second "
          "of audio")
    publish("noise", {"bench": "noise", **figures})


if __name__ == "__main__":
    main()
