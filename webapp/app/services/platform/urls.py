"""Absolute, expiring, HMAC-signed URLs to the service's own endpoints."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from flask import current_app


def _signature(path: str, expires: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def absolute(path: str) -> str:
    return current_app.config["BASE_URL"] + path


def signed_path(path: str, seconds: int | None = None) -> str:
    """``path?expires=…&signature=…``, valid for ``seconds``: a relative URL that works
    for whoever holds it, on whichever address the client reached the service."""
    seconds = seconds or current_app.config["SIGNED_URL_SECONDS"]
    expires = int(time.time()) + seconds
    query = urlencode({"expires": expires, "signature": _signature(path, expires)})
    return f"{path}?{query}"


def signed(path: str, seconds: int | None = None) -> str:
    """``BASE_URL + path?expires=…&signature=…``, valid for ``seconds``."""
    return absolute(signed_path(path, seconds))


def verify(path: str, expires: str | None, signature: str | None) -> bool:
    """True for an untampered signature whose expiry has not passed."""
    if not expires or not signature:
        return False
    try:
        moment = int(expires)
    except ValueError:
        return False
    if moment < time.time():
        return False
    return hmac.compare_digest(_signature(path, moment), signature)
