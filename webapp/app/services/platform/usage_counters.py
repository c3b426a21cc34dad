"""Characters and audio seconds counted in one row per owner and period: a user's day
(``user_daily_usage``) and an API key's month (``api_key_usage``).

Adding checks the limits in the same ``UPDATE`` that adds: two requests racing for the
last of an allowance cannot both get it, on SQLite as on MariaDB, in threads, green
threads or several processes. A request that fails afterwards takes its count back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import mysql, sqlite

from webapp.app.extensions import db


def _ensure_row(table: Any, row: Mapping[str, Any]) -> None:
    """The period's row, inserted at zero unless it is there (never raising on a race)."""
    values = {**row, "characters": 0, "audio_seconds": 0.0}
    if db.session.get_bind().dialect.name == "sqlite":
        statement = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    else:
        statement = mysql.insert(table).values(**values)
        first = next(iter(row))
        statement = statement.on_duplicate_key_update({first: statement.inserted[first]})
    db.session.execute(statement)


@dataclass(frozen=True)
class Charge:
    """What one request was counted for in one row, so that a failed request can give it
    back (``refund``)."""

    table: Any
    row: Mapping[str, Any]
    characters: int = 0
    audio_seconds: float = 0.0


def add(table: Any, row: Mapping[str, Any], *, characters: int = 0,
        audio_seconds: float = 0.0, max_characters: int | None = None,
        max_audio_seconds: float | None = None) -> Charge | None:
    """Add to the row named by ``row`` (its key columns) unless that would pass a limit
    (``None``: no limit); committed. None when refused, and nothing was added."""
    _ensure_row(table, row)
    statement = update(table).filter_by(**row)
    if max_characters is not None and characters:
        statement = statement.where(table.characters + characters <= max_characters)
    if max_audio_seconds is not None and audio_seconds:
        statement = statement.where(table.audio_seconds + audio_seconds <= max_audio_seconds)
    result = db.session.execute(statement.values(
        characters=table.characters + characters,
        audio_seconds=table.audio_seconds + audio_seconds))
    db.session.commit()
    return Charge(table, row, characters, audio_seconds) if result.rowcount == 1 else None


def refund(spent: Charge | None) -> None:
    """Give back what a failed request was counted for; what it left unsaved is dropped."""
    if spent is None or not (spent.characters or spent.audio_seconds):
        return
    db.session.rollback()
    db.session.execute(update(spent.table).filter_by(**spent.row).values(
        characters=spent.table.characters - spent.characters,
        audio_seconds=spent.table.audio_seconds - spent.audio_seconds))
    db.session.commit()
