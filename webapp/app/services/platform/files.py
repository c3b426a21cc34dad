"""Uploaded and generated audio: validate, store, authorise, hand out URLs, delete.

A stored file is an object in storage plus a row; either both exist or neither does.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from flask import current_app
from sqlalchemy import select

from webapp.app import audio
from webapp.app.concurrency import run_blocking
from webapp.app.errors import ApiError, forbidden
from webapp.app.extensions import db
from webapp.app.models import File
from webapp.app.models.common import new_uuid
from webapp.app.pagination import paginate
from webapp.app.services.platform import urls
from webapp.app.storage import Storage, StorageError, StorageUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

_EXTENSIONS = {"ogg": "ogg", "opus": "ogg", "pcm": "pcm"}


def storage() -> Storage:
    return current_app.extensions["storage"]


def _limit_text(nbytes: int) -> str:
    return f"{nbytes / (1024 * 1024):.0f} MB"


def inspect_upload(data: bytes, max_seconds: float | None = None,
                   min_seconds: float | None = None) -> audio.AudioInfo:
    """Check size and content (never the name or declared type) and measure the audio,
    decoding no further than ``max_seconds`` (``MAX_SAMPLE_SECONDS`` by default)."""
    _check_size(data)
    limit = _limit(max_seconds)
    info = _decoded(audio.probe, data, limit)
    _check_length(info, limit, min_seconds)
    return info


def inspect_speech(data: bytes, max_seconds: float | None = None
                   ) -> tuple[audio.AudioInfo, bytes]:
    """``inspect_upload`` that also keeps what the one decoding pass made: the speech as
    16 kHz mono PCM, ready for a recogniser."""
    _check_size(data)
    limit = _limit(max_seconds)
    info, pcm = _decoded(audio.probe_and_decode, data, limit, sample_rate=audio.SPEECH_SAMPLE_RATE)
    _check_length(info, limit, None)
    return info, pcm


def _check_size(data: bytes) -> None:
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    if not data:
        raise ApiError(400, "file_empty", "FILE_EMPTY")
    if len(data) > limit:
        raise ApiError(413, "too_large", "PAYLOAD_TOO_LARGE", {"limit": _limit_text(limit)})


def _limit(max_seconds: float | None) -> float:
    return current_app.config["MAX_SAMPLE_SECONDS"] if max_seconds is None else max_seconds


def too_long(limit: float, duration: float | None = None) -> ApiError:
    """``AUDIO_TOO_LONG``; the duration is named only when the audio was measured whole
    (decoding stops soon after the limit, so a longer file's length stays unknown)."""
    details = {"limit": limit} if duration is None else {"duration": round(duration, 3)}
    return ApiError(400, "audio_too_long", "AUDIO_TOO_LONG", {"limit": f"{limit:g}"}, details)


def decode_error(exc: audio.AudioError) -> ApiError:
    """What a client is told about audio that cannot be used: too long (400), or not
    audio the service reads (415, one message whatever the bytes were)."""
    if isinstance(exc, audio.AudioTooLong):
        return too_long(exc.limit)
    return ApiError(415, "unsupported_audio", "UNSUPPORTED_MEDIA_TYPE",
                    details={"reason": str(exc)})


def _decoded(decode: Callable[..., T], data: bytes, max_seconds: float, **options: int) -> T:
    try:
        return run_blocking(decode, data, max_seconds=max_seconds, **options)
    except audio.AudioError as exc:
        raise decode_error(exc) from exc


def _check_length(info: audio.AudioInfo, max_seconds: float,
                  min_seconds: float | None) -> None:
    if info.duration > max_seconds:
        raise too_long(max_seconds, info.duration)
    if min_seconds is not None and info.duration < min_seconds:
        raise ApiError(400, "audio_too_short", "AUDIO_TOO_SHORT", {"limit": f"{min_seconds:g}"},
                       {"duration": round(info.duration, 3)})


def new_row(owner_id: int, data: bytes, fmt: str, duration: float, *, kind: str,
            is_public: bool = False, original_name: str = "") -> File:
    """The row of bytes about to be stored, its id and key already chosen (not yet added
    to the session: see ``put_object`` and ``save``)."""
    ext = _EXTENSIONS.get(fmt, fmt)
    name = f"{secrets.token_hex(12)}.{ext}"
    return File(id=new_uuid(), owner_id=owner_id, name=name,
                original_name=original_name[:255], storage_key=f"{kind}/{name[:2]}/{name}",
                format=fmt, content_type=audio.CONTENT_TYPES.get(fmt, "application/octet-stream"),
                size=len(data), duration=duration, is_public=is_public, kind=kind)


def put_object(row: File, data: bytes) -> None:
    """Write a row's bytes to storage (off the event loop); failures are API errors."""
    try:
        run_blocking(storage().put, row.storage_key, data, row.content_type)
    except StorageUnavailable as exc:
        log.error("storing %s failed: %s", row.storage_key, exc)
        raise storage_unavailable() from exc
    except StorageError as exc:
        log.error("storing %s failed: %s", row.storage_key, exc)
        raise ApiError(507, "storage_failed", "STORAGE_FAILED") from exc


def save(owner_id: int, data: bytes, fmt: str, duration: float, *, kind: str,
         is_public: bool = False, original_name: str = "") -> File:
    """Store bytes and their row together; a failure on either side leaves nothing behind."""
    row = new_row(owner_id, data, fmt, duration, kind=kind, is_public=is_public,
                  original_name=original_name)
    put_object(row, data)
    try:
        db.session.add(row)
        db.session.commit()
    except Exception:
        db.session.rollback()
        storage().delete(row.storage_key)
        raise
    return row


def store_upload(owner_id: int, data: bytes, original_name: str, *, is_public: bool = False,
                 kind: str = "upload", max_seconds: float | None = None) -> File:
    info = inspect_upload(data, max_seconds=max_seconds)
    return save(owner_id, data, info.format, info.duration, kind=kind, is_public=is_public,
                original_name=original_name)


def get(file_id: str) -> File:
    row = db.session.get(File, file_id)
    if row is None:
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return row


def by_name(name: str) -> File:
    row = db.session.scalar(select(File).where(File.name == name))
    if row is None:
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return row


def visible(row: File, user_id: int | None) -> bool:
    return row.is_public or (user_id is not None and row.owner_id == user_id)


def get_visible(file_id: str, user_id: int) -> File:
    """A file the user owns or that is public; others' private files look absent."""
    row = get(file_id)
    if not visible(row, user_id):
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return row


def get_owned(file_id: str, user_id: int) -> File:
    row = get_visible(file_id, user_id)
    if row.owner_id != user_id:
        raise forbidden()
    return row


def read(row: File) -> bytes:
    try:
        return run_blocking(storage().get, row.storage_key)
    except StorageUnavailable as exc:
        log.error("reading %s failed: %s", row.storage_key, exc)
        raise storage_unavailable() from exc
    except StorageError as exc:
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND") from exc


def storage_unavailable() -> ApiError:
    """The object store is unreachable: nothing was kept, and trying later may work."""
    return ApiError(503, "storage_unavailable", "STORAGE_UNAVAILABLE")


def delete(row: File) -> None:
    """Remove the row, then the object; an object whose delete fails is logged, not kept hidden."""
    key = row.storage_key
    db.session.delete(row)
    db.session.commit()
    delete_object(key)


def delete_object(key: str) -> None:
    """Remove an object no row points at; a failure is logged, not kept hidden."""
    try:
        run_blocking(storage().delete, key)
    except StorageError as exc:
        log.error("deleting object %s failed: %s", key, exc)


def upload_path(row: File) -> str:
    return f"/uploads/{row.name}"


def upload_url(row: File) -> str:
    """The relative ``/uploads/<name>`` URL an upload answers with: fetchable as handed
    out, by anyone who holds it (signed and expiring unless the file is public)."""
    path = upload_path(row)
    return path if row.is_public else urls.signed_path(path)


def download_path(row: File) -> str:
    return f"/api/temfile/download/{row.id}"


def audio_url(row: File) -> str:
    """Absolute URL for playing the file: plain when public, signed and expiring otherwise."""
    path = upload_path(row)
    return urls.absolute(path) if row.is_public else urls.signed(path)


def download_url(row: File, seconds: int | None = None) -> str:
    path = download_path(row)
    return urls.absolute(path) if row.is_public and seconds is None else urls.signed(path, seconds)


def resolve_own_url(url: str, user_id: int) -> File:
    """Map a URL a client sent back to one of the caller's own files; never fetch it.

    Accepted: ``/uploads/<name>``, ``/api/temfile/download/<id>``, relative or under
    ``BASE_URL``. Anything else is refused, so the server makes no outbound request.
    """
    parsed = urlparse(url.strip())
    base = urlparse(current_app.config["BASE_URL"])
    if parsed.scheme or parsed.netloc:
        if (parsed.scheme, parsed.netloc) != (base.scheme, base.netloc):
            raise ApiError(400, "bad_request", "FOREIGN_URL",
                           {"detail": "voice_url must be a URL of this service"})
    path = parsed.path
    if path.startswith("/uploads/"):
        row = by_name(path.rsplit("/", 1)[-1])
    elif path.startswith("/api/temfile/download/"):
        row = get(path.rsplit("/", 1)[-1])
    else:
        raise ApiError(400, "bad_request", "FOREIGN_URL",
                       {"detail": "voice_url must be a URL of this service"})
    if row.owner_id != user_id:
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return row


def page_uploads(user_id: int, page: int, page_size: int,
                 render: Callable[[File], dict[str, Any]]) -> dict[str, Any]:
    """The user's own uploads, newest first, as a page."""
    query = (select(File).where(File.owner_id == user_id, File.kind == "upload")
             .order_by(File.created_at.desc(), File.id.desc()))
    return paginate(query, page, page_size, render, count=("files", f"uploads:{user_id}"))


_SAFE_NAME = re.compile(r"^[0-9a-f]{24}\.(mp3|wav|ogg|pcm|webm|flac|m4a|aac)$")


def safe_name(name: str) -> str:
    """Names the service made itself; anything else cannot name an object."""
    if not _SAFE_NAME.match(name):
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return name


def content_type_of(name: str) -> str:
    return audio.CONTENT_TYPES.get(name.rsplit(".", 1)[-1], "application/octet-stream")
