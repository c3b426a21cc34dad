"""Bare extension instances; ``create_app`` binds them to an app."""

from datetime import datetime

from celery import Celery
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, registry


class Base(DeclarativeBase):
    """Timestamps keep microseconds on MySQL too (its DATETIME drops them by default), so
    ordering by time holds within a second."""

    registry = registry(
        type_annotation_map={datetime: DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")})


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
jwt = JWTManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
socketio = SocketIO()
celery_app: Celery | None = None
