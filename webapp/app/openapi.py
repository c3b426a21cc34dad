"""The OpenAPI 3 document, generated from the marshmallow schemas the routes validate with.

Routes carry their description through ``@doc``; ``build_spec`` walks the URL map.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_]+)>")


def doc(summary: str, *, tag: str, body: Any = None, query: Any = None, form: Any = None,
        response: Any = None, status: int = 200, auth: bool = True,
        errors: tuple[int, ...] = ()) -> Callable:
    """Describe a route for the OpenAPI document."""

    def wrap(fn: Callable) -> Callable:
        fn.__openapi__ = {"summary": summary, "tag": tag, "body": body, "query": query,
                          "form": form, "response": response, "status": status,
                          "auth": auth, "errors": errors}
        return fn

    return wrap


def _schema_ref(spec: APISpec, schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    name = (schema if isinstance(schema, type) else type(schema)).__name__.removesuffix("Schema")
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _envelope(data: dict[str, Any] | None) -> dict[str, Any]:
    return {"allOf": [{"$ref": "#/components/schemas/Envelope"},
                      {"type": "object", "properties": {"data": data or {"nullable": True}}}]}


def build_spec(app: Flask) -> dict[str, Any]:
    spec = APISpec(title="Tingshuo 听说", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Text-to-speech, speech-to-text, voices and roles."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
    spec.components.schema("Envelope", {"type": "object", "properties": {
        "code": {"type": "integer"}, "message": {"type": "string"},
        "success": {"type": "boolean"}, "data": {"nullable": True},
        "error": {"type": "object", "properties": {"code": {"type": "string"},
                                                   "message": {"type": "string"},
                                                   "details": {"type": "object"}}},
        "meta": {"type": "object", "properties": {"timestamp": {"type": "integer"},
                                                  "requestId": {"type": "string"}}}}})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        info = getattr(app.view_functions.get(rule.endpoint), "__openapi__", None)
        if info is None:
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        operations: dict[str, Any] = {}
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {"summary": info["summary"], "tags": [info["tag"]],
                                  "responses": {}}
            params = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                      for name in rule.arguments]
            if info["query"] is not None:
                params.append({"in": "query", "schema": info["query"]})
            if params:
                op["parameters"] = params
            if info["body"] is not None:
                op["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": _schema_ref(spec, info["body"])}}}
            if info["form"] is not None:
                op["requestBody"] = {"required": True, "content": {
                    "multipart/form-data": {"schema": _schema_ref(spec, info["form"])}}}
            data = _schema_ref(spec, info["response"]) if info["response"] is not None else None
            op["responses"][str(info["status"])] = {
                "description": "success",
                "content": {"application/json": {"schema": _envelope(data)}}}
            for status in (400, 401, *info["errors"]) if info["auth"] else (400, *info["errors"]):
                op["responses"].setdefault(str(status), {
                    "description": "error", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Envelope"}}}})
            if info["auth"]:
                op["security"] = [{"bearer": []}]
            operations[method.lower()] = op
        spec.path(path=path, operations=operations)
    return spec.to_dict()
