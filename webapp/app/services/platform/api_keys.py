"""API keys: programs authenticate with one instead of a JWT (OpenAI's clients send it
as ``Authorization: Bearer <key>``), optionally within monthly quotas.

A key is shown once and only its SHA-256 is kept: the key is 256 random bits, so a
fast hash is as safe as a slow one and lets every request be checked in one lookup.
Usage is counted by single conditional ``UPDATE`` statements, so concurrent requests
(threads, green threads, several processes) can neither lose a count nor pass a quota
together, on SQLite as on MariaDB.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from webapp.app.errors import ApiError, not_found
from webapp.app.extensions import db
from webapp.app.models import ApiKey, ApiKeyUsage, Conversation
from webapp.app.models.common import utcnow
from webapp.app.services.platform import usage_counters

KEY_PREFIX = "tsk-"
_SHOWN_PREFIX = 11  # "tsk-" and seven characters: enough to tell keys apart in a list
LAST_USED_RESOLUTION = timedelta(minutes=1)


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def current_month() -> str:
    return utcnow().strftime("%Y-%m")


def create(owner_id: int, name: str, *, monthly_characters: int | None = None,
           monthly_audio_seconds: float | None = None, history: bool = True
           ) -> tuple[ApiKey, str]:
    """A new key and its secret (the only time the secret exists outside the caller)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(owner_id=owner_id, name=name, prefix=secret[:_SHOWN_PREFIX],
                 key_hash=_digest(secret), history=history,
                 monthly_characters=monthly_characters,
                 monthly_audio_seconds=monthly_audio_seconds)
    db.session.add(key)
    db.session.commit()
    return key, secret


def _usage(key_ids: list[str]) -> dict[str, ApiKeyUsage]:
    if not key_ids:
        return {}
    rows = db.session.scalars(select(ApiKeyUsage).where(
        ApiKeyUsage.key_id.in_(key_ids), ApiKeyUsage.month == current_month()))
    return {row.key_id: row for row in rows}


def render(key: ApiKey, usage: ApiKeyUsage | None = None) -> dict[str, Any]:
    return {**key.to_dict(), "usage": {
        "month": current_month(),
        "characters": int(usage.characters) if usage else 0,
        "audio_seconds": round(usage.audio_seconds, 3) if usage else 0.0}}


def listing(owner_id: int) -> list[dict[str, Any]]:
    """The owner's live keys, newest first, with this month's usage."""
    keys = list(db.session.scalars(select(ApiKey).where(
        ApiKey.owner_id == owner_id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at.desc(), ApiKey.id)))
    usage = _usage([k.id for k in keys])
    return [render(k, usage.get(k.id)) for k in keys]


def revoke(owner_id: int, key_id: str) -> None:
    key = db.session.get(ApiKey, key_id)
    if key is None or key.owner_id != owner_id or key.revoked_at is not None:
        raise not_found("api_key_not_found", "API_KEY_NOT_FOUND")
    key.revoked_at = utcnow()
    db.session.commit()


def authenticate(secret: str) -> ApiKey:
    """The live key with this secret; unknown and revoked keys are both 401."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(secret)))
    if key is None or key.revoked_at is not None:
        raise ApiError(401, "api_key_invalid", "INVALID_API_KEY")
    now = utcnow()
    # "Last used" to the minute is enough: most requests then write nothing here.
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        db.session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
        db.session.commit()
    return key


def charge(key_id: str, *, characters: int = 0,
           audio_seconds: float = 0.0) -> usage_counters.Charge:
    """Count a request against the key's month, or refuse it (429) if it would go over.

    The check and the addition are one statement: two requests racing for the last of a
    quota cannot both get it.
    """
    key = db.session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise ApiError(401, "api_key_invalid", "INVALID_API_KEY")
    spent = usage_counters.add(ApiKeyUsage, {"key_id": key.id, "month": current_month()},
                               characters=characters, audio_seconds=audio_seconds,
                               max_characters=key.monthly_characters,
                               max_audio_seconds=key.monthly_audio_seconds)
    if spent is None:
        raise ApiError(429, "quota_exceeded", "QUOTA_EXCEEDED",
                       details={"monthly_characters": key.monthly_characters,
                                "monthly_audio_seconds": key.monthly_audio_seconds})
    return spent


def give_back(key_id: str, *, audio_seconds: float) -> None:
    """Give back audio seconds counted ahead of use and not used (a realtime session's
    credit when it closes)."""
    month = {"key_id": key_id, "month": current_month()}
    usage_counters.refund(usage_counters.Charge(ApiKeyUsage, month, audio_seconds=audio_seconds))


def session_of(key_id: str) -> Conversation:
    """The session a key's calls are kept in: made on first use, again if deleted."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise ApiError(401, "api_key_invalid", "INVALID_API_KEY")
    db.session.refresh(key)
    session = db.session.get(Conversation, key.session_id) if key.session_id else None
    if session is not None:
        return session
    session = Conversation(owner_id=key.owner_id, title=f"API: {key.name}"[:200])
    db.session.add(session)
    db.session.flush()
    claimed = db.session.execute(update(ApiKey).where(
        ApiKey.id == key.id, ApiKey.session_id == key.session_id).values(session_id=session.id))
    if claimed.rowcount != 1:
        # Another request gave the key its session first: use that one.
        db.session.rollback()
        return session_of(key_id)
    db.session.commit()
    return session


def remaining(key_id: str) -> dict[str, tuple[float, float] | None]:
    """This month's quotas of a key as (limit, left), by ``characters`` and
    ``audio_seconds``; None where the key has no limit."""
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise ApiError(401, "api_key_invalid", "INVALID_API_KEY")
    usage = _usage([key.id]).get(key.id)
    used = {"characters": float(usage.characters) if usage else 0.0,
            "audio_seconds": float(usage.audio_seconds) if usage else 0.0}
    limits = {"characters": key.monthly_characters, "audio_seconds": key.monthly_audio_seconds}
    return {name: None if limit is None else (float(limit), max(0.0, limit - used[name]))
            for name, limit in limits.items()}
