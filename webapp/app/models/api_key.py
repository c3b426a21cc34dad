from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE, iso, new_uuid, utcnow


class ApiKey(db.Model):
    """A secret a program sends instead of a JWT; only its hash and prefix are kept."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_owner_created", "owner_id", "created_at", "id"),
                      MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    history: Mapped[bool] = mapped_column(default=True)
    monthly_characters: Mapped[int | None] = mapped_column(BigInteger)
    monthly_audio_seconds: Mapped[float | None] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    def to_dict(self) -> dict:
        return {"key_id": self.id, "name": self.name, "prefix": self.prefix,
                "history": self.history, "monthly_characters": self.monthly_characters,
                "monthly_audio_seconds": self.monthly_audio_seconds,
                "created_at": iso(self.created_at), "last_used_at": iso(self.last_used_at)}


class ApiKeyUsage(db.Model):
    """What a key used in one calendar month (UTC), counted by atomic updates."""

    __tablename__ = "api_key_usage"
    __table_args__ = (MYSQL_TABLE,)

    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                        primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    characters: Mapped[int] = mapped_column(BigInteger, default=0)
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
