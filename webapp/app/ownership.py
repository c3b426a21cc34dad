"""Rows a user asks for by id: their own, or also public ones.

A row the user may not see raises the same error as a missing one, so that ids of other
people's rows cannot be told apart from ids that do not exist.
"""

from __future__ import annotations

from typing import Any, TypeVar

from webapp.app.errors import ApiError
from webapp.app.extensions import db

Row = TypeVar("Row")


def owned(model: type[Row], row_id: Any, user_id: int, error: ApiError) -> Row:
    """The ``model`` row with ``row_id`` if ``user_id`` owns it; ``error`` otherwise."""
    row = db.session.get(model, row_id)
    if row is None or row.owner_id != user_id:
        raise error
    return row


def visible(model: type[Row], row_id: Any, user_id: int, error: ApiError) -> Row:
    """The ``model`` row with ``row_id`` if it is public or ``user_id`` owns it; ``error``
    otherwise."""
    row = db.session.get(model, row_id)
    if row is None or not (row.is_public or row.owner_id == user_id):
        raise error
    return row
