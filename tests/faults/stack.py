"""The production stack with handles to break it: its own Redis, MariaDB and S3 behind
proxies that can be cut, its own fake DashScope and OpenAI-compatible servers, a worker
that can be killed, and two web processes configured as two deployments:

- ``plain``: LLM over the OpenAI-compatible API, no fallback engines;
- ``fallback``: Qwen over DashScope, ``TTS_FALLBACK=local``, ``STT_FALLBACK=whisper``.

Both share the database, the storage, Redis (Socket.IO rooms, jobs) and the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.faults.infra import TcpProxy
from tests.helpers.processes import Process, celery_worker, environment, start_all
from tests.helpers.services import RedisServer, new_bucket, s3_client
from tests.helpers.stacks import dashscope_settings, stack_settings
from tests.helpers.web_server import WebServer

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
    worker: Process | None = None

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-4000:]

    def start_worker(self, name: str = "worker") -> None:
        """Start a worker logging to ``<name>.log`` and wait until it takes jobs."""
        log = self.logs.setdefault(name, self.work / f"{name}.log")
        self.worker = celery_worker(self.env["CELERY_QUEUE"], self.env, log).start()

    def kill_worker(self) -> None:
        """SIGKILL: the worker gets no chance to acknowledge, requeue or clean up."""
        assert self.worker is not None
        self.worker.kill()

    def objects(self, prefix: str = "") -> set[str]:
        """Keys in the stack's bucket, read past the proxy."""
        pages = s3_client(self.s3_direct).get_paginator("list_objects_v2").paginate(
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
        if not self.redis.running:
            self.redis.start()


@contextmanager
def fault_stack(mysql_url: str, s3_endpoint: str, work: Path) -> Iterator[FaultStack]:
    from tests.fakes.fake_dashscope import start_fake_dashscope
    from tests.fakes.fake_openai import start_fake_openai

    redis = RedisServer().start()
    database = make_url(mysql_url)
    db_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 3306).start()
    s3_host, s3_port = s3_endpoint.removeprefix("http://").split(":")
    s3_proxy = TcpProxy(s3_host, int(s3_port)).start()
    s3 = new_bucket(s3_endpoint, "f/")
    dashscope = start_fake_dashscope(frame_delay=0.002, deploy_seconds=0.3, token_delay=0.005)
    openai = start_fake_openai(reply=LLM_REPLY, chunk_delay=0.01)
    settings = stack_settings(
        "faults", work,
        DATABASE_URL=database.set(port=db_proxy.port).render_as_string(hide_password=False),
        REDIS_URL=redis.url(), **{**s3, "S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_proxy.port}"},
        S3_TIMEOUT="3", DB_READ_TIMEOUT="10", DB_CONNECT_TIMEOUT="3",
        RATELIMIT_ENABLED="true", RATELIMIT_LOGIN="1000 per minute",
        RATELIMIT_REGISTER="1000 per minute",
        DASHSCOPE_TIMEOUT=str(TIMEOUT), LLM_TIMEOUT=str(TIMEOUT),
        JOB_TIME_LIMIT="120", CELERY_VISIBILITY_TIMEOUT="6",
        LLM_BASE_URL=openai.base_url, LLM_API_KEY=openai.api_key, LLM_MODEL="fake-model",
        LLM_ENGINE="openai", TTS_FALLBACK="", STT_FALLBACK="", **dashscope_settings(dashscope))
    # Storage is S3 and temporary files go to the instance folder, whatever the shell says.
    unset = ("STORAGE_DIR", "TMP_DIR", "PORT")
    deployments = {
        "plain": {},
        "fallback": {"LLM_ENGINE": "qwen", "TTS_FALLBACK": "local", "STT_FALLBACK": "whisper"},
    }
    webs = [WebServer(work, log=work / f"{name}.log", unset=unset, start_timeout=120,
                      name=f"{name} web process", **{**settings, **extra})
            for name, extra in deployments.items()]
    stack = FaultStack(plain=webs[0].url, fallback=webs[1].url,
                       env=environment({**settings, "BASE_URL": webs[0].url}, unset),
                       redis=redis, db_proxy=db_proxy, s3_proxy=s3_proxy, dashscope=dashscope,
                       openai=openai, work=work, s3_bucket=s3["S3_BUCKET"],
                       s3_direct=s3_endpoint, database_direct=mysql_url,
                       logs={name: web.log for name, web in zip(deployments, webs, strict=True)})
    try:
        stack.start_worker()
        start_all(webs)
        yield stack
    finally:
        for web in webs:
            web.stop()
        if stack.worker is not None:
            stack.worker.stop()
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
