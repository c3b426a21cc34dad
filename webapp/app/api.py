"""The envelope: every JSON response is rendered here, in the request's language.

Services raise ``ApiError`` (or ``ProviderError``, see ``webapp.app.errors``); routes
return ``ok(...)``; the handlers registered by ``register_errorhandlers`` render every
failure the same way.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_request_context,
    jsonify,
    request,
    stream_with_context,
)
from marshmallow import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from webapp.app.errors import ApiError, database_unavailable, provider_error
from webapp.app.extensions import db
from webapp.app.i18n import MESSAGES, translate
from webapp.app.providers.base import ProviderError
from webapp.app.schemas import find_lone_surrogate

log = logging.getLogger(__name__)

HTTP_KEYS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 409: "conflict", 429: "rate_limited",
             500: "internal_error"}


def is_openai_path() -> bool:
    """True inside ``/v1``, where OpenAI's clients expect OpenAI's shapes."""
    return has_request_context() and (request.path == "/v1" or request.path.startswith("/v1/"))


def language() -> str:
    """``en`` when the client prefers English, else Chinese (English by default on
    ``/v1``, whose clients are written against OpenAI's English messages)."""
    if not has_request_context():
        return "zh"
    default = "en" if is_openai_path() else "zh"
    best = request.accept_languages.best_match(["zh", "en"], default=default)
    return "en" if best == "en" else "zh"


def request_id() -> str:
    if has_request_context():
        rid = getattr(g, "request_id", None)
        if rid:
            return rid
    return "req_" + secrets.token_hex(8)


def _meta() -> dict[str, Any]:
    meta: dict[str, Any] = {"timestamp": int(time.time()), "requestId": request_id()}
    if has_request_context():
        meta["path"] = request.path
    return meta


def ok(data: Any = None, message: str = "success", status: int = 200, **top: Any) -> Response:
    """A success envelope; ``message`` is a catalogue key; ``top`` adds top-level fields."""
    body = {"code": status, "message": translate(message, language()), "success": True,
            "data": data, "meta": _meta(), **top}
    response = jsonify(body)
    response.status_code = status
    return response


def error_body(err: ApiError) -> dict[str, Any]:
    message = translate(err.key, language(), **err.params)
    return {"code": err.status, "message": message, "success": False, "data": None,
            "error": {"code": err.code, "message": message, "details": err.details or {}},
            "meta": _meta()}


OPENAI_ERROR_TYPES = {401: "authentication_error", 403: "permission_error",
                      404: "invalid_request_error", 429: "rate_limit_error"}


def openai_error_body(err: ApiError) -> dict[str, Any]:
    """OpenAI's error shape, which its SDKs turn into typed exceptions."""
    details = err.details or {}
    fields = details.get("fields")
    param = details.get("param") or (next(iter(fields)) if isinstance(fields, dict) and fields
                                     else None)
    if err.code == "QUOTA_EXCEEDED":
        kind = "insufficient_quota"
    elif err.status >= 500:
        kind = "server_error"
    else:
        kind = OPENAI_ERROR_TYPES.get(err.status, "invalid_request_error")
    return {"error": {"message": translate(err.key, language(), **err.params), "type": kind,
                      "param": param, "code": (err.code or "error").lower()}}


def error_response(err: ApiError) -> Response:
    """Every failure, rendered: the envelope, or OpenAI's shape under ``/v1``."""
    response = jsonify(openai_error_body(err) if is_openai_path() else error_body(err))
    response.status_code = err.status
    if err.retry_after is not None:
        response.headers["Retry-After"] = str(err.retry_after)
    return response


_MARSHMALLOW_DEFAULTS = {
    "Missing data for required field.": "field_required",
    "Unknown field.": "unknown_field",
}


def validation_error(exc: ValidationError) -> ApiError:
    """The first field error, in the ``参数错误: …`` form; all of them in details."""
    messages = exc.normalized_messages()
    field_name, detail = _first_error(messages)
    lang = language()
    if detail in _MARSHMALLOW_DEFAULTS:
        text = translate(_MARSHMALLOW_DEFAULTS[detail], lang, field=field_name)
    elif detail in MESSAGES:
        text = translate(detail, lang, field=field_name)
    else:
        text = translate("field_invalid", lang, field=field_name) if not detail else detail
    return ApiError(400, "bad_request", "VALIDATION_ERROR", {"detail": text},
                    {"fields": messages})


def _first_error(messages: Any, prefix: str = "") -> tuple[str, str]:
    if isinstance(messages, dict):
        for name, value in messages.items():
            return _first_error(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}")
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], prefix)
    return prefix or "_schema", str(messages) if messages else ""


def parse(schema: Any, data: Any = None, partial: bool = False) -> dict[str, Any]:
    """Validate ``data`` (default: the JSON body) with a marshmallow schema."""
    if data is None:
        data = request.get_json(silent=True)
        if data is None and request.mimetype != "application/json" and request.form:
            data = request.form.to_dict()
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", "VALIDATION_ERROR")
    refuse_lone_surrogates(data)
    try:
        return schema.load(data, partial=partial)
    except ValidationError as exc:
        raise validation_error(exc) from exc


def gather_list(form: dict[str, Any], name: str) -> dict[str, Any]:
    """``form`` with the list parameter ``name`` put under ``name[]``, where the schemas
    read it. A form post repeats the field, as ``name[]`` (OpenAI's SDKs) or as ``name``
    (clients that drop the []); a JSON body gives the whole list under ``name``."""
    if request.form:
        form[f"{name}[]"] = request.form.getlist(f"{name}[]") + request.form.getlist(name)
        form.pop(name, None)
    elif name in form:
        form[f"{name}[]"] = form.pop(name)
    return form


def refuse_lone_surrogates(data: Any) -> None:
    """JSON may spell a lone surrogate (``"\\ud800"``), which is no character: no database
    stores it and no engine speaks it, so the request is refused before it gets there."""
    where = find_lone_surrogate(data)
    if where is not None:
        raise ApiError(400, "bad_request", "VALIDATION_ERROR",
                       {"detail": translate("lone_surrogate", language(), field=where)},
                       {"fields": {where: ["lone_surrogate"]}})


def streaming_response(chunks: Any, mimetype: str, **headers: str) -> Response:
    """A response sent piece by piece as it is made (audio streams, SSE)."""
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers.update({"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers})
    return response


def register_errorhandlers(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given[:128] if given else "req_" + secrets.token_hex(8)

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = request_id()
        return response

    @app.errorhandler(ApiError)
    def _api_error(err: ApiError) -> Response:
        return error_response(err)

    @app.errorhandler(ProviderError)
    def _provider_error(exc: ProviderError) -> Response:
        log.warning("provider error: %s", exc)
        return error_response(provider_error(exc))

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return error_response(validation_error(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 413:
            limit = f"{current_app.config['MAX_UPLOAD_BYTES'] // (1024 * 1024)} MB"
            return error_response(ApiError(413, "too_large", "PAYLOAD_TOO_LARGE", {"limit": limit}))
        response = error_response(ApiError(status, HTTP_KEYS.get(status, "bad_request"),
                                           params={"detail": exc.description or ""}))
        if status == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        log.error("database unreachable on %s %s: %s", request.method, request.path, exc.orig)
        db.session.rollback()
        return error_response(database_unavailable())

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return error_response(ApiError(500, "internal_error"))
