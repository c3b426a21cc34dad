"""faster-whisper's model without one costly habit: re-reading the last fraction of a second.

With word timestamps, faster-whisper (as OpenAI's Whisper) moves to the end of the last
word it found and reads what is left of the audio as a new 30-second window. After a
finished sentence, what is left is the voice detector's padding: a few hundred
milliseconds of breath or silence. Whisper writes something there anyway ("字幕製作人",
"作词作曲"), fails its own quality checks and retries at five more temperatures with five
samples each: a 3-second Mandarin clip took 11 s of CPU instead of 1.5 s, and ended in
the invented words (faster-whisper issue #1100; the option proposed for it upstream,
``retry_on_leftover_audio``, was not merged).

This model does not read such a leftover: a window after the first that holds less than
``LEFTOVER_SECONDS`` of audio counts as silence. Half a second is shorter than any word
Whisper could have missed there: a word that short at the end of a window was in the
window before, which was read whole.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from faster_whisper import WhisperModel

LEFTOVER_SECONDS = 0.5


def content_frames(features: np.ndarray) -> int:
    """How many of a window's feature frames hold audio rather than zero padding.

    faster-whisper pads a short window to 30 s with columns of exact zeros; a log-mel
    column of real audio, even of digital silence, is never all zeros.
    """
    frames = features.reshape(-1, features.shape[-1])
    filled = np.flatnonzero(frames.any(axis=0))
    return int(filled[-1]) + 1 if filled.size else 0


class LeftoverSkippingWhisperModel(WhisperModel):
    """``WhisperModel`` that treats a short leftover window as silence.

    Not safe for two transcriptions at once (the window being read is kept on the
    instance); the engine holds a lock around every use.
    """

    def generate_segments(self, *args: Any, **kwargs: Any) -> Any:
        self._windows_read = 0
        yield from super().generate_segments(*args, **kwargs)

    def encode(self, features: np.ndarray) -> Any:
        self._window_frames = content_frames(features)
        return super().encode(features)

    def generate_with_fallback(self, encoder_output: Any, prompt: list[int],
                               tokenizer: Any, options: Any) -> tuple[Any, float, float, float]:
        self._windows_read += 1
        leftover = self._window_frames < LEFTOVER_SECONDS * self.frames_per_second
        if self._windows_read > 1 and leftover and options.no_speech_threshold is not None:
            # What faster-whisper skips as "no speech": certain silence, no confident text.
            silence = SimpleNamespace(sequences_ids=[[]], scores=[float("-inf")],
                                      no_speech_prob=1.0)
            return silence, float("-inf"), 0.0, 0.0
        return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)
