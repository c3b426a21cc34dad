"""The production stack with handles to break it: its own Redis, MariaDB and S3 behind
proxies that can be cut, its own fake DashScope and OpenAI-compatible servers, a worker
that can be killed, and two web processes configured as two deployments:

- ``plain``: LLM over the OpenAI-compatible API, no fallback engines;
- ``fallback``: Qwen over DashScope, ``TTS_FALLBACK=local``, ``STT_FALLBACK=whisper``.

Both share the database, the storage, Redis (Socket.IO rooms, jobs) and the worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy.engine import make_url

from bench.infra import RedisServer
from bench.server import free_port
from tests.conftest import (
    ROOT,
    dashscope_settings,
    spawn_logged,
    stop_process,
    wait_until_ready,
    worker_command,
)
from tests.faults.infra import TcpProxy

TIMEOUT = 3
"""DASHSCOPE_TIMEOUT and LLM_TIMEOUT of the stack: what a stalled provider costs."""

LLM_REPLY = ("Hello there, I heard you. This is the second sentence of my answer. "
             "Here comes a third one. And this is the last one.")


@dataclass
class FaultStack:
    plain: str
    fallback: str
    env: dict[str, str]
    redis: RedisServer
    db_proxy: TcpProxy
    s3_proxy: TcpProxy
    dashscope: Any
    openai: Any
    work: Path
    s3_bucket: str
    s3_direct: str
    database_direct: str
    logs: dict[str, Path] = field(default_factory=dict)
    worker: Any = None

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-4000:]

    def start_worker(self, name: str = "worker") -> None:
        """Start a worker logging to ``<name>.log`` and wait until it takes jobs."""
        log = self.logs.setdefault(name, self.work / f"{name}.log")
        self.worker = spawn_logged(worker_command(self.env["CELERY_QUEUE"]), self.env, log)
        wait_until_ready(lambda: b"ready." in log.read_bytes(), self.worker, "celery worker",
                         log)

    def kill_worker(self) -> None:
        """SIGKILL: the worker gets no chance to acknowledge, requeue or clean up."""
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def objects(self, prefix: str = "") -> set[str]:
        """Keys in the stack's bucket, read past the proxy."""
        import boto3

        client = boto3.client("s3", endpoint_url=self.s3_direct, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.s3_bucket, Prefix=self.env["S3_PREFIX"] + prefix)
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def rows(self, sql: str, **params: Any) -> list[Any]:
        """Query MariaDB past the proxy."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_direct)
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(sql), params))
        finally:
            engine.dispose()

    def reset_faults(self) -> None:
        self.dashscope.reset()
        self.openai.reset()
        self.db_proxy.restore()
        self.s3_proxy.restore()
        if self.redis.proc is None:
            self.redis.start()


def _answering(base: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(base + "/api/health", timeout=1).ok
        except requests.RequestException:
            return False

    return check


@contextmanager
def fault_stack(mysql_url: str, s3_endpoint: str, work: Path) -> Iterator[FaultStack]:
    import boto3

    from tests.fakes.fake_dashscope import start_fake_dashscope
    from tests.fakes.fake_openai import start_fake_openai

    redis = RedisServer().start()
    database = make_url(mysql_url)
    db_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 3306).start()
    s3_host, s3_port = s3_endpoint.removeprefix("http://").split(":")
    s3_proxy = TcpProxy(s3_host, int(s3_port)).start()
    bucket = "faults-" + uuid.uuid4().hex[:8]
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                 aws_access_key_id="test", aws_secret_access_key="test").create_bucket(
        Bucket=bucket)
    dashscope = start_fake_dashscope(frame_delay=0.002, deploy_seconds=0.3, token_delay=0.005)
    openai = start_fake_openai(reply=LLM_REPLY, chunk_delay=0.01)
    ports = (free_port(), free_port())
    urls = tuple(f"http://127.0.0.1:{port}" for port in ports)
    env = {**os.environ,
           "DATABASE_URL": database.set(port=db_proxy.port).render_as_string(
               hide_password=False),
           "REDIS_URL": redis.url(), "CELERY_QUEUE": "faults-" + uuid.uuid4().hex[:8],
           "S3_BUCKET": bucket, "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_proxy.port}",
           "S3_ACCESS_KEY_ID": "test", "S3_SECRET_ACCESS_KEY": "test", "S3_PREFIX": "f/",
           "S3_TIMEOUT": "3", "DB_READ_TIMEOUT": "10", "DB_CONNECT_TIMEOUT": "3",
           "INSTANCE_DIR": str(work), "HOST": "127.0.0.1",
           "MODEL_CACHE_DIR": str(ROOT / "instance" / "models"),
           "RATELIMIT_ENABLED": "true", "RATELIMIT_LOGIN": "1000 per minute",
           "SECRET_KEY": "faults-secret-0123456789abcdef", "LOG_LEVEL": "INFO",
           "JWT_SECRET_KEY": "faults-jwt-secret-0123456789abcdef",
           "DASHSCOPE_TIMEOUT": str(TIMEOUT), "LLM_TIMEOUT": str(TIMEOUT),
           "JOB_TIME_LIMIT": "120", "CELERY_VISIBILITY_TIMEOUT": "6",
           "LLM_BASE_URL": openai.base_url, "LLM_API_KEY": openai.api_key,
           "LLM_MODEL": "fake-model", "LLM_ENGINE": "openai", "TTS_FALLBACK": "",
           "STT_FALLBACK": "", **dashscope_settings(dashscope)}
    for key in ("STORAGE_DIR", "TMP_DIR", "PORT"):
        env.pop(key, None)
    env["BASE_URL"] = urls[0]
    stack = FaultStack(plain=urls[0], fallback=urls[1], env=env, redis=redis,
                       db_proxy=db_proxy, s3_proxy=s3_proxy, dashscope=dashscope,
                       openai=openai, work=work, s3_bucket=bucket, s3_direct=s3_endpoint,
                       database_direct=mysql_url,
                       logs={"plain": work / "plain.log", "fallback": work / "fallback.log"})
    webs: list[Any] = []
    try:
        stack.start_worker()
        deployments = {
            "plain": {},
            "fallback": {"LLM_ENGINE": "qwen", "TTS_FALLBACK": "local",
                         "STT_FALLBACK": "whisper"},
        }
        for (name, extra), port, url in zip(deployments.items(), ports, urls, strict=True):
            webs.append(spawn_logged([sys.executable, "wsgi.py"],
                                     {**env, **extra, "PORT": str(port), "BASE_URL": url},
                                     stack.logs[name]))
        for proc, name, url in zip(webs, deployments, urls, strict=True):
            wait_until_ready(_answering(url), proc, f"{name} web process", stack.logs[name], 120)
        yield stack
    finally:
        for proc in webs:
            stop_process(proc)
        if stack.worker is not None and stack.worker.poll() is None:
            stop_process(stack.worker)
        dashscope.stop()
        openai.stop()
        db_proxy.close()
        s3_proxy.close()
        redis.close()


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout} s")
