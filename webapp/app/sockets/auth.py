"""Who is on the other end of a socket: a JWT from the connect payload, the
``Authorization`` header or ``?token=`` (browsers cannot set headers on WebSockets)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_jwt_extended import decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from webapp.app.services.platform.users import existing_user


def token_from(auth: Any = None) -> str | None:
    if isinstance(auth, dict) and auth.get("token"):
        return str(auth["token"])
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.args.get("token")


def user_from_token(token: str | None) -> int | None:
    """The user id of a valid access token of an existing user; None otherwise."""
    if not token:
        return None
    try:
        claims = decode_token(token)
    except (JWTExtendedException, PyJWTError):
        return None
    if claims.get("type") != "access":
        return None
    user = existing_user(claims)
    return user.id if user is not None else None
