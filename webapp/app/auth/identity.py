"""Who is calling, for routes and socket handlers (tokens are read from the request)."""

from __future__ import annotations

from flask_jwt_extended import get_jwt_identity, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError


def current_user_id() -> int:
    return int(get_jwt_identity())


def optional_user_id() -> int | None:
    """The caller's id when a valid token came with the request, else None."""
    try:
        verify_jwt_in_request(optional=True)
    except (JWTExtendedException, PyJWTError):
        return None
    identity = get_jwt_identity()
    return int(identity) if identity is not None else None
