"""Who calls ``/v1``: an API key or a JWT, both as ``Authorization: Bearer …``."""

from __future__ import annotations

from flask import request
from flask_jwt_extended import verify_jwt_in_request

from webapp.app.services.platform import api_keys
from webapp.app.services.speech.openai_audio import Caller
from webapp.app.web import current_user_id


def current_caller() -> Caller:
    """The caller, or a 401 (in OpenAI's shape, as every ``/v1`` error)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    # A JWT has three dot-separated parts; any other bearer is taken for an API key, so
    # that a mistyped key is answered "invalid API key" as OpenAI's clients expect.
    if scheme.lower() == "bearer" and token and (api_keys.looks_like_key(token)
                                                 or token.count(".") != 2):
        key = api_keys.authenticate(token)
        return Caller.with_key(key)
    verify_jwt_in_request()
    return Caller(current_user_id())


KEY_SUBPROTOCOL = "openai-insecure-api-key."


def realtime_caller() -> Caller:
    """The caller of ``/v1/realtime``: as for every ``/v1`` route, or, from a browser
    (which cannot set headers on a WebSocket), the key offered as the subprotocol
    ``openai-insecure-api-key.<key>`` beside ``realtime``, as OpenAI's browser clients do."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for protocol in (p.strip() for p in offered.split(",")):
        if protocol.startswith(KEY_SUBPROTOCOL):
            return Caller.with_key(api_keys.authenticate(protocol[len(KEY_SUBPROTOCOL):]))
    return current_caller()
