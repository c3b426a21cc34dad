"""Services a test or a benchmark runs for itself: a Redis server it may stop and start
again, and an S3 endpoint (moto).

The shared MariaDB and Redis of a machine may serve other people's work, so what must
be restarted or filled with load is started here instead."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.helpers.processes import Process, answers, free_port

S3_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class RedisServer:
    """``redis-server`` on a free port of 127.0.0.1, with an append-only file (synced
    every second, as production runs it) so that a restart keeps queued jobs."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install "
                               "redis-server)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tingshuo-redis-"))
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
                   str(self.dir), "--appendonly", "yes", "--appendfsync", "everysec",
                   "--save", "", "--protected-mode", "no"]
        self.process = Process("redis-server", command, dict(os.environ),
                               self.dir / "redis.log", self._answers_ping, start_timeout=15)

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process.running

    def start(self) -> RedisServer:
        self.process.start()
        return self

    def stop(self) -> None:
        self.process.stop(timeout=10)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MotoS3:
    """A moto S3 server in a process of its own, so it takes no time from the caller's
    threads. It checks no signatures (the app's own are tested apart)."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                   str(self.port)]
        self.process = Process("moto S3 server", command, dict(os.environ), log,
                               answers(self.endpoint, lambda _: True), start_timeout=30)

    def __enter__(self) -> MotoS3:
        self.process.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.process.stop(timeout=10)


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client for the moto server at ``endpoint``."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **S3_CREDENTIALS)


def new_bucket(endpoint: str, prefix: str) -> dict[str, str]:
    """A fresh bucket at ``endpoint``; the app's ``S3_*`` settings for it."""
    bucket = "tingshuo-" + uuid.uuid4().hex[:8]
    s3_client(endpoint).create_bucket(Bucket=bucket)
    return {"STORAGE_BACKEND": "s3", "S3_BUCKET": bucket, "S3_ENDPOINT_URL": endpoint,
            "S3_ACCESS_KEY_ID": "test", "S3_SECRET_ACCESS_KEY": "test", "S3_PREFIX": prefix}
