"""Column helpers shared by the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

MYSQL_TABLE = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
# Integer ids must never be handed out twice: SQLite reuses the highest deleted rowid
# unless the table is AUTOINCREMENT, and a reused user or role id would inherit what
# still points at the deleted one (tokens, sessions, profiles).
NEVER_REUSED_IDS = {**MYSQL_TABLE, "sqlite_autoincrement": True}


def utcnow() -> datetime:
    """Naive UTC, the same on SQLite and MySQL."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuid.uuid4())


def iso(moment: datetime | None) -> str | None:
    return moment.replace(microsecond=0).isoformat() + "Z" if moment else None
