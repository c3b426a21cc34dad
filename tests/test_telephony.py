"""G.711 µ-law / A-law as the Realtime API's telephone formats carry them: the
standard's values for known codes, and speech-like audio through encode and decode."""

from __future__ import annotations

import numpy as np
import pytest

from webapp.app.audio import telephony


def test_known_codes_decode_to_the_standards_values() -> None:
    ulaw = np.frombuffer(telephony.g711_decode(bytes([0xFF, 0x7F, 0x00, 0x80]), "g711_ulaw"),
                         dtype=np.int16)
    assert ulaw.tolist() == [0, 0, -32124, 32124]
    alaw = np.frombuffer(telephony.g711_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "g711_alaw"),
                         dtype=np.int16)
    assert alaw.tolist() == [8, -8, 32256, -32256]


@pytest.mark.parametrize("law", ["g711_ulaw", "g711_alaw"])
def test_a_round_trip_keeps_the_signal_within_g711s_step(law: str) -> None:
    t = np.arange(8000) / 8000
    samples = (np.sin(2 * np.pi * 440 * t) * 12000 * np.linspace(0.05, 1, 8000)).astype(np.int16)
    encoded = telephony.g711_encode(samples.tobytes(), law)
    assert len(encoded) == len(samples)
    back = np.frombuffer(telephony.g711_decode(encoded, law), dtype=np.int16).astype(int)
    error = np.abs(back - samples.astype(int))
    # A logarithmic code: the step grows with the level, about 1/16 of it at most.
    assert np.all(error <= np.abs(samples.astype(int)) / 16 + 16)
    snr = 10 * np.log10(np.sum(samples.astype(float) ** 2) / np.sum(error.astype(float) ** 2))
    assert snr > 30


def test_channels_are_mixed_down() -> None:
    stereo = np.array([100, 300, -200, -400], dtype=np.int16).tobytes()
    mono = np.frombuffer(telephony.to_mono(stereo, 2), dtype=np.int16)
    assert mono.tolist() == [200, -300]
