"""One way to run a child process for a test or a benchmark: its command, its
environment, a log file for its output, a check that says it is ready, and a stop that
does not hang. The web process, the Celery worker, Flower, Redis and the S3 server are
all started through ``Process``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

import requests

from tests.helpers.paths import ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(settings: dict[str, str], unset: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment less the names in ``unset``, plus ``settings``."""
    dropped = set(unset)
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, **settings}


class ProcessDidNotStart(RuntimeError):
    """The process exited, or was not ready in time; the message ends with its log."""


class Process:
    """``command`` run from the repository root with ``env``, its output in ``log``.

    ``start`` returns once ``ready()`` is true; a process that exits first or is not ready
    within ``start_timeout`` seconds is killed and reported with the end of its log.
    ``spawn`` and ``wait_ready`` are the two halves, for starting several at once. A
    stopped process can be started again (a restart). ``cwd`` may name another checkout
    of the repository (a benchmark's "before" figures)."""

    def __init__(self, what: str, command: list[str], env: dict[str, str], log: Path,
                 ready: Callable[[], bool], start_timeout: float = 90) -> None:
        self.what = what
        self.command = command
        self.env = env
        self.log = log
        self.ready = ready
        self.start_timeout = start_timeout
        self.popen: subprocess.Popen[bytes] | None = None
        self.cwd = ROOT

    def spawn(self) -> Process:
        with open(self.log, "ab") as log:
            self.popen = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def wait_ready(self) -> Process:
        assert self.popen is not None, "spawn first"
        deadline = time.monotonic() + self.start_timeout
        while not self.ready():
            if self.popen.poll() is not None or time.monotonic() > deadline:
                exited = self.popen.poll()
                self.kill()
                state = f"exited with {exited}" if exited is not None else (
                    f"was not ready within {self.start_timeout:g} s")
                raise ProcessDidNotStart(f"{self.what} {state}:\n{self.log_tail(3000)}")
            time.sleep(0.2)
        return self

    def start(self) -> Process:
        return self.spawn().wait_ready()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        if self.running:
            assert self.popen is not None
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.popen = None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up."""
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.popen = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


class Startable(Protocol):
    def spawn(self) -> object: ...

    def wait_ready(self) -> object: ...


def start_all(processes: Sequence[Startable]) -> None:
    """Spawn every process, then wait for each: they start side by side."""
    for process in processes:
        process.spawn()
    for process in processes:
        process.wait_ready()


def answers(url: str, healthy: Callable[[requests.Response], bool] = lambda r: r.ok
            ) -> Callable[[], bool]:
    """A readiness check: ``url`` answers (and the answer passes ``healthy``)."""

    def check() -> bool:
        try:
            return healthy(requests.get(url, timeout=2))
        except requests.RequestException:
            return False

    return check


def log_says(log: Path, text: bytes) -> Callable[[], bool]:
    """A readiness check: ``text`` has appeared in the process's log."""
    return lambda: log.exists() and text in log.read_bytes()


def celery_worker(queue: str, env: dict[str, str], log: Path) -> Process:
    """A Celery worker as the stack runs it: one task at a time, on ``queue``, sending
    task events (Flower reads them); ready once it says so."""
    command = [sys.executable, "-m", "celery", "-A", "celery_worker:celery_app", "worker",
               "--pool=solo", "--concurrency=1", "-Q", queue, "--loglevel=INFO", "-E",
               "--without-gossip", "--without-mingle"]
    return Process("celery worker", command, env, log, log_says(log, b"ready."))


def flower(port: int, env: dict[str, str], log: Path) -> Process:
    """Celery Flower on 127.0.0.1:``port``, ready once its API lists workers."""
    command = [sys.executable, "-m", "celery", "-A", "celery_worker:celery_app", "flower",
               f"--port={port}", "--address=127.0.0.1"]
    return Process("flower", command, env, log,
                   answers(f"http://127.0.0.1:{port}/api/workers"), start_timeout=60)
