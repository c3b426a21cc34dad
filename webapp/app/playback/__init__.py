from flask import Blueprint

bp = Blueprint("playback", __name__, url_prefix="/api/voice")

from webapp.app.playback import routes  # noqa: E402,F401
