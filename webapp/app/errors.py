"""Failures a user can act on, and how provider and database failures look to a client.

Plain values with no request behind them, so services raise them and every transport
renders them: REST through ``api.error_response``, sockets through ``as_error``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import OperationalError

from webapp.app.i18n import translate
from webapp.app.providers.base import ProviderError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE", 422: "UNPROCESSABLE_ENTITY", 429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR", 502: "BAD_GATEWAY", 503: "SERVICE_UNAVAILABLE",
    507: "INSUFFICIENT_STORAGE",
}


@dataclass
class ApiError(Exception):
    """A failure a user can act on: HTTP status, UPPER_SNAKE code, message key."""

    status: int
    key: str
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] | None = None
    retry_after: int | None = None
    """Seconds after which the same request may pass (a 429): ``Retry-After``."""

    def __post_init__(self) -> None:
        super().__init__(self.key)
        if self.code is None:
            self.code = HTTP_CODES.get(self.status, "ERROR")


def not_found(key: str = "not_found", code: str = "NOT_FOUND") -> ApiError:
    return ApiError(404, key, code)


def forbidden(key: str = "forbidden", code: str = "FORBIDDEN") -> ApiError:
    return ApiError(403, key, code)


def database_unavailable() -> ApiError:
    """The database could not be reached (a dropped connection, a restart): try again."""
    return ApiError(503, "database_unavailable", "DATABASE_UNAVAILABLE")


PROVIDER_ERRORS = {
    "not_configured": (503, "VOICE_SERVICE_UNAVAILABLE"),
    "not_supported": (400, "NOT_SUPPORTED"),
    "auth": (502, "TTS_PROVIDER_ERROR"),
    "quota": (429, "TTS_QUOTA_EXCEEDED"),
    "timeout": (502, "TTS_PROVIDER_ERROR"),
    "task_failed": (502, "TTS_PROVIDER_ERROR"),
    "bad_input": (400, "INVALID_VOICE_PARAMETER"),
    "unavailable": (503, "VOICE_SERVICE_UNAVAILABLE"),
}
"""Each ``ProviderError.kind`` as an HTTP status and the voice API's error code."""
PROVIDER_STATUSES = tuple(sorted({status for status, _ in PROVIDER_ERRORS.values()} | {502}))
"""Every status a provider failure can answer with, for the routes that call providers."""


def provider_error(exc: ProviderError, provider: str | None = None) -> ApiError:
    """How a provider failure looks to a client; ``provider`` names the provider as the
    client chose it (``local`` rather than the local engine that failed), if given."""
    status, code = PROVIDER_ERRORS.get(exc.kind, (502, "TTS_PROVIDER_ERROR"))
    name = provider or exc.provider
    if exc.kind == "not_configured":
        return ApiError(status, "provider_not_configured", code, {"provider": name},
                        {"provider": name})
    return ApiError(status, "bad_request" if status == 400 else "provider_failed", code,
                    {"detail": exc.message}, {"provider": name, "kind": exc.kind})


def as_error(exc: Exception, lang: str) -> dict[str, Any]:
    """Any failure of a chat turn or a call as a socket client sees it:
    ``{error, code, error_code}`` (and ``retry_after`` on a 429); an unexpected one is
    logged and said as internal."""
    if isinstance(exc, ProviderError):
        exc = provider_error(exc)
    if isinstance(exc, OperationalError):
        log.error("database unreachable during a chat turn: %s", exc.orig)
        exc = database_unavailable()
    if isinstance(exc, ApiError):
        frame = {"error": translate(exc.key, lang, **exc.params), "code": exc.status,
                 "error_code": exc.code}
        if exc.retry_after is not None:
            frame["retry_after"] = exc.retry_after
        return frame
    log.exception("chat turn failed", exc_info=exc)
    return {"error": translate("internal_error", lang), "code": 500,
            "error_code": "INTERNAL_ERROR"}
