"""Starting an engine host (a child program from ``hosts/``) and talking to it.

A child is started with one end of a socket pair; ``frames`` carries messages both ways.
A child may be started from any thread: its socket is the operating system's until
``adopt`` makes it this process's kind (green under eventlet, so that green threads wait
on it without holding up the loop). Callers on real OS threads (the thread pool) keep
the operating system's socket and block on it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from webapp.app.providers.hosts import frames

HOSTS = Path(__file__).with_name("hosts")


def _original(name: str) -> Any:
    """The unpatched module ``name`` (the module itself outside eventlet)."""
    if "eventlet" in sys.modules:
        from eventlet import patcher

        return patcher.original(name)
    return __import__(name)


class ChildProcess:
    """``python -I hosts/<program> <fd> <args>``: a plain interpreter (no Flask, no
    eventlet) whose only link to this process is ``sock``."""

    def __init__(self, program: str, *args: str) -> None:
        self.sock, theirs = _original("socket").socketpair()
        try:
            self.process = _original("subprocess").Popen(
                [sys.executable, "-I", str(HOSTS / program), str(theirs.fileno()), *args],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        finally:
            theirs.close()

    def adopt(self) -> None:
        """Make the socket green in an eventlet process (call it from the green side)."""
        self.sock = socket.socket(fileno=self.sock.detach())

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        frames.send(self.sock, header, body)

    def receive(self) -> tuple[dict[str, Any], bytes] | None:
        return frames.receive(self.sock)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """End the child now and reap it, so that none is left behind (quick: it is
        killed rather than waited for)."""
        self.sock.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
