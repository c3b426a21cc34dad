"""Whether a caller's utterance sounds finished: Smart Turn v3.2, an audio end-of-turn model.

Smart Turn (Daily's pipecat project, BSD-2-Clause) is an 8 MB int8 ONNX model that hears
the last ≤ 8 s of an utterance, intonation and rhythm included, and answers the
probability that the speaker has finished their turn. It ships inside the ``pipecat-ai``
wheel, which is installed without its dependencies (``requirements-nodeps.txt``): only
the model file is read from it, found by location, and pipecat itself is never imported.

Its input is Whisper's 80-band log-mel spectrogram of exactly 8 s, the audio
left-padded with zeros and normalised to zero mean and unit variance first; faster-whisper's
feature extractor computes the same spectrogram (checked against pipecat's own to the
printed digit on recorded speech), so no feature code is copied here. One inference
takes 60–200 ms of CPU: call ``probability`` through ``concurrency.run_blocking``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

from webapp.app.audio import SPEECH_SAMPLE_RATE
from webapp.app.concurrency import real_lock

WINDOW_SAMPLES = 8 * SPEECH_SAMPLE_RATE
_MODEL = Path("audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")
_loaded: list[Any] = []
_load_lock = real_lock()


def model_path() -> Path | None:
    """The model inside the installed ``pipecat-ai`` wheel, or None without it."""
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _MODEL
    return path if path.is_file() else None


def available() -> bool:
    return model_path() is not None


def _model() -> tuple[Any, Any]:
    """One session and feature extractor per process (onnxruntime sessions are shareable)."""
    with _load_lock:
        if not _loaded:
            import onnxruntime
            from faster_whisper.feature_extractor import FeatureExtractor

            path = model_path()
            if path is None:
                raise RuntimeError("Smart Turn needs `pip install --no-deps pipecat-ai==1.14.0`")
            options = onnxruntime.SessionOptions()
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = 1
            options.log_severity_level = 4
            session = onnxruntime.InferenceSession(
                str(path), providers=["CPUExecutionProvider"], sess_options=options)
            _loaded.extend([session, FeatureExtractor(chunk_length=8)])
        return _loaded[0], _loaded[1]


def warm_up() -> None:
    _model()


def probability(pcm: bytes) -> float:
    """How likely the utterance in ``pcm`` (16 kHz mono 16-bit) is finished, 0–1."""
    session, features = _model()
    samples = np.frombuffer(pcm, dtype="<i2")[-WINDOW_SAMPLES:].astype(np.float32) / 32768.0
    samples = np.pad(samples, (WINDOW_SAMPLES - len(samples), 0))
    samples = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)
    mel = features(samples.astype(np.float32), padding=0)[:, :WINDOW_SAMPLES // 160]
    out = session.run(None, {"input_features": mel[np.newaxis].astype(np.float32)})
    return float(np.asarray(out[0]).reshape(-1)[0])
