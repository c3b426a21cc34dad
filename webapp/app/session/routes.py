"""Sessions, message history and deletes, and a session's SSE stream of voice events."""

from flask import Response, current_app, request
from flask_jwt_extended import jwt_required

from webapp.app.api import ok, parse, streaming_response
from webapp.app.openapi import EVENTS, NOTHING, doc
from webapp.app.pagination import page_args
from webapp.app.services.platform import limits
from webapp.app.services.sessions import conversations, events
from webapp.app.session import bp
from webapp.app.session.schemas import (
    DeletedCountSchema,
    MessagePageSchema,
    MessageQuerySchema,
    MessageSchema,
    SessionCreateSchema,
    SessionPageSchema,
    SessionQuerySchema,
    SessionSchema,
)
from webapp.app.web import current_user_id, rate_limited


@bp.post("/sessions")
@jwt_required()
@rate_limited("sessions")
@doc("Start a session (optionally with a role and a voice)", tag="sessions",
     body=SessionCreateSchema, response=SessionSchema, errors=(404,))
def create_session() -> Response:
    args = parse(SessionCreateSchema())
    return ok(conversations.create(current_user_id(), **args).to_dict())


@bp.get("/sessions")
@jwt_required()
@doc("My sessions, newest first (optionally with one role)", tag="sessions",
     query=SessionQuerySchema, response=SessionPageSchema)
def list_sessions() -> Response:
    args = parse(SessionQuerySchema(), request.args.to_dict())
    return ok(conversations.page(current_user_id(), *page_args(request.args),
                                 role_id=args["role_id"]))


@bp.get("/sessions/<session_id>")
@jwt_required()
@doc("One of my sessions", tag="sessions", response=SessionSchema, errors=(404,))
def get_session(session_id: str) -> Response:
    return ok(conversations.get_owned(session_id, current_user_id()).to_dict())


@bp.post("/sessions/<session_id>/end")
@jwt_required()
@doc("End a session", tag="sessions", response=SessionSchema, errors=(404,))
def end_session(session_id: str) -> Response:
    session = conversations.end(conversations.get_owned(session_id, current_user_id()))
    return ok(session.to_dict(), message="session_ended")


@bp.delete("/sessions/<session_id>")
@jwt_required()
@doc("Delete a session, its messages and their audio", tag="sessions", errors=(404,),
     response=NOTHING)
def delete_session(session_id: str) -> Response:
    conversations.delete(conversations.get_owned(session_id, current_user_id()))
    return ok(None, message="deleted")


@bp.get("/sessions/<session_id>/messages")
@jwt_required()
@doc("A session's messages, oldest first; filters voice_id, type, role", tag="messages",
     query=MessageQuerySchema, response=MessagePageSchema, errors=(404,))
def list_messages(session_id: str) -> Response:
    page_no, size = page_args(request.args)
    args = parse(MessageQuerySchema(), request.args.to_dict())
    session = conversations.get_owned(session_id, current_user_id())
    return ok(conversations.messages_page(session, page_no, size, voice_type=args["voice_id"],
                                          type=args["type"], role=args["role"]))


@bp.delete("/sessions/<session_id>/messages")
@jwt_required()
@doc("Delete every message of a session and their audio", tag="messages", errors=(404,),
     response=DeletedCountSchema)
def delete_messages(session_id: str) -> Response:
    count = conversations.delete_messages(conversations.get_owned(session_id, current_user_id()))
    return ok({"deleted": count}, message="deleted")


@bp.get("/messages/<message_id>")
@jwt_required()
@doc("One message", tag="messages", response=MessageSchema, errors=(404,))
def get_message(message_id: str) -> Response:
    message = conversations.get_message(message_id, current_user_id())
    return ok(conversations.render_message(message))


@bp.delete("/messages/<message_id>")
@jwt_required()
@doc("Delete a message and its audio", tag="messages", errors=(404,), response=NOTHING)
def delete_message(message_id: str) -> Response:
    conversations.delete_message(conversations.get_message(message_id, current_user_id()))
    return ok(None, message="deleted")


@bp.get("/sessions/<session_id>/stream")
@jwt_required(locations=["headers", "query_string"])
@doc("Server-sent voice events of a session; EventSource may pass ?token=",
     tag="sessions", errors=(404, 429), media=EVENTS)
def stream(session_id: str) -> Response:
    user_id = current_user_id()
    session = conversations.get_owned(session_id, user_id)
    slot = limits.hold("streams", user_id, limits.stream_seconds())
    subscription = current_app.extensions["events"].subscribe(session.id)
    response = streaming_response(limits.renewed_while(slot, events.sse_stream(subscription)),
                                  "text/event-stream")
    # Run when the server closes the response: the client left, or never read it.
    response.call_on_close(slot.release)
    return response
