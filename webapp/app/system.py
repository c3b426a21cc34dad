"""Health, the OpenAPI document and its docs page."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, render_template
from flask_jwt_extended import jwt_required
from marshmallow import Schema, fields

from webapp.app.api import ok
from webapp.app.openapi import build_spec, doc
from webapp.app.services.platform import health
from webapp.app.web import optional_user_id

bp = Blueprint("system", __name__)


class HealthSchema(Schema):
    status = fields.String()
    host = fields.String()
    database = fields.String()
    storage = fields.String()
    jobs = fields.String(metadata={"enum": ["in-process", "celery"]})
    engines_warm = fields.Boolean()
    elapsed_ms = fields.Float()


ENGINES = {"type": "object", "description": "engines by kind (tts, stt, llm)",
           "additionalProperties": {"type": "array", "items": {"type": "object"}}}


@bp.get("/api/health")
@doc("Liveness: database and storage reachable; the details (host, database, storage, "
     "jobs, timing) only with a token", tag="system", auth=False, response=HealthSchema)
def health_check() -> Response:
    report = health.report()
    if optional_user_id() is None:
        report = {key: report[key] for key in health.PUBLIC}
    return ok(report)


@bp.get("/api/providers")
@jwt_required()
@doc("Engines: which are configured and what each can do", tag="system", response=ENGINES)
def providers() -> Response:
    return ok(current_app.extensions["providers"].describe())


@bp.get("/api/openapi.json")
def openapi() -> Response:
    spec = current_app.extensions.get("openapi_spec")
    if spec is None:
        spec = current_app.extensions["openapi_spec"] = build_spec(current_app)
    return jsonify(spec)


@bp.get("/api/docs")
def docs() -> str:
    return render_template("docs.html")
