"""What every response says about itself to the browser, and who the client really is
behind trusted proxies."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response
from werkzeug.middleware.proxy_fix import ProxyFix


def _origin(url: str | None) -> str | None:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(config: dict[str, Any]) -> str:
    """Only this origin's own files: the console and the docs page have no inline script
    or style. ``blob:`` is there for what the console makes itself (recorded audio to
    play back, the call's audio worklet); audio may also come from the public address
    (``BASE_URL``) and from the S3 store that signed URLs redirect to."""
    elsewhere = {_origin(config.get("BASE_URL")), _origin(config.get("S3_ENDPOINT_URL"))}
    if config.get("S3_BUCKET") and not config.get("S3_ENDPOINT_URL"):
        elsewhere.add("https://*.amazonaws.com")
    audio = " ".join(sorted(origin for origin in elsewhere if origin))
    directives = {
        "default-src": "'self'",
        "script-src": "'self' blob:",
        "worker-src": "'self' blob:",
        "style-src": "'self'",
        "img-src": "'self' data: blob:",
        "media-src": f"'self' blob: data: {audio}".strip(),
        "connect-src": f"'self' {audio}".strip(),
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def register_security(app: Flask) -> None:
    """``TRUSTED_PROXIES`` (how many proxies stand in front) makes the client address,
    scheme and host those the proxies saw, so per-address limits count real clients; no
    forwarded header is believed without it. Every response then carries the headers
    that stop a browser from sniffing types, framing the pages or leaking the path."""
    proxies = int(app.config["TRUSTED_PROXIES"])
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies,
                                x_host=proxies, x_port=proxies, x_prefix=proxies)
    headers = {
        "Content-Security-Policy": content_security_policy(app.config),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
