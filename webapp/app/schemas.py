"""Schemas every blueprint shares: seed 001's page and its query."""

from __future__ import annotations

from marshmallow import Schema, fields


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=1)
    page_size = fields.Integer(load_default=10)


def page_of(item: type[Schema]) -> type[Schema]:
    """Seed 001's page ``{total, list, page, pages, has_more}`` of ``item``."""
    name = item.__name__.removesuffix("Schema")
    return Schema.from_dict({"total": fields.Integer(), "list": fields.List(fields.Nested(item)),
                             "page": fields.Integer(), "pages": fields.Integer(),
                             "has_more": fields.Boolean()}, name=f"{name}PageSchema")
