"""Voices "cloned" by approximation, for the local engines that cannot clone.

A speaker is matched by one of the engine's own voices, re-pitched and re-paced: the
engine measures the user's sample and the base voice, and ``add_voice`` returns the
factors that turn one into the other (``dsp.approximation_metadata``). The approximated
voices live only in the service's library, so the engine has nothing to edit or delete.
"""

from __future__ import annotations

from abc import ABC
from typing import Any

from webapp.app.audio import AudioError, dsp
from webapp.app.providers.base import LocalModelTextToSpeech, ProviderError, SynthesisOptions

FEMALE_PITCH_HZ = 165.0
"""A sample whose median pitch is above this picks a female base voice."""


def gender_of(profile: dsp.VoiceProfile) -> str:
    """``female`` or ``male``, guessed from the measured pitch."""
    return "female" if (profile.pitch_hz or 0.0) > FEMALE_PITCH_HZ else "male"


class ApproximatingTextToSpeech(LocalModelTextToSpeech, ABC):
    """A local engine whose ``add_voice`` approximates a speaker by one of its voices."""

    def profile_sample(self, input_file: bytes | str) -> dsp.VoiceProfile:
        """The speaker's pitch and pace, measured on their sample (``bad_input`` when the
        sample is unreadable, too short or has no speech)."""
        try:
            return dsp.profile_sample(dsp.pcm_from_source(input_file), 16000)
        except (AudioError, dsp.UnusableSample) as exc:
            raise ProviderError(self.name, "bad_input", f"voice sample: {exc}") from exc

    def profile_own_voice(self, text: str, voice: str | None = None) -> dsp.VoiceProfile:
        """One of this engine's voices measured while it speaks ``text``."""
        chunks = list(self.synthesize_stream(text, SynthesisOptions(voice=voice)))
        return dsp.profile_voice(b"".join(chunk.pcm for chunk in chunks), chunks[0].sample_rate)

    def delete_voice(self, voice_id: str) -> bool:
        """Approximated voices live in the service's library; nothing to remove here."""
        return True

    def edit_voice(self, voice_id: str, new_details: dict[str, Any]) -> bool:
        return True
