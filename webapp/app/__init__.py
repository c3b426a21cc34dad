"""The Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import Celery, Task
from flask import Flask, Response

from config import Config
from webapp.app import extensions
from webapp.app.access_log import redact_root_handlers
from webapp.app.api import error_response, register_errorhandlers
from webapp.app.errors import ApiError
from webapp.app.extensions import db, jwt, limiter, migrate, socketio
from webapp.app.schemas import IdConverter
from webapp.app.security import register_security
from webapp.app.sockets import register_sockets


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build an app from the environment, with ``overrides`` on top (tests, scripts)."""
    config = Config()
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    config.check()
    app = Flask(__name__, instance_path=str(config.INSTANCE_DIR))
    app.url_map.converters["int"] = IdConverter
    app.config.update(config.as_mapping())
    app.json.ensure_ascii = False
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact_root_handlers()
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_jwt_errors()
    register_sockets(app)
    register_security(app)
    return app


def register_extensions(app: Flask) -> None:
    from webapp.app import database
    from webapp.app.providers import ProviderRegistry
    from webapp.app.services.platform.counts import CountCache
    from webapp.app.services.platform.limits import Limits
    from webapp.app.services.sessions.events import build_bus
    from webapp.app.storage import build_storage

    database.prepare(app)
    db.init_app(app)
    database.install(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../../migrations"),
                     render_as_batch=True)
    jwt.init_app(app)
    limiter.init_app(app)
    socketio.init_app(app, message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"],
                      channel=app.config["SOCKETIO_CHANNEL"],
                      async_mode=app.config["SOCKETIO_ASYNC_MODE"] or _default_async_mode(),
                      cors_allowed_origins="*",
                      max_http_buffer_size=app.config["WS_MAX_MESSAGE_BYTES"])
    app.wsgi_app = _write_as_made(app.wsgi_app)
    app.extensions["storage"] = build_storage(app.config)
    app.extensions["counts"] = CountCache(app.config["REDIS_URL"] or None)
    app.extensions["events"] = build_bus(app.config["REDIS_URL"] or None)
    app.extensions["limits"] = Limits(app.config)
    app.extensions["providers"] = ProviderRegistry(app.config)
    celery_init_app(app)
    if app.config["STORAGE_BACKEND"] == "local":
        app.config["STORAGE_DIR"].mkdir(parents=True, exist_ok=True)


def celery_init_app(app: Flask) -> Celery:
    """Flask's Celery pattern: every task runs inside this app's context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    celery.conf.update(include=["webapp.app.tasks"])
    celery.set_default()
    app.extensions["celery"] = celery
    extensions.celery_app = celery
    import webapp.app.tasks  # noqa: F401  (registers the shared tasks)

    return celery


def register_blueprints(app: Flask) -> None:
    from webapp.app.auth import bp as auth_bp
    from webapp.app.console import bp as console_bp
    from webapp.app.file import bp as file_bp
    from webapp.app.keys import bp as keys_bp
    from webapp.app.openai_api import bp as openai_bp
    from webapp.app.playback import bp as playback_bp
    from webapp.app.role import bp as role_bp
    from webapp.app.session import bp as session_bp
    from webapp.app.speech import bp as speech_bp
    from webapp.app.system import bp as system_bp
    from webapp.app.voice import bp as voice_bp

    for blueprint in (auth_bp, file_bp, system_bp, voice_bp, role_bp, session_bp, speech_bp,
                      playback_bp, keys_bp, openai_bp, console_bp):
        app.register_blueprint(blueprint)


def register_jwt_errors() -> None:
    """JWT failures in the same envelope as everything else; a token counts only while
    its user exists (a forged or a deleted user's ``sub`` is a 401, not a 500)."""
    from webapp.app.services.platform.users import existing_user

    def _error(key: str) -> Response:
        return error_response(ApiError(401, key, "UNAUTHORIZED"))

    jwt.unauthorized_loader(lambda _reason: _error("unauthorized"))
    jwt.expired_token_loader(lambda _header, _payload: _error("token_expired"))
    jwt.invalid_token_loader(lambda _reason: _error("token_invalid"))
    jwt.revoked_token_loader(lambda _header, _payload: _error("token_revoked"))
    jwt.needs_fresh_token_loader(lambda _header, _payload: _error("token_invalid"))
    jwt.token_verification_failed_loader(lambda _header, _payload: _error("token_invalid"))
    jwt.user_lookup_loader(lambda _header, payload: existing_user(payload))
    jwt.user_lookup_error_loader(lambda _header, _payload: _error("token_user_gone"))


def _default_async_mode() -> str:
    """eventlet when the process was patched for it (wsgi.py), plain threads otherwise."""
    from webapp.app.concurrency import is_green

    return "eventlet" if is_green() else "threading"



def _write_as_made(wsgi_app: Any) -> Any:
    """eventlet's server holds back a streamed body until 4 KB have gathered; SSE events
    and the first audio of a stream must not wait. Other servers ignore the key."""

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        environ["eventlet.minimum_write_chunk_size"] = 0
        return wsgi_app(environ, start_response)

    return app


def warm_up_in_background(app: Flask) -> None:
    """Load the local models while the server already answers (``/api/health`` says when)."""
    from webapp.app.audio import denoise, end_of_turn
    from webapp.app.concurrency import run_blocking, spawn

    registry = app.extensions["providers"]

    def warm() -> None:
        try:
            warmed = run_blocking(registry.warm_up)
            if end_of_turn.available():  # a call's first pause is judged without a wait
                run_blocking(end_of_turn.warm_up)
                warmed.append("smart_turn")
            if app.config["CALL_NOISE_REDUCTION"] != "off" and denoise.available():
                run_blocking(denoise.warm_up)  # calls are filtered by default
                warmed.append("deepfilternet")
            logging.getLogger(__name__).info("warmed up: %s", ", ".join(warmed))
        except Exception:
            logging.getLogger(__name__).exception("warming up the engines failed")

    spawn(warm)
