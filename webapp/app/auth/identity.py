"""Who is calling, for routes and socket handlers (tokens are read from the request).

A token names its user by id in ``sub``; it counts only while that user exists, so a
deleted account's tokens stop working everywhere (REST through Flask-JWT-Extended's
user lookup, sockets through ``realtime.auth``).
"""

from __future__ import annotations

from typing import Any

from flask_jwt_extended import get_current_user, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError

from webapp.app.extensions import db
from webapp.app.models import User
from webapp.app.schemas import MAX_INT64


def user_id_of(claims: dict[str, Any]) -> int | None:
    """The user id a token's ``sub`` names, or None when it cannot name one (a forged
    ``"abc"``, a number beyond 64 bits)."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.isascii() or not subject.isdigit():
        return None
    user_id = int(subject)
    return user_id if 1 <= user_id <= MAX_INT64 else None


def existing_user(claims: dict[str, Any]) -> User | None:
    user_id = user_id_of(claims)
    return db.session.get(User, user_id) if user_id is not None else None


def current_user_id() -> int:
    return get_current_user().id


def optional_user_id() -> int | None:
    """The caller's id when a valid token of an existing user came with the request."""
    try:
        verify_jwt_in_request(optional=True)
    except (JWTExtendedException, PyJWTError):
        return None
    user = get_current_user()
    return user.id if user is not None else None
