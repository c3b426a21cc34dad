"""Access logs without credentials.

Browsers cannot set headers on WebSockets or EventSource, so they pass their JWT as
``?token=``, and signed audio URLs carry a ``signature``: whoever reads a log line with
either could act as that user. Every place a request line is logged goes through
``redact``: eventlet's server (``wsgi.py`` hands it ``access_logger()``), gunicorn (its
``gunicorn.conf.py`` names ``GunicornLogger``), and any record the app logs.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn import glogging

SECRET_PARAMS = ("token", "access_token", "refresh_token", "signature")
_NAMES = "|".join(SECRET_PARAMS)
_SECRET_QUERY = re.compile(rf"(?i)((?:^|[?&;])(?:{_NAMES})=)[^&;\s\"']*")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with the value of every credential-bearing query parameter hidden."""
    return _SECRET_QUERY.sub(r"\1" + REDACTED, text)


class RedactCredentials(logging.Filter):
    """Rewrites a record's message with ``redact`` (the arguments are folded in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def access_logger() -> logging.Logger:
    """The logger eventlet's server writes its access lines to."""
    logger = logging.getLogger("tingshuo.access")
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())
    return logger


def redact_root_handlers() -> None:
    """Every record that reaches the root handlers is redacted, whichever logger made it."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactCredentials) for f in handler.filters):
            handler.addFilter(RedactCredentials())


class GunicornLogger(glogging.Logger):
    """gunicorn's access log with the request line, query and credential headers redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for key, value in atoms.items():
            if key in ("{authorization}i", "{cookie}i"):
                atoms[key] = REDACTED
            elif isinstance(value, str):
                atoms[key] = redact(value)
        return atoms
