from flask import Blueprint

bp = Blueprint("speech", __name__, url_prefix="/api")

from webapp.app.speech import routes  # noqa: E402,F401
