"""What every fake server subprocess has in common: how it serves and says it is ready,
its control endpoints, and its end."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.helpers.paths import ROOT


class FakeProcess:
    """A fake server running as a subprocess on 127.0.0.1, controlled over HTTP."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, api_key: str, log_path: Path
    ) -> None:
        self.process = process
        self.port = port
        self.api_key = api_key
        self.log_path = log_path
        self.root_url = f"http://127.0.0.1:{port}"
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.root_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with self._opener.open(request, timeout=10) as response:
            return json.loads(response.read().decode("utf-8"))

    def stats(self) -> dict[str, Any]:
        """What the server saw: call counts and the last requests."""
        return self._call("GET", "/__stats")

    def reset(self) -> None:
        """Forget counts and faults, so each test starts clean."""
        self._call("POST", "/__reset", {})

    def log_text(self) -> str:
        """The server's output so far, for failure messages."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the server (kill it if it lingers) and drop its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()



def launch(module: str, args: list[str], startup_timeout: float
           ) -> tuple[subprocess.Popen[bytes], int, Path]:
    """Run ``python -m module args`` and wait for its ``READY <port>`` line.

    Returns the process, its port and its log; a server that never gets ready is
    stopped and reported with its log.
    """
    log_fd, log_name = tempfile.mkstemp(prefix=module.rsplit(".", 1)[-1] + "-", suffix=".log")
    log_path = Path(log_name)
    with os.fdopen(log_fd, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args], cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=log_file, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    lines: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: lines.put(_first_line(process)), daemon=True).start()
    try:
        line = lines.get(timeout=startup_timeout).decode("utf-8").strip()
    except queue.Empty:
        line = ""
    if not line.startswith("READY "):
        server = FakeProcess(process, 0, "", log_path)
        output = server.log_text()
        server.stop()
        raise RuntimeError(f"{module} did not start (got {line!r}):\n{output}")
    return process, int(line.split()[1]), log_path


def _first_line(process: subprocess.Popen[bytes]) -> bytes:
    return process.stdout.readline() if process.stdout is not None else b""


async def serve(app: web.Application, host: str, port: int) -> None:
    """In the fake's own process: listen, announce ``READY <port>`` on stdout (what
    ``launch`` waits for), then serve ``app`` until SIGTERM/SIGINT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {sock.getsockname()[1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
