"""Accounts and tokens.

A token names its user by id in ``sub``; it counts only while that user exists, so a
deleted account's tokens stop working everywhere (REST through Flask-JWT-Extended's
user lookup, sockets through ``sockets.auth``).
"""

from __future__ import annotations

import functools
import secrets
from typing import Any

from flask_jwt_extended import create_access_token, create_refresh_token
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.app.concurrency import run_blocking
from webapp.app.errors import ApiError
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
    """The user a token's claims name, while that user exists."""
    user_id = user_id_of(claims)
    return db.session.get(User, user_id) if user_id is not None else None


def register(username: str, password: str) -> User:
    """A new account. The password is hashed before the name is looked up, so a taken
    name is answered no sooner than a new one (the 409 itself stays, as the API has it)."""
    user = User(username=username)
    run_blocking(user.set_password, password)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ApiError(409, "username_taken", "USERNAME_TAKEN")
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise ApiError(409, "username_taken", "USERNAME_TAKEN") from exc
    return user


@functools.cache
def _stand_in_hash() -> str:
    """A hash of no one's password, made the way real ones are."""
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(username: str, password: str) -> User:
    """The user with these credentials. An unknown name costs the same hash check as a
    wrong password, so the time of the answer does not tell which names exist."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        run_blocking(check_password_hash, _stand_in_hash(), password)
        raise ApiError(401, "bad_credentials", "BAD_CREDENTIALS")
    if not run_blocking(user.check_password, password):
        raise ApiError(401, "bad_credentials", "BAD_CREDENTIALS")
    return user


def _found(user_id: int, missing: ApiError) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise missing
    return user


def current(user_id: int) -> User:
    """The signed-in user; a token whose user is gone no longer signs anyone in."""
    return _found(user_id, ApiError(401, "unauthorized", "UNAUTHORIZED"))


def tokens(user: User, with_refresh: bool = True) -> dict[str, Any]:
    identity = str(user.id)
    out: dict[str, Any] = {"access_token": create_access_token(identity=identity),
                           "user": user.to_dict()}
    if with_refresh:
        out["refresh_token"] = create_refresh_token(identity=identity)
    return out


def get(user_id: int) -> User:
    return _found(user_id, ApiError(404, "user_not_found", "USER_NOT_FOUND"))
