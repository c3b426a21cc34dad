"""The Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import Celery, Task
from flask import Flask, Response

from config import Config
from webapp.app import extensions
from webapp.app.api import ApiError, error_response, register_errorhandlers
from webapp.app.extensions import db, jwt, limiter, migrate, socketio


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build an app from the environment, with ``overrides`` on top (tests, scripts)."""
    config = Config()
    for key, value in (overrides or {}).items():
        setattr(config, key, value)
    config.check()
    app = Flask(__name__, instance_path=str(config.INSTANCE_DIR))
    app.config.update(config.as_mapping())
    app.json.ensure_ascii = False
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_jwt_errors()
    return app


def register_extensions(app: Flask) -> None:
    from webapp.app.providers import ProviderRegistry
    from webapp.app.services.counts import CountCache
    from webapp.app.storage import build_storage

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../../migrations"),
                     render_as_batch=True)
    jwt.init_app(app)
    limiter.init_app(app)
    socketio.init_app(app, message_queue=app.config["SOCKETIO_MESSAGE_QUEUE"],
                      async_mode=app.config["SOCKETIO_ASYNC_MODE"] or _default_async_mode(),
                      cors_allowed_origins="*")
    app.extensions["storage"] = build_storage(app.config)
    app.extensions["counts"] = CountCache(app.config["REDIS_URL"] or None)
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
    from webapp.app.file import bp as file_bp
    from webapp.app.role import bp as role_bp
    from webapp.app.system import bp as system_bp
    from webapp.app.voice import bp as voice_bp

    for blueprint in (auth_bp, file_bp, system_bp, voice_bp, role_bp):
        app.register_blueprint(blueprint)


def register_jwt_errors() -> None:
    """JWT failures in the same envelope as everything else."""

    def _error(key: str) -> Response:
        return error_response(ApiError(401, key, "UNAUTHORIZED"))

    jwt.unauthorized_loader(lambda _reason: _error("unauthorized"))
    jwt.expired_token_loader(lambda _header, _payload: _error("token_expired"))
    jwt.invalid_token_loader(lambda _reason: _error("token_invalid"))
    jwt.revoked_token_loader(lambda _header, _payload: _error("token_revoked"))
    jwt.needs_fresh_token_loader(lambda _header, _payload: _error("token_invalid"))
    jwt.token_verification_failed_loader(lambda _header, _payload: _error("token_invalid"))


def _default_async_mode() -> str:
    """eventlet when the process was patched for it (wsgi.py), plain threads otherwise."""
    from webapp.app.concurrency import is_green

    return "eventlet" if is_green() else "threading"

