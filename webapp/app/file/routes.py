"""Uploading a voice message or an audio file (its id names a cloning sample), temporary
files, and serving stored audio."""

from typing import Any

from flask import Response, request
from flask_jwt_extended import jwt_required

from webapp.app.api import ok
from webapp.app.errors import ApiError
from webapp.app.file import bp
from webapp.app.file.schemas import FilePageSchema, FileSchema, PageQuerySchema, UploadFormSchema
from webapp.app.models import File
from webapp.app.openapi import AUDIO, NOTHING, doc
from webapp.app.pagination import page_args
from webapp.app.services.platform import files, urls
from webapp.app.web import current_user_id as _user_id
from webapp.app.web import optional_user_id, rate_limited, send_object

_SERVED_AUDIO: dict[str, Any] = {"tag": "files", "auth": False, "errors": (403, 404),
                                 "media": AUDIO, "stored": True}
"""How the routes that hand out stored audio are documented: no token needed (the file's
visibility or a signature decides), 403 for a bad signature, 404 for anything unseen."""


def _uploaded_bytes() -> tuple[bytes, str]:
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "file_missing", "FILE_MISSING")
    return upload.read(), upload.filename or ""


def _form_bool(name: str) -> bool:
    return request.form.get(name, "false").strip().lower() in {"1", "true", "yes", "on"}


def _render(row: File, url: str) -> dict:
    return {**row.to_dict(), "url": url, "audio_url": files.audio_url(row)}


@bp.post("/api/upload_voice")
@jwt_required()
@rate_limited("uploads")
@doc("Upload a voice message", tag="files", form=UploadFormSchema,
     response=FileSchema, errors=(413, 415))
def upload_voice() -> Response:
    data, name = _uploaded_bytes()
    row = files.store_upload(_user_id(), data, name, is_public=_form_bool("is_public"))
    url = files.upload_url(row)
    return ok(_render(row, url), message="file_uploaded", filename=row.original_name or row.name,
              url=url)


@bp.post("/api/temfile/upload")
@jwt_required()
@rate_limited("uploads")
@doc("Upload an audio file (its id is the audio_file_id a cloned voice is made from)",
     tag="files", form=UploadFormSchema, response=FileSchema, errors=(413, 415))
def temfile_upload() -> Response:
    data, name = _uploaded_bytes()
    row = files.store_upload(_user_id(), data, name, is_public=_form_bool("is_public"))
    return ok(_render(row, files.download_path(row)), message="file_uploaded")


@bp.get("/api/temfile/list")
@jwt_required()
@doc("My uploaded files, newest first", tag="files", query=PageQuerySchema,
     response=FilePageSchema)
def temfile_list() -> Response:
    page, size = page_args(request.args)
    return ok(files.page_uploads(_user_id(), page, size,
                                 lambda row: _render(row, files.download_path(row))))


@bp.delete("/api/temfile/<file_id>")
@jwt_required()
@doc("Delete my file", tag="files", errors=(403, 404), response=NOTHING)
def temfile_delete(file_id: str) -> Response:
    files.delete(files.get_owned(file_id, _user_id()))
    return ok(None, message="file_deleted")


def _signed_for(path: str) -> bool:
    """Whether the request carries an unexpired signature for ``path``."""
    return urls.verify(path, request.args.get("expires"), request.args.get("signature"))


def _serve(row: File, path: str) -> Response:
    """Bytes for the owner, a public file, or a valid signature; 404 for everyone else."""
    allowed = row.is_public or _signed_for(path)
    if not allowed:
        allowed = optional_user_id() == row.owner_id
    if not allowed:
        if request.args.get("signature"):
            raise ApiError(403, "link_expired", "LINK_INVALID")
        raise ApiError(404, "file_not_found", "FILE_NOT_FOUND")
    return send_object(row.storage_key, row.content_type, row.original_name or row.name)


@bp.get("/api/temfile/download/<file_id>")
@doc("Download a file: public, mine, or by signed URL", **_SERVED_AUDIO)
def temfile_download(file_id: str) -> Response:
    row = files.get(file_id)
    return _serve(row, files.download_path(row))


@bp.get("/uploads/<name>")
@doc("Uploaded or generated audio: public, mine, or by signed URL", **_SERVED_AUDIO)
def uploads(name: str) -> Response:
    row = files.by_name(name)
    return _serve(row, files.upload_path(row))


@bp.get("/api/tmp_audio/<name>")
@doc("Generated audio handed out by URL (signed, expiring)", **_SERVED_AUDIO)
def tmp_audio(name: str) -> Response:
    if not _signed_for(f"/api/tmp_audio/{name}"):
        raise ApiError(403, "link_expired", "LINK_INVALID")
    return send_object(f"tmp/{files.safe_name(name)}", files.content_type_of(name), name)
