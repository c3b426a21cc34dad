from flask import Blueprint

bp = Blueprint("file", __name__)

from webapp.app.file import routes  # noqa: E402,F401
