"""Per-user voice settings and per-agent (role) voice profiles."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import current_app
from sqlalchemy import select

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.models import Role, Voice, VoiceProfile, VoiceSettings
from webapp.app.models.playback import ROLE_AGENT_TYPE
from webapp.app.ownership import visible
from webapp.app.services.voice_library import voices

_SETTINGS = {"autoPlay": "auto_play", "defaultVolume": "default_volume",
             "playbackSpeed": "playback_speed", "voiceEnabled": "voice_enabled",
             "backgroundPlay": "background_play", "autoAdvance": "auto_advance",
             "preferredProvider": "preferred_provider"}
_PROFILE = {"voiceName": "voice_name", "voiceGender": "voice_gender", "voiceAge": "voice_age",
            "basePitch": "base_pitch", "baseSpeed": "base_speed", "baseVolume": "base_volume",
            "ttsProvider": "tts_provider", "agentType": "agent_type"}
_GENDERS = {"男": "male", "女": "female"}
Row = TypeVar("Row", VoiceSettings, VoiceProfile)


def settings(user_id: int) -> VoiceSettings:
    """The user's settings; defaults until they change one."""
    row = db.session.get(VoiceSettings, user_id)
    if row is None:
        registry = current_app.extensions["providers"]
        preferred = "aliyun" if registry.is_configured("tts", "dashscope") else "local"
        row = VoiceSettings(user_id=user_id, auto_play=True, default_volume=0.8,
                            playback_speed=1.0, voice_enabled=True, background_play=False,
                            auto_advance=True, preferred_provider=preferred)
    return row


def _save(row: Row, columns: dict[str, str], changes: dict[str, Any]) -> Row:
    """Store the changed wire fields of ``row`` (``columns`` maps each to its column)."""
    for field, column in columns.items():
        if field in changes:
            setattr(row, column, changes[field])
    db.session.add(row)
    db.session.commit()
    return row


def update_settings(user_id: int, changes: dict[str, Any]) -> VoiceSettings:
    return _save(settings(user_id), _SETTINGS, changes)


def _role(agent_id: int, user_id: int) -> Role:
    """The role behind a profile, if the user may read it (own or public)."""
    return visible(Role, agent_id, user_id,
                   ApiError(404, "voice_profile_not_found", "VOICE_PROFILE_NOT_FOUND"))


def profile(agent_id: int, user_id: int) -> VoiceProfile:
    """A role's stored profile, or the one its voice implies."""
    role = _role(agent_id, user_id)
    row = db.session.get(VoiceProfile, agent_id)
    if row is None:
        voice = db.session.scalar(select(Voice).where(Voice.voice_type == role.voice_type))
        row = VoiceProfile(agent_id=role.id, agent_type=ROLE_AGENT_TYPE, voice_name=role.voice_type,
                           voice_gender=_GENDERS.get(role.gender), voice_age=None,
                           base_pitch=1.0, base_speed=1.0, base_volume=1.0,
                           tts_provider=voice.provider if voice else "local")
    return row


def update_profile(agent_id: int, owner_id: int, changes: dict[str, Any]) -> VoiceProfile:
    role = _role(agent_id, owner_id)
    if role.owner_id != owner_id:
        raise ApiError(403, "role_update_denied", "FORBIDDEN")
    row = profile(agent_id, owner_id)
    if "voiceName" in changes:
        changes["voiceName"] = voices.resolve_usable(changes["voiceName"], owner_id,
                                                     "INVALID_VOICE_PARAMETER").voice_type
    return _save(row, _PROFILE, changes)
