"""API keys for programs (the OpenAI-compatible ``/v1``): create, list, revoke."""

from flask import Response
from flask_jwt_extended import jwt_required

from webapp.app.api import ok, parse
from webapp.app.keys import bp
from webapp.app.keys.schemas import KeyCreatedSchema, KeyCreateSchema, KeyListSchema
from webapp.app.openapi import doc
from webapp.app.services.platform import api_keys
from webapp.app.web import current_user_id


@bp.post("/keys")
@jwt_required()
@doc("Create an API key; the key itself is in this response only", tag="keys",
     body=KeyCreateSchema, response=KeyCreatedSchema)
def create_key() -> Response:
    args = parse(KeyCreateSchema())
    key, secret = api_keys.create(current_user_id(), **args)
    return ok({**api_keys.render(key), "key": secret}, message="api_key_created")


@bp.get("/keys")
@jwt_required()
@doc("My API keys with this month's usage (never the keys themselves)", tag="keys",
     response=KeyListSchema)
def list_keys() -> Response:
    return ok({"list": api_keys.listing(current_user_id())})


@bp.delete("/keys/<key_id>")
@jwt_required()
@doc("Revoke an API key: it is refused from now on", tag="keys", errors=(404,))
def revoke_key(key_id: str) -> Response:
    api_keys.revoke(current_user_id(), key_id)
    return ok(None, message="api_key_revoked")
