"""Failures of a turn as a socket client sees them: ``{error, code}``."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import OperationalError

from webapp.app.api import ApiError, database_unavailable, provider_error
from webapp.app.i18n import translate
from webapp.app.providers.base import ProviderError

log = logging.getLogger(__name__)


def as_error(exc: Exception, lang: str) -> dict[str, Any]:
    if isinstance(exc, ProviderError):
        exc = provider_error(exc)
    if isinstance(exc, OperationalError):
        log.error("database unreachable during a chat turn: %s", exc.orig)
        exc = database_unavailable()
    if isinstance(exc, ApiError):
        return {"error": translate(exc.key, lang, **exc.params), "code": exc.status,
                "error_code": exc.code}
    log.exception("chat turn failed", exc_info=exc)
    return {"error": translate("internal_error", lang), "code": 500,
            "error_code": "INTERNAL_ERROR"}
