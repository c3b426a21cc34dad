"""The blueprint the plain WebSockets hang their routes on (``websocket_chat`` and
``websocket_call``): who may open one, the stream place each holds, and registration."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, g
from flask_sock import Sock

from webapp.app.api import error_response, language
from webapp.app.errors import ApiError
from webapp.app.services.platform import limits
from webapp.app.sockets.auth import token_from, user_from_token

bp = Blueprint("chat", __name__)
sock = Sock()


@bp.before_request
def _authenticate() -> Response | None:
    """Refuse the upgrade without a valid token (HTTP 401), or when the user has all
    their streams open already (429, ``USER_MAX_STREAMS``)."""
    user_id = user_from_token(token_from())
    if user_id is None:
        return error_response(ApiError(401, "unauthorized", "UNAUTHORIZED"))
    try:
        g.ws_slot = limits.hold("streams", user_id, limits.stream_seconds())
    except ApiError as exc:
        return error_response(exc)
    g.ws_user_id = user_id
    g.ws_lang = language()
    return None


@bp.teardown_request
def _close(_exc: BaseException | None) -> None:
    """The socket is closed: its stream's place is free again."""
    slot = g.pop("ws_slot", None)
    if slot is not None:
        slot.release()


def register_websockets(app: Flask) -> None:
    """Serve the blueprint's routes; the modules that add them are imported first."""
    app.register_blueprint(bp)
    # simple-websocket closes the connection (1009) as soon as a message grows past this,
    # before it is buffered whole, decoded or parsed.
    app.config["SOCK_SERVER_OPTIONS"] = {**app.config.get("SOCK_SERVER_OPTIONS", {}),
                                         "max_message_size": app.config["WS_MAX_MESSAGE_BYTES"]}
    sock.init_app(app)
