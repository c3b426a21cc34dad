"""The generated-voice cache, voice settings, agent profiles and playback sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE, NEVER_REUSED_IDS, utcnow

# The seed's agent types are a debate's: "debater", "judge", "audience". A role speaks as
# a "debater"; the other two are accepted on the wire and stored as given.
ROLE_AGENT_TYPE = "debater"


def epoch(moment: datetime | None) -> int | None:
    from datetime import UTC

    return int(moment.replace(tzinfo=UTC).timestamp()) if moment else None


class GeneratedVoice(db.Model):
    """A cached generation: one per user and content; ``message_key`` is the client's."""

    __tablename__ = "generated_voices"
    __table_args__ = (UniqueConstraint("owner_id", "content_key", name="uq_generated_content"),
                      Index("ix_generated_owner_message", "owner_id", "message_key"),
                      Index("ix_generated_owner_accessed", "owner_id", "last_accessed_at"),
                      NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    message_key: Mapped[int] = mapped_column(BigInteger)
    content_key: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(ForeignKey("files.id", ondelete="CASCADE"))
    format: Mapped[str] = mapped_column(String(16))
    duration: Mapped[float] = mapped_column()
    file_size: Mapped[int] = mapped_column(BigInteger)
    emotion_type: Mapped[str] = mapped_column(String(16))
    emotion_intensity: Mapped[float] = mapped_column()
    provider: Mapped[str] = mapped_column(String(32))
    voice_type: Mapped[str] = mapped_column(String(160))
    generation_time: Mapped[float] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_accessed_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageKey(db.Model):
    """Which cached generation a client's message key points at."""

    __tablename__ = "voice_message_keys"
    __table_args__ = (MYSQL_TABLE,)

    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                          primary_key=True)
    message_key: Mapped[int] = mapped_column(BigInteger, primary_key=True,
                                             autoincrement=False)
    generated_voice_id: Mapped[int] = mapped_column(
        ForeignKey("generated_voices.id", ondelete="CASCADE"))


class VoiceSettings(db.Model):
    __tablename__ = "voice_settings"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    auto_play: Mapped[bool] = mapped_column(default=True)
    default_volume: Mapped[float] = mapped_column(default=0.8)
    playback_speed: Mapped[float] = mapped_column(default=1.0)
    voice_enabled: Mapped[bool] = mapped_column(default=True)
    background_play: Mapped[bool] = mapped_column(default=False)
    auto_advance: Mapped[bool] = mapped_column(default=True)
    preferred_provider: Mapped[str] = mapped_column(String(32), default="local")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"userId": str(self.user_id), "autoPlay": self.auto_play,
                "defaultVolume": self.default_volume, "playbackSpeed": self.playback_speed,
                "voiceEnabled": self.voice_enabled, "backgroundPlay": self.background_play,
                "autoAdvance": self.auto_advance, "preferredProvider": self.preferred_provider,
                "updatedAt": epoch(self.updated_at)}


class VoiceProfile(db.Model):
    """How an agent (a role) speaks: its per-agent voice configuration."""

    __tablename__ = "voice_profiles"
    __table_args__ = (MYSQL_TABLE,)

    agent_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"),
                                          primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(16), default=ROLE_AGENT_TYPE)
    voice_name: Mapped[str] = mapped_column(String(160))
    voice_gender: Mapped[str | None] = mapped_column(String(8))
    voice_age: Mapped[str | None] = mapped_column(String(8))
    base_pitch: Mapped[float] = mapped_column(default=1.0)
    base_speed: Mapped[float] = mapped_column(default=1.0)
    base_volume: Mapped[float] = mapped_column(default=1.0)
    tts_provider: Mapped[str] = mapped_column(String(32), default="local")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"agentId": self.agent_id, "agentType": self.agent_type,
                "voiceName": self.voice_name, "voiceGender": self.voice_gender,
                "voiceAge": self.voice_age, "basePitch": self.base_pitch,
                "baseSpeed": self.base_speed, "baseVolume": self.base_volume,
                "ttsProvider": self.tts_provider}


class PlaybackSession(db.Model):
    __tablename__ = "playback_sessions"
    __table_args__ = (Index("ix_playback_owner", "owner_id"), MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The seed's wire name for a conversation is "debateId"; its column keeps that name.
    conversation_id: Mapped[str] = mapped_column(
        "debate_id", ForeignKey("sessions.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="idle")
    playlist: Mapped[list[Any]] = mapped_column(JSON, default=list)
    order: Mapped[list[int]] = mapped_column("play_order", JSON, default=list)
    current_index: Mapped[int] = mapped_column(default=0)
    current_position: Mapped[float] = mapped_column(default=0.0)
    repeat_mode: Mapped[str] = mapped_column(String(8), default="none")
    shuffle: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def current_message_id(self) -> Any:
        if not self.playlist or not self.order:
            return None
        return self.playlist[self.order[self.current_index]]

    def to_dict(self) -> dict[str, Any]:
        return {"sessionId": self.id, "debateId": self.conversation_id,
                "userId": str(self.owner_id), "status": self.status,
                "currentMessageId": self.current_message_id,
                "playlist": self.playlist, "currentPosition": self.current_position,
                "repeatMode": self.repeat_mode, "shuffle": self.shuffle,
                "createdAt": epoch(self.created_at), "updatedAt": epoch(self.updated_at)}
