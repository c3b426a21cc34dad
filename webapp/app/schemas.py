"""Schemas and fields every blueprint shares: bounded integers, text that can be stored
and spoken, and the page every list answers with, and its query.

Every integer the API accepts is bounded here (and in ``IdConverter`` for URL paths):
an integer beyond 64 bits cannot be bound as a database parameter (SQLite raises
``OverflowError``), so it is refused as bad input before it gets that far.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter, Map

MAX_INT64 = 2**63 - 1
# Pages stop where the row offset ((page - 1) × page_size) would leave 64 bits.
MAX_PAGE = MAX_INT64 // 100


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: a non-negative integer that fits 64 bits. A larger one
    names no row: 404, as for a missing row, whatever the method (a plain mismatch would
    let werkzeug answer 405 when the same path has rules for other methods)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = 0,
                 max: int | None = MAX_INT64, signed: bool = False) -> None:
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(self.max)) or int(value) > self.max:
            raise NotFound()
        return super().to_python(value)


class BoundedInteger(fields.Integer):
    """A JSON number or numeric string (in a query) that is a whole number within
    ``[minimum, MAX_INT64]``; ``1e22``, ``1.5`` and ``true`` are refused."""

    default_error_messages = {"invalid": "integer_invalid", "too_large": "integer_out_of_range"}

    def __init__(self, minimum: int = 0, maximum: int = MAX_INT64, **kwargs: Any) -> None:
        super().__init__(validate=validate.Range(minimum, maximum, error="integer_out_of_range"),
                         **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool | float) or not isinstance(value, int | str):
            raise self.make_error("invalid")
        if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Id(BoundedInteger):
    """A row id (users, roles): a positive integer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(minimum=1, **kwargs)


# What cannot be stored or spoken: lone surrogates are not characters (neither MySQL's
# utf8mb4 nor SQLite can encode them), and text made only of spaces, control and format
# characters gives an engine nothing to say.
_SILENT_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"}


def has_lone_surrogate(value: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in value)


def find_lone_surrogate(data: Any, path: str = "") -> str | None:
    """The dotted path of the first string in ``data`` (keys included) that holds a lone
    surrogate, or None. The path itself is printable (U+FFFD stands in for a surrogate),
    since it is echoed in the error."""
    if isinstance(data, str):
        return path or "_schema" if has_lone_surrogate(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            shown = "".join("\ufffd" if has_lone_surrogate(ch) else ch for ch in str(key))
            where = f"{path}.{shown}" if path else shown
            if isinstance(key, str) and has_lone_surrogate(key):
                return where
            found = find_lone_surrogate(value, where)
            if found:
                return found
    if isinstance(data, list | tuple):
        for index, value in enumerate(data):
            found = find_lone_surrogate(value, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def is_speakable(value: str) -> bool:
    return any(unicodedata.category(ch) not in _SILENT_CATEGORIES for ch in value)


def _speakable(value: str) -> None:
    if not is_speakable(value):
        raise ValidationError("text_silent")


class SpokenText(fields.String):
    """Text to synthesize: 1–5000 characters, at least one of them something to say."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=[validate.Length(1, 5000, error="text_rule"), _speakable],
                         **kwargs)


class PageQuerySchema(Schema):
    page = BoundedInteger(minimum=1, maximum=MAX_PAGE, load_default=1)
    page_size = BoundedInteger(minimum=1, maximum=100, load_default=10)


def page_of(item: type[Schema]) -> type[Schema]:
    """A page ``{total, list, page, pages, has_more}`` of ``item``."""
    name = item.__name__.removesuffix("Schema")
    return Schema.from_dict({"total": fields.Integer(), "list": fields.List(fields.Nested(item)),
                             "page": fields.Integer(), "pages": fields.Integer(),
                             "has_more": fields.Boolean()}, name=f"{name}PageSchema")
