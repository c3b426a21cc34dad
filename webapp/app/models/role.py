from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import NEVER_REUSED_IDS, iso, utcnow


class Role(db.Model):
    """A role: a character people talk to, with a voice."""

    __tablename__ = "roles"
    __table_args__ = (Index("ix_roles_owner_created", "owner_id", "created_at", "id"),
                      Index("ix_roles_created", "created_at", "id"),
                      Index("ix_roles_public_created", "is_public", "created_at", "id"),
                      NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    gender: Mapped[str] = mapped_column(String(8))
    age: Mapped[int] = mapped_column()
    voice_type: Mapped[str] = mapped_column(String(160))
    is_public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description,
                "gender": self.gender, "age": self.age, "voice_type": self.voice_type,
                "user_id": self.owner_id, "is_public": self.is_public,
                "created_at": iso(self.created_at)}
