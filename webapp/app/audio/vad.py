"""Voice activity: how likely each 32 ms of a live 16 kHz stream is to be speech.

Silero VAD's ONNX model, the copy faster-whisper already ships, run directly under
onnxruntime (no torch). The model is recurrent: each stream keeps its own state and the
last 64 samples of the previous window as context, so a stream is scored piece by piece
exactly as if it had been scored whole. Scoring is CPU work: call ``SpeechScorer.score``
through ``concurrency.run_blocking`` on an event loop.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from webapp.app.concurrency import real_lock

WINDOW = 512  # samples the model scores at a time at 16 kHz (32 ms)
_CONTEXT = 64
_session: list[Any] = []
_session_lock = real_lock()


def _model_path() -> Path:
    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("faster-whisper (which carries Silero VAD) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"


def _shared_session() -> Any:
    """One inference session per process; onnxruntime sessions are safe to share."""
    with _session_lock:
        if not _session:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            options.log_severity_level = 4
            _session.append(onnxruntime.InferenceSession(
                str(_model_path()), providers=["CPUExecutionProvider"], sess_options=options))
        return _session[0]


def warm_up() -> None:
    _shared_session()


class SpeechScorer:
    """Speech probabilities of one stream, one per 32 ms window, in order."""

    def __init__(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = b""

    def score(self, pcm: bytes) -> list[tuple[bytes, float]]:
        """Every whole window completed by ``pcm`` with its probability (the rest waits)."""
        data = self._pending + pcm
        whole = len(data) // (WINDOW * 2) * WINDOW * 2
        self._pending = data[whole:]
        if not whole:
            return []
        raw = np.frombuffer(data[:whole], dtype="<i2").reshape(-1, WINDOW)
        windows = raw.astype(np.float32) / 32768.0
        contexts = np.vstack([self._context, windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        # The model carries its recurrent state across the rows of one batch.
        probs, self._h, self._c = _shared_session().run(
            None, {"input": batch, "h": self._h, "c": self._c})
        return [(row.tobytes(), float(p))
                for row, p in zip(raw, np.asarray(probs).reshape(-1), strict=True)]
