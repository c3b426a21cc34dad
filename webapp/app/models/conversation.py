from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE, iso, new_uuid, utcnow


class Conversation(db.Model):
    """One conversation (a "session" on the wire), optionally with a role and a voice."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_owner_started", "owner_id", "started_at", "id"),
                      MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id", ondelete="SET NULL"))
    voice_type: Mapped[str | None] = mapped_column("voice_id", String(160))
    """The voice type (``engine:voice``) the conversation speaks with; ``voice_id`` on the wire."""
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    summary: Mapped[str] = mapped_column(Text, default="")
    summary_turns: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.id, "role_id": self.role_id, "voice_id": self.voice_type,
                "title": self.title, "status": self.status, "summary": self.summary,
                "start_time": iso(self.started_at), "end_time": iso(self.ended_at),
                "updated_at": iso(self.updated_at)}


class Message(db.Model):
    """Every message of every kind — typed, spoken, synthesized, transcribed; user or role."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_session_time", "session_id", "timestamp", "id"),
                      MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    role: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    transcription: Mapped[str | None] = mapped_column(Text)
    audio_file_id: Mapped[str | None] = mapped_column(
        ForeignKey("files.id", ondelete="SET NULL"))
    voice_type: Mapped[str | None] = mapped_column("voice_id", String(160))
    format: Mapped[str | None] = mapped_column(String(16))
    duration: Mapped[float | None] = mapped_column()
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)

    def to_dict(self, audio_url: str | None = None) -> dict[str, Any]:
        return {"message_id": self.id, "session_id": self.session_id,
                "timestamp": iso(self.timestamp), "role": self.role, "type": self.type,
                "text": self.text, "transcription": self.transcription,
                "audio_url": audio_url, "voice_id": self.voice_type, "format": self.format,
                "duration": self.duration, "metadata": self.meta or {}}
