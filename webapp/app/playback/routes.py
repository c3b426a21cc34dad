"""Playback sessions: a conversation's messages played in order or shuffled, with play,
pause, stop, seek, next and previous."""

from flask import Response
from flask_jwt_extended import jwt_required

from webapp.app.api import ok
from webapp.app.openapi import doc
from webapp.app.playback import bp
from webapp.app.playback.schemas import (
    PlaybackCreateSchema,
    PlaybackDeletedSchema,
    PlaybackSchema,
    PlaybackUpdateSchema,
)
from webapp.app.services.conversation import playback
from webapp.app.web import current_user_id, parse_voice_parameters


@bp.post("/playback/session")
@jwt_required()
@doc("Create a playback session over a session's messages", tag="playback",
     body=PlaybackCreateSchema, response=PlaybackSchema, errors=(404,))
def create_playback() -> Response:
    args = parse_voice_parameters(PlaybackCreateSchema())
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
    args = parse_voice_parameters(PlaybackUpdateSchema())
    return ok(playback.act(row, args["action"], args["position"], args["messageId"]).to_dict())


@bp.delete("/playback/session/<session_id>")
@jwt_required()
@doc("Delete a playback session", tag="playback", errors=(404,),
     response=PlaybackDeletedSchema)
def delete_playback(session_id: str) -> Response:
    return ok(playback.delete(playback.get_owned(session_id, current_user_id())))
