"""The browser console: one page at ``/`` built on the public REST API and Socket.IO.

Its scripts and styles are static files under ``static/console/``; the Socket.IO client
is copied to ``static/vendor/`` from npm by ``make install``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

bp = Blueprint("console", __name__)

CONSOLE_DIR = Path(__file__).resolve().parent / "static" / "console"


@bp.get("/")
def index() -> Response:
    response = send_from_directory(CONSOLE_DIR, "index.html", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response
