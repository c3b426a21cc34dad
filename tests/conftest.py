"""Fixtures: an app per test on SQLite and on MariaDB (migrations applied with
``upgrade``), clients, users, audio, a moto S3 server, Redis.

Set ``REQUIRE_SERVICES=1`` (CI does) to turn a missing MariaDB, Redis or S3 into a
failure instead of a skip.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect, text

from tests.contract import ContractClient
from webapp.app import audio, create_app
from webapp.app.extensions import db

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
MYSQL_URL = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ROOT = Path(__file__).resolve().parent.parent
# Every app, web process and worker a test starts refuses to wait while holding writes.
os.environ["DB_WAIT_CHECK"] = "raise"


def service_missing(what: str, reason: object) -> None:
    """Skip locally, fail under REQUIRE_SERVICES=1."""
    message = f"{what} unavailable: {reason}"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


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
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
        for table in inspect(conn).get_table_names():
            if table != "alembic_version":
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


@pytest.fixture
def app_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        settings = {"SQLALCHEMY_DATABASE_URI": database_url, "INSTANCE_DIR": tmp_path,
                    "STORAGE_DIR": tmp_path / "storage", "TMP_DIR": tmp_path / "tmp",
                    "MODEL_CACHE_DIR": ROOT / "instance" / "models",
                    "WHISPER_MODEL_DIR": str(ROOT / "instance" / "models" / "whisper-base"),
                    "BASE_URL": "http://tingshuo.test", "RATELIMIT_ENABLED": False,
                    "TESTING": True}
        settings.update(overrides)
        app = create_app(settings)
        app.test_client_class = ContractClient
        apps.append(app)
        return app

    yield make
    for app in apps:
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


def tone(seconds: float = 2.0, fmt: str = "wav", rate: int = 16000, freq: float = 220.0) -> bytes:
    """A harmonic tone with a syllable-like envelope, encoded as ``fmt``."""
    t = np.arange(int(seconds * rate)) / rate
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    signal = sum(np.sin(2 * np.pi * freq * k * t) / k for k in (1, 2, 3)) * 0.2 * envelope
    pcm = audio.float_to_pcm(signal)
    if fmt in ("mp3", "wav", "opus"):
        return audio.encode(pcm, rate, fmt)
    return _encode_with_container(pcm, rate, fmt)


def _encode_with_container(pcm: bytes, rate: int, fmt: str) -> bytes:
    import av

    container_fmt, codec = {"flac": ("flac", "flac"), "m4a": ("ipod", "aac"),
                            "aac": ("adts", "aac"), "webm": ("webm", "libopus"),
                            "ogg": ("ogg", "vorbis")}[fmt]
    buf = io.BytesIO()
    out = av.open(buf, mode="w", format=container_fmt)
    out_rate = 48000 if codec == "libopus" else rate
    layout = "stereo" if codec == "vorbis" else "mono"
    stream = out.add_stream(codec, rate=out_rate, layout=layout)
    if codec == "vorbis":
        stream.codec_context.options = {"strict": "experimental"}
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=layout,
                                  rate=out_rate)
    frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, np.int16).reshape(1, -1),
                                       format="s16", layout="mono")
    frame.sample_rate = rate
    for piece in [*resampler.resample(frame), *resampler.resample(None)]:
        for packet in stream.encode(piece):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return buf.getvalue()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (it checks no signatures: ours are tested apart)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        service_missing("moto[server]", exc)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_settings(s3_server: str) -> dict[str, Any]:
    import boto3

    bucket = "tingshuo-" + uuid.uuid4().hex[:8]
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test",
                 ).create_bucket(Bucket=bucket)
    return {"STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": s3_server,
            "S3_ACCESS_KEY_ID": "test", "S3_SECRET_ACCESS_KEY": "test", "S3_PREFIX": "t/"}


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        service_missing("Redis", exc)
    return REDIS_URL


only_mysql = pytest.mark.parametrize("database_url", ["mysql"], indirect=True)


@pytest.fixture(scope="session")
def fake_dashscope() -> Iterator[Any]:
    """The fake DashScope server (a subprocess) that the real SDK talks to."""
    from tests.fakes.fake_dashscope import start_fake_dashscope

    with start_fake_dashscope(frame_delay=0.002, deploy_seconds=0.3, token_delay=0.005) as fake:
        yield fake


def dashscope_settings(fake: Any) -> dict[str, str]:
    return {"DASHSCOPE_API_KEY": fake.api_key, "DASHSCOPE_HTTP_BASE_URL": fake.http_url,
            "DASHSCOPE_WEBSOCKET_BASE_URL": fake.ws_url}


class Stack:
    """The production shape, on this machine: web process under eventlet, a Celery
    worker, MariaDB, Redis and (fake) DashScope."""

    def __init__(self, url: str, url_b: str, env: dict[str, str],
                 logs: dict[str, Path]) -> None:
        self.url = url
        self.url_b = url_b
        self.env = env
        self.logs = logs

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-4000:]


def spawn_logged(command: list[str], env: dict[str, str], log_path: Path) -> Any:
    import subprocess

    with open(log_path, "wb") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def wait_until_ready(ready: Callable[[], bool], proc: Any, what: str, log_path: Path,
                timeout: float = 90) -> None:
    import time

    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"{what} did not start:\n" + log_path.read_text()[-3000:])
        time.sleep(0.2)


def worker_command(queue: str) -> list[str]:
    """A Celery worker as the stack runs it: one task at a time, on ``queue``."""
    import sys

    return [sys.executable, "-m", "celery", "-A", "celery_worker:celery_app", "worker",
            "--pool=solo", "--concurrency=1", "-Q", queue, "--loglevel=INFO", "-E",
            "--without-gossip", "--without-mingle"]


def stop_process(proc: Any) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def production_stack(mysql_database: str, redis_url: str, fake_dashscope: Any,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two web processes and a worker share the MariaDB test database, a storage folder
    and Redis (Socket.IO rooms and SSE streams cross processes through it).

    Tests that use it must not truncate the database while it works: they take
    ``production_stack`` (not ``database_url``) and make their own users.
    """
    import sys

    import requests

    from bench.server import free_port

    work = tmp_path_factory.mktemp("stack")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": mysql_database, "REDIS_URL": redis_url,
           "CELERY_QUEUE": "test-" + uuid.uuid4().hex[:8], "STORAGE_DIR": str(work / "storage"),
           "INSTANCE_DIR": str(work), "BASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port),
           "MODEL_CACHE_DIR": str(ROOT / "instance" / "models"), "RATELIMIT_ENABLED": "false",
           "SECRET_KEY": "stack-secret-0123456789abcdef", "LOG_LEVEL": "INFO",
           "JWT_SECRET_KEY": "stack-jwt-secret-0123456789abcdef",
           **dashscope_settings(fake_dashscope)}
    logs = {"worker": work / "worker.log", "web": work / "web.log"}
    worker = spawn_logged(worker_command(env["CELERY_QUEUE"]), env, logs["worker"])
    wait_until_ready(lambda: b"ready." in logs["worker"].read_bytes(), worker, "celery worker",
                logs["worker"])
    port_b = free_port()
    url_b = f"http://127.0.0.1:{port_b}"
    logs["web_b"] = work / "web_b.log"
    webs = [spawn_logged([sys.executable, "wsgi.py"], env, logs["web"]),
            spawn_logged([sys.executable, "wsgi.py"], {**env, "PORT": str(port_b)},
                         logs["web_b"])]

    def ready(base: str) -> Callable[[], bool]:
        def check() -> bool:
            try:
                return requests.get(base + "/api/health", timeout=1).ok
            except requests.RequestException:
                return False

        return check

    wait_until_ready(ready(url), webs[0], "web process", logs["web"])
    wait_until_ready(ready(url_b), webs[1], "second web process", logs["web_b"])
    yield Stack(url, url_b, env, logs)
    for proc in (*webs, worker):
        stop_process(proc)


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


def wait_for_job(client: FlaskClient, headers: dict[str, str], job_id: str,
                 timeout: float = 120) -> dict[str, Any]:
    """Poll ``GET /api/jobs/<id>`` until the job ends."""
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=headers).get_json()["data"]
        if job["status"] in ("succeeded", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")
