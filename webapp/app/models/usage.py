from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from webapp.app.extensions import db
from webapp.app.models.common import MYSQL_TABLE


class UserDailyUsage(db.Model):
    """What one user used on one day (UTC), on every path; counted by atomic updates."""

    __tablename__ = "user_daily_usage"
    __table_args__ = (MYSQL_TABLE,)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    characters: Mapped[int] = mapped_column(BigInteger, default=0)
    audio_seconds: Mapped[float] = mapped_column(Float, default=0.0)
