from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE, iso, new_uuid, utcnow


class Voice(db.Model):
    """One voice library for every seed: engines' built-in voices and users' cloned ones.

    ``voice_type`` is what roles and requests name: ``engine:voice`` for built-ins, the
    voice id for cloned voices.
    """

    __tablename__ = "voices"
    __table_args__ = (Index("ix_voices_owner_created", "owner_id", "created_at"),
                      Index("ix_voices_public_status", "is_public", "status"), MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    voice_type: Mapped[str] = mapped_column(String(160), unique=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    gender: Mapped[str] = mapped_column(String(16), default="unknown")
    description: Mapped[str] = mapped_column(String(500), default="")
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    category: Mapped[str] = mapped_column(String(32), default="")
    language: Mapped[str | None] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    engine: Mapped[str] = mapped_column(String(32))
    provider_voice_id: Mapped[str] = mapped_column(String(160), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    is_public: Mapped[bool] = mapped_column(default=False)
    builtin: Mapped[bool] = mapped_column(default=False)
    sample_key: Mapped[str | None] = mapped_column(String(255))
    preview_file_id: Mapped[str | None] = mapped_column(
        ForeignKey("files.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    model: Mapped[VoiceModel | None] = relationship(back_populates="voice", uselist=False,
                                                    cascade="all, delete-orphan")

    def to_dict(self) -> dict[str, Any]:
        return {"voice_id": self.id, "voice_type": self.voice_type, "name": self.name,
                "gender": self.gender, "description": self.description,
                "labels": self.labels or {}, "category": self.category,
                "language": self.language, "provider": self.provider, "engine": self.engine,
                "provider_voice_id": self.provider_voice_id, "status": self.status,
                "error": self.error, "is_public": self.is_public, "builtin": self.builtin,
                "owner_id": self.owner_id, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at)}


class VoiceModel(db.Model):
    """A voice's model: what an engine needs to speak with a voice."""

    __tablename__ = "voice_models"
    __table_args__ = (MYSQL_TABLE,)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    voice_id: Mapped[str] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"),
                                          unique=True)
    model_file_path: Mapped[str | None] = mapped_column(String(500))
    training_file_id: Mapped[str | None] = mapped_column(
        ForeignKey("files.id", ondelete="SET NULL"))
    model_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    local_training: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    voice: Mapped[Voice] = relationship(back_populates="model")

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.id, "voice_id": self.voice_id,
                "model_file_path": self.model_file_path,
                "training_file_id": self.training_file_id,
                "metadata": self.model_metadata or {}, "local_training": self.local_training}
