from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE, iso, new_uuid, utcnow


class File(db.Model):
    """An audio object in storage: the database keeps its key, never a URL."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_owner_kind_created", "owner_id", "kind", "created_at", "id"),
                      MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), unique=True)
    original_name: Mapped[str] = mapped_column(String(255), default="")
    storage_key: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    duration: Mapped[float] = mapped_column(Float, default=0.0)
    is_public: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(16), default="upload")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def to_dict(self) -> dict:
        return {"file_id": self.id, "filename": self.original_name or self.name,
                "name": self.name, "format": self.format, "size": self.size,
                "duration": round(self.duration, 3), "is_public": self.is_public,
                "kind": self.kind, "created_at": iso(self.created_at)}
