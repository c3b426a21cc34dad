"""Raw sample formats of real-time protocols: G.711 µ-law and A-law (8 kHz telephone
audio, which OpenAI's Realtime API offers beside 24 kHz PCM) and interleaved channels.

G.711 is a fixed table per byte, so decoding is one lookup and encoding one search
in the sorted table of the 256 values: both vectorised with numpy, no codec library
needed (the standard library's ``audioop`` is deprecated and gone in Python 3.13).
"""

from __future__ import annotations

import numpy as np

G711_RATE = 8000


def _ulaw_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign, exponent, mantissa = codes & 0x80, (codes >> 4) & 0x07, codes & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8,
                         ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


_TABLES = {"g711_ulaw": _ulaw_table(), "g711_alaw": _alaw_table()}
# For encoding: the table's values sorted, with the byte that decodes to each.
_SORTED = {name: (np.sort(table.astype(np.int32)), np.argsort(table.astype(np.int32)))
           for name, table in _TABLES.items()}


def g711_decode(data: bytes, law: str) -> bytes:
    """G.711 bytes (``g711_ulaw`` or ``g711_alaw``) → 16-bit PCM at the same 8 kHz."""
    return _TABLES[law][np.frombuffer(data, dtype=np.uint8)].tobytes()


def g711_encode(pcm: bytes, law: str) -> bytes:
    """16-bit PCM (8 kHz) → G.711 bytes: each sample becomes the nearest code."""
    values, codes = _SORTED[law]
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.int32)
    right = np.clip(np.searchsorted(values, samples), 1, len(values) - 1)
    left = right - 1
    nearest = np.where(samples - values[left] <= values[right] - samples, left, right)
    return codes[nearest].astype(np.uint8).tobytes()


def to_mono(pcm: bytes, channels: int) -> bytes:
    """Interleaved 16-bit PCM of ``channels`` channels → their mean, one channel."""
    if channels <= 1 or not pcm:
        return pcm
    samples = np.frombuffer(pcm[:len(pcm) - len(pcm) % (2 * channels)], dtype=np.int16)
    return samples.reshape(-1, channels).mean(axis=1).astype(np.int16).tobytes()
