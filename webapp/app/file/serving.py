"""Sending a stored object to a client, the same way for every blueprint."""

from __future__ import annotations

from flask import Response, current_app, redirect, send_file

from webapp.app.api import ApiError
from webapp.app.services import files


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
