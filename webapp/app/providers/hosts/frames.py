"""One message on a stream socket: a JSON header and a byte body, each with its length.

Both sides of an engine host use it; it imports only the standard library because the
child programs import it as a top-level module.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

_LENGTHS = struct.Struct("!II")


def send(sock: socket.socket, header: dict[str, Any], body: bytes = b"") -> None:
    """Write one message; callers sharing a socket hold a lock around it."""
    head = json.dumps(header, ensure_ascii=False).encode("utf-8")
    sock.sendall(_LENGTHS.pack(len(head), len(body)) + head + body)


def _exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, wanted = [], size
    while wanted:
        chunk = sock.recv(min(wanted, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        wanted -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> tuple[dict[str, Any], bytes] | None:
    """The next message, or None once the other side has closed the socket."""
    lengths = _exactly(sock, _LENGTHS.size)
    if lengths is None:
        return None
    head_size, body_size = _LENGTHS.unpack(lengths)
    head = _exactly(sock, head_size)
    body = _exactly(sock, body_size) if body_size else b""
    if head is None or body is None:
        return None
    return json.loads(head), body
