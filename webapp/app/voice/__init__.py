from flask import Blueprint

bp = Blueprint("voice", __name__)

from webapp.app.voice import emotion_routes, routes  # noqa: E402,F401
