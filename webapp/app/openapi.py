"""The OpenAPI 3 document, generated from the marshmallow schemas the routes validate with.

Routes carry their description through ``@doc``; ``build_spec`` walks the URL map. The
test suite checks every response it sees against this document, and fuzzes the API
from it (``tests/test_openapi_contract.py``), so what it says is what the service does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema
from werkzeug.routing import Rule

from webapp.app.audio import CONTENT_TYPES
from webapp.app.schemas import IdConverter

_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-zA-Z_]+)>")

# What stored or synthesized audio is sent as (``Content-Type`` without parameters).
AUDIO = tuple(sorted(set(CONTENT_TYPES.values())))
EVENTS = ("text/event-stream",)
_BINARY = {"type": "string", "format": "binary"}
# ``data`` of an answer that only says it worked.
NOTHING = {"nullable": True, "enum": [None], "description": "always null"}


def doc(summary: str, *, tag: str, body: Any = None, query: Any = None, form: Any = None,
        response: Any = None, status: int = 200, auth: bool = True,
        errors: tuple[int, ...] = (), media: tuple[str, ...] | None = None,
        stored: bool = False) -> Callable:
    """Describe a route for the OpenAPI document.

    ``response`` is the schema of the envelope's ``data`` (an instance with ``many=True``
    for a list); ``media`` the content types of a success that is not JSON (audio, events);
    ``stored`` marks a stored object, which may also be answered in part (206, Range) or
    by a redirect to the storage (302, S3).
    """

    def wrap(fn: Callable) -> Callable:
        fn.__openapi__ = {"summary": summary, "tag": tag, "body": body, "query": query,
                          "form": form, "response": response, "status": status,
                          "auth": auth, "errors": errors, "media": media, "stored": stored}
        return fn

    return wrap


def _schema_ref(spec: APISpec, schema: Any) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, Schema) and schema.many:
        return {"type": "array", "items": _schema_ref(spec, type(schema))}
    name = (schema if isinstance(schema, type) else type(schema)).__name__.removesuffix("Schema")
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=schema)
    return {"$ref": f"#/components/schemas/{name}"}


def _path_parameters(rule: Rule) -> list[dict[str, Any]]:
    out = []
    for name in rule.arguments:
        converter = rule._converters.get(name)
        schema: dict[str, Any] = {"type": "string"}
        if isinstance(converter, IdConverter):
            schema = {"type": "integer", "minimum": converter.min, "maximum": converter.max}
        out.append({"in": "path", "name": name, "required": True, "schema": schema})
    return out


def _success(spec: APISpec, info: dict[str, Any]) -> dict[str, Any]:
    if info["media"]:
        return {"description": "success",
                "content": {kind: {"schema": _BINARY if kind != EVENTS[0] else {"type": "string"}}
                            for kind in info["media"]}}
    data = _schema_ref(spec, info["response"]) if info["response"] is not None else None
    return {"description": "success", "content": {"application/json": {"schema": _envelope(data)}}}


def _error_statuses(rule: Rule, info: dict[str, Any]) -> list[int]:
    """Failures every such route can answer: bad input (400), no token (401), a path that
    names nothing (404), a server fault (500, still in the envelope)."""
    statuses = [400, *((401,) if info["auth"] else ()), *((404,) if rule.arguments else ()),
                *info["errors"], 500]
    return sorted(set(statuses))


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
            params = _path_parameters(rule)
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
            op["responses"][str(info["status"])] = _success(spec, info)
            if info["stored"]:
                op["responses"]["206"] = {"description": "part of the audio (Range request)",
                                          "content": {kind: {"schema": _BINARY}
                                                      for kind in AUDIO}}
                op["responses"]["302"] = {"description": "redirect to the storage's signed URL"}
            for status in _error_statuses(rule, info):
                op["responses"].setdefault(str(status), {
                    "description": "error", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Envelope"}}}})
            if info["auth"]:
                op["security"] = [{"bearer": []}]
            operations[method.lower()] = op
        spec.path(path=path, operations=operations)
    return spec.to_dict()
