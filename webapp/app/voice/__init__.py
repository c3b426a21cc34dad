from flask import Blueprint

bp = Blueprint("voice", __name__)

from webapp.app.voice import routes  # noqa: E402,F401
