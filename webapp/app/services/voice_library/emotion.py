"""The voice API's emotions (happy, sad, angry, …) as prosody: every engine changes rate,
pitch and volume; engines with their own emotion or instruction control also get told in
words."""

from __future__ import annotations

from dataclasses import replace

from webapp.app.audio import dsp
from webapp.app.providers.base import SynthesisOptions

EMOTIONS = ("intense", "neutral", "calm")

# Full-intensity change of (speed, pitch, volume) as fractions.
_PROSODY = {"intense": (0.25, 0.15, 0.35), "neutral": (0.0, 0.0, 0.0),
            "calm": (-0.2, -0.1, -0.3)}
_INSTRUCTION = {"intense": "用激动、强烈、坚定的语气说", "calm": "用平静、舒缓、温和的语气说"}


def apply(options: SynthesisOptions, emotion: str, intensity: float) -> SynthesisOptions:
    """The options with the emotion's prosody scaled by ``intensity`` (0–1)."""
    speed, pitch, volume = _PROSODY[emotion]
    out = replace(options)
    out.speed = dsp.clamp(options.speed * (1 + speed * intensity), 0.5, 2.0)
    out.pitch = dsp.clamp(options.pitch * (1 + pitch * intensity), 0.5, 2.0)
    out.volume = dsp.clamp(options.volume * (1 + volume * intensity), 0.0, 2.0)
    out.emotion = emotion
    out.emotion_intensity = intensity
    if emotion in _INSTRUCTION and intensity > 0:
        out.instruction = _INSTRUCTION[emotion]
    return out
