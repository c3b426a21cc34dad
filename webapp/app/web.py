"""What several blueprints need from the request: who is calling, how a stored object is
sent back, and how the voice API names bad input. Blueprints share these instead of
importing one another."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, redirect, send_file
from flask_jwt_extended import get_current_user, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from webapp.app import audio
from webapp.app.api import parse
from webapp.app.errors import ApiError
from webapp.app.services.platform import files, limits


def current_user_id() -> int:
    """The caller's id, on a route that ``jwt_required`` already checked; a token counts
    only while its user exists (``services.users.existing_user`` looks it up)."""
    return get_current_user().id


def rate_limited(family: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Count the signed-in caller's request against their per-minute limit for ``family``
    (``services.platform.limits``); goes under ``jwt_required``. A refusal is a 429 with
    ``Retry-After``, and the route's documentation says so."""

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            limits.hit(family, current_user_id())
            return view(*args, **kwargs)

        described = getattr(view, "__openapi__", None)
        if described is not None:
            limited.__openapi__ = {**described, "errors": (*described["errors"], 429)}
        return limited

    return wrap


def optional_user_id() -> int | None:
    """The caller's id when a valid token of an existing user came with the request."""
    try:
        verify_jwt_in_request(optional=True)
    except (JWTExtendedException, PyJWTError):
        return None
    user = get_current_user()
    return user.id if user is not None else None


_EXTENSIONS = {content_type: fmt for fmt, content_type in reversed(audio.CONTENT_TYPES.items())}
_UNSAFE = re.compile(r"[^\w\- ]+")


def safe_download_name(name: str, content_type: str) -> str:
    """What a download is called: the letters, digits, spaces and dashes of the name it
    came with (anything else, markup or a path included, becomes ``_``), and the
    extension of what it really is. ``x<script>.html`` stored as WAV is ``x_script.wav``."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = _UNSAFE.sub("_", stem).strip(" _")[:100] or "audio"
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip())
    return f"{stem}.{extension}" if extension else stem


def send_object(key: str, content_type: str, download_name: str) -> Response:
    """Local objects are streamed (with Range support); S3 objects by presigned redirect.
    Werkzeug writes the ``Content-Disposition`` from a safe form of ``download_name``."""
    storage = files.storage()
    presigned = storage.presigned_url(key, current_app.config["SIGNED_URL_SECONDS"], content_type)
    if presigned:
        return redirect(presigned, code=302)
    local = storage.local_path(key)
    if local is None or not storage.exists(key):
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return send_file(local, mimetype=content_type, conditional=True,
                     download_name=safe_download_name(download_name, content_type), max_age=0)


def parse_voice_parameters(schema: Any, partial: bool = False) -> dict[str, Any]:
    """The voice generation and playback API names its bad input by kind: a bad emotion
    is ``INVALID_EMOTION_TYPE``, anything else ``INVALID_VOICE_PARAMETER``."""
    try:
        return parse(schema, partial=partial)
    except ApiError as err:
        fields = (err.details or {}).get("fields", {})
        err.code = ("INVALID_EMOTION_TYPE" if "emotionType" in fields
                    else "INVALID_VOICE_PARAMETER")
        raise
