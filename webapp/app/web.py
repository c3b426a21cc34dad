"""What several blueprints need from the request: who is calling, how a stored object is
sent back, and how the voice API names bad input. Blueprints share these instead of
importing one another."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, redirect, send_file
from flask_jwt_extended import get_current_user, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from webapp.app.api import parse
from webapp.app.errors import ApiError
from webapp.app.services.platform import files


def current_user_id() -> int:
    """The caller's id, on a route that ``jwt_required`` already checked; a token counts
    only while its user exists (``services.users.existing_user`` looks it up)."""
    return get_current_user().id


def optional_user_id() -> int | None:
    """The caller's id when a valid token of an existing user came with the request."""
    try:
        verify_jwt_in_request(optional=True)
    except (JWTExtendedException, PyJWTError):
        return None
    user = get_current_user()
    return user.id if user is not None else None


def send_object(key: str, content_type: str, download_name: str) -> Response:
    """Local objects are streamed (with Range support); S3 objects by presigned redirect."""
    storage = files.storage()
    presigned = storage.presigned_url(key, current_app.config["SIGNED_URL_SECONDS"], content_type)
    if presigned:
        return redirect(presigned, code=302)
    local = storage.local_path(key)
    if local is None or not storage.exists(key):
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return send_file(local, mimetype=content_type, conditional=True,
                     download_name=download_name, max_age=0)


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
