"""Pages of a list: ``{total, list, page, pages, has_more}``, the shape every list has."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import Select, func

from webapp.app.errors import ApiError
from webapp.app.extensions import db
from webapp.app.schemas import PageQuerySchema


def page_args(source: Mapping[str, Any]) -> tuple[int, int]:
    """``page`` (≥1, default 1) and ``page_size`` (1–100, default 10) from query arguments."""
    given = {name: source.get(name) for name in ("page", "page_size")
             if source.get(name) not in (None, "")}
    try:
        args = PageQuerySchema().load(given)
    except ValidationError as exc:
        raise ApiError(400, "page_invalid", "VALIDATION_ERROR",
                       details={"fields": exc.normalized_messages()}) from exc
    return args["page"], args["page_size"]


def paginate(query: Select, page: int, page_size: int, render: Callable[[Any], Any],
             count: tuple[str, str] | None = None) -> dict[str, Any]:
    """One page of ``query``'s rows, each rendered.

    ``count`` = (table, key) lets the total come from the count cache while that table
    is unchanged; the key must name the query's filter exactly.
    """

    def compute() -> int:
        counting = query.order_by(None).with_only_columns(func.count(), maintain_column_froms=True)
        return db.session.scalar(counting) or 0

    total = compute() if count is None else current_app.extensions["counts"].total(*count, compute)
    rows = db.session.scalars(query.limit(page_size).offset((page - 1) * page_size)).all()
    pages = math.ceil(total / page_size) if total else 0
    return {"total": total, "list": [render(row) for row in rows], "page": page,
            "pages": pages, "has_more": page < pages}
