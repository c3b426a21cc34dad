"""OpenAI's audio API under ``/v1`` (contract §9), for the clients people already use."""

from flask import Blueprint

bp = Blueprint("openai_api", __name__, url_prefix="/v1")

from webapp.app.openai_api import realtime, routes  # noqa: E402,F401
