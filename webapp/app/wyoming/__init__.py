"""Wyoming, Home Assistant's protocol for local speech services, on TCP ``WYOMING_PORT``.

It runs inside the web process as a green server: connections share the engines the
web process has already loaded (a sibling process would load Whisper, Piper and the
Mandarin voice a second time), and the engines come from the registry already running
in the thread pool, so nothing CPU-bound runs on the event loop.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from flask import Flask

from webapp.app.concurrency import spawn

log = logging.getLogger(__name__)


def start_server(app: Flask) -> Any:
    """Listen on ``WYOMING_HOST``:``WYOMING_PORT`` (a port of 0 turns it off) and serve
    each connection on a green thread of its own. Returns the listening socket, or None
    when there is none."""
    port = int(app.config["WYOMING_PORT"])
    if not port:
        return None
    from webapp.app.wyoming.connection import serve

    try:
        listener = socket.create_server((app.config["WYOMING_HOST"], port))
    except OSError as exc:
        # Another process has the port (a second server, or the first of several
        # gunicorn workers): this one serves HTTP only.
        log.warning("Wyoming server not started on port %d: %s", port, exc)
        return None

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            spawn(serve, app, conn)

    spawn(accept)
    log.info("Wyoming server listening on %s:%d", app.config["WYOMING_HOST"], port)
    return listener
