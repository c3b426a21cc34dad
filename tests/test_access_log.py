"""Credentials in URLs never reach a log line: the redaction, gunicorn's access log, and
records the app logs itself (the eventlet server is tested live in test_realtime_auth)."""

from __future__ import annotations

import datetime
import logging
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from webapp.app.access_log import GunicornLogger, RedactCredentials, redact


@pytest.mark.parametrize(("line", "expected"), [
    ("GET /api/ws/chat?token=abc.def.ghi HTTP/1.1", "GET /api/ws/chat?token=[redacted] HTTP/1.1"),
    ("/x?a=1&TOKEN=s3cr3t&b=2", "/x?a=1&TOKEN=[redacted]&b=2"),
    ("/a.mp3?expires=9&signature=deadbeef", "/a.mp3?expires=9&signature=[redacted]"),
    ("token=abc&refresh_token=def", "token=[redacted]&refresh_token=[redacted]"),
    ("/api/sessions?page=2&mytoken=keep", "/api/sessions?page=2&mytoken=keep"),
])
def test_redact(line: str, expected: str) -> None:
    assert redact(line) == expected


def test_gunicorn_access_log_is_redacted() -> None:
    logger = GunicornLogger(Config())
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/api/sessions/x/stream?token=abc.def",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/api/sessions/x/stream",
               "QUERY_STRING": "token=abc.def", "REMOTE_ADDR": "127.0.0.1"}
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    request = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer abc.def")])
    atoms = logger.atoms(response, request, environ, datetime.timedelta(seconds=1))
    assert atoms["r"] == "GET /api/sessions/x/stream?token=[redacted] HTTP/1.1"
    assert atoms["q"] == "token=[redacted]"
    assert atoms["{authorization}i"] == "[redacted]"
    assert "abc.def" not in repr(atoms)


def test_records_with_arguments_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tingshuo.test")
    log.addFilter(RedactCredentials())
    with caplog.at_level(logging.INFO):
        log.info("fetched %s", "/api/temfile/download/1?expires=1&signature=abcdef")
    assert caplog.messages == ["fetched /api/temfile/download/1?expires=1&signature=[redacted]"]
