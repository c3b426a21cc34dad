"""Speaking a message with an emotion and caching it, the caller's voice settings, and a
role's voice profile: ``/api/voice/generate``, ``/cache``, ``/settings``, ``/profiles``."""

from flask import Response
from flask_jwt_extended import jwt_required

from webapp.app.api import ok
from webapp.app.errors import PROVIDER_STATUSES
from webapp.app.openapi import doc
from webapp.app.services.conversation import voice_generation
from webapp.app.services.voice_library import preferences
from webapp.app.voice import bp
from webapp.app.voice.emotion_schemas import (
    CachedVoiceSchema,
    GenerateResultSchema,
    GenerateSchema,
    ProfileOutSchema,
    ProfileSchema,
    SettingsOutSchema,
    SettingsSchema,
)
from webapp.app.web import current_user_id, parse_voice_parameters, rate_limited


@bp.post("/api/voice/generate")
@jwt_required()
@rate_limited("speech")
@doc("Generate (or fetch from cache) a message's voice with an emotion", tag="voice-emotion",
     body=GenerateSchema, response=GenerateResultSchema,
     errors=(404, *PROVIDER_STATUSES, 507))
def generate() -> Response:
    parameters = parse_voice_parameters(GenerateSchema())
    return ok(voice_generation.generate(current_user_id(), parameters))


@bp.get("/api/voice/cache/<int:message_id>")
@jwt_required()
@doc("The cached voice of a message key", tag="voice-emotion", errors=(404,),
     response=CachedVoiceSchema)
def cache(message_id: int) -> Response:
    return ok(voice_generation.cached(current_user_id(), message_id))


@bp.get("/api/voice/settings")
@jwt_required()
@doc("My voice settings", tag="voice-emotion", response=SettingsOutSchema)
def get_settings() -> Response:
    return ok(preferences.settings(current_user_id()).to_dict())


@bp.put("/api/voice/settings")
@jwt_required()
@doc("Update my voice settings", tag="voice-emotion", body=SettingsSchema,
     response=SettingsOutSchema)
def put_settings() -> Response:
    changes = parse_voice_parameters(SettingsSchema(), partial=True)
    row = preferences.update_settings(current_user_id(), changes)
    return ok(row.to_dict())


@bp.get("/api/voice/profiles/<int:agent_id>")
@jwt_required()
@doc("An agent's (role's) voice profile", tag="voice-emotion", errors=(404,),
     response=ProfileOutSchema)
def get_profile(agent_id: int) -> Response:
    return ok(preferences.profile(agent_id, current_user_id()).to_dict())


@bp.put("/api/voice/profiles/<int:agent_id>")
@jwt_required()
@doc("Update my agent's voice profile", tag="voice-emotion", body=ProfileSchema,
     errors=(403, 404), response=ProfileOutSchema)
def put_profile(agent_id: int) -> Response:
    changes = parse_voice_parameters(ProfileSchema(), partial=True)
    return ok(preferences.update_profile(agent_id, current_user_id(), changes).to_dict())
