from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE, iso, new_uuid, utcnow


class Job(db.Model):
    """Work done in the background (a Celery task), as its owner sees it."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_deadline", "status", "deadline_at"), MYSQL_TABLE)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    target_id: Mapped[str | None] = mapped_column(String(36))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    celery_task_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    deadline_at: Mapped[datetime] = mapped_column()

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.id, "type": self.type, "status": self.status,
                "result": self.result, "error": self.error, "attempts": self.attempts,
                "target_id": self.target_id, "created_at": iso(self.created_at),
                "updated_at": iso(self.updated_at), "started_at": iso(self.started_at),
                "finished_at": iso(self.finished_at)}
