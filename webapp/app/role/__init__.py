from flask import Blueprint

bp = Blueprint("role", __name__, url_prefix="/api/role")

from webapp.app.role import routes  # noqa: E402,F401
