from flask import Blueprint

bp = Blueprint("session", __name__, url_prefix="/api")

from webapp.app.session import routes  # noqa: E402,F401
