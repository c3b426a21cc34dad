"""The voice generation and playback API's ten endpoints: generate, cache, settings, agent
profiles, playback."""

from typing import Any

from flask import Response
from flask_jwt_extended import jwt_required
from marshmallow import Schema

from webapp.app.api import ok, parse
from webapp.app.errors import PROVIDER_STATUSES, ApiError
from webapp.app.openapi import doc
from webapp.app.playback import bp
from webapp.app.playback.schemas import (
    CachedVoiceSchema,
    GenerateResultSchema,
    GenerateSchema,
    PlaybackCreateSchema,
    PlaybackDeletedSchema,
    PlaybackSchema,
    PlaybackUpdateSchema,
    ProfileOutSchema,
    ProfileSchema,
    SettingsOutSchema,
    SettingsSchema,
)
from webapp.app.services import generation, playback, preferences
from webapp.app.web import current_user_id


def _parse(schema: Schema, partial: bool = False) -> dict[str, Any]:
    """A bad emotion is INVALID_EMOTION_TYPE, the rest INVALID_VOICE_PARAMETER."""
    try:
        return parse(schema, partial=partial)
    except ApiError as err:
        fields = (err.details or {}).get("fields", {})
        err.code = "INVALID_EMOTION_TYPE" if "emotionType" in fields else (
            "INVALID_VOICE_PARAMETER")
        raise


@bp.post("/generate")
@jwt_required()
@doc("Generate (or fetch from cache) a message's voice with an emotion", tag="voice-emotion",
     body=GenerateSchema, response=GenerateResultSchema,
     errors=(*PROVIDER_STATUSES, 507))
def generate() -> Response:
    return ok(generation.generate(current_user_id(), _parse(GenerateSchema())))


@bp.get("/cache/<int:message_id>")
@jwt_required()
@doc("The cached voice of a message key", tag="voice-emotion", errors=(404,),
     response=CachedVoiceSchema)
def cache(message_id: int) -> Response:
    return ok(generation.cached(current_user_id(), message_id))


@bp.get("/settings")
@jwt_required()
@doc("My voice settings", tag="voice-emotion", response=SettingsOutSchema)
def get_settings() -> Response:
    return ok(preferences.settings(current_user_id()).to_dict())


@bp.put("/settings")
@jwt_required()
@doc("Update my voice settings", tag="voice-emotion", body=SettingsSchema,
     response=SettingsOutSchema)
def put_settings() -> Response:
    row = preferences.update_settings(current_user_id(), _parse(SettingsSchema(), partial=True))
    return ok(row.to_dict())


@bp.get("/profiles/<int:agent_id>")
@jwt_required()
@doc("An agent's (role's) voice profile", tag="voice-emotion", errors=(404,),
     response=ProfileOutSchema)
def get_profile(agent_id: int) -> Response:
    return ok(preferences.profile(agent_id, current_user_id()).to_dict())


@bp.put("/profiles/<int:agent_id>")
@jwt_required()
@doc("Update my agent's voice profile", tag="voice-emotion", body=ProfileSchema,
     errors=(403, 404), response=ProfileOutSchema)
def put_profile(agent_id: int) -> Response:
    changes = _parse(ProfileSchema(), partial=True)
    return ok(preferences.update_profile(agent_id, current_user_id(), changes).to_dict())


@bp.post("/playback/session")
@jwt_required()
@doc("Create a playback session over a session's messages", tag="playback",
     body=PlaybackCreateSchema, response=PlaybackSchema, errors=(404,))
def create_playback() -> Response:
    args = _parse(PlaybackCreateSchema())
    row = playback.create(current_user_id(), args["debateId"], args["playlist"],
                          args["repeatMode"], args["shuffle"])
    return ok(row.to_dict())


@bp.get("/playback/session/<session_id>")
@jwt_required()
@doc("A playback session", tag="playback", response=PlaybackSchema, errors=(404,))
def get_playback(session_id: str) -> Response:
    return ok(playback.get_owned(session_id, current_user_id()).to_dict())


@bp.put("/playback/session/<session_id>")
@jwt_required()
@doc("Play, pause, stop, seek, next, previous", tag="playback", body=PlaybackUpdateSchema,
     response=PlaybackSchema, errors=(404,))
def update_playback(session_id: str) -> Response:
    row = playback.get_owned(session_id, current_user_id())
    args = _parse(PlaybackUpdateSchema())
    return ok(playback.act(row, args["action"], args["position"], args["messageId"]).to_dict())


@bp.delete("/playback/session/<session_id>")
@jwt_required()
@doc("Delete a playback session", tag="playback", errors=(404,),
     response=PlaybackDeletedSchema)
def delete_playback(session_id: str) -> Response:
    return ok(playback.delete(playback.get_owned(session_id, current_user_id())))
