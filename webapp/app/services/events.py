"""Server-sent events of a session (seed 002's six voice events), across processes.

Without Redis, subscribers are queues in this process; with ``REDIS_URL`` every web
process publishes to and listens on Redis pub/sub, so a stream served by one process
hears what another did.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from typing import Any

from flask import current_app

from webapp.app.concurrency import real_lock

CHANNEL = "tingshuo:events:{}"


class LocalBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[queue.Queue]] = {}
        self._lock = real_lock()

    def publish(self, channel: str, event: str, data: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subscribers.get(channel, ()))
        for target in targets:
            target.put((event, data))

    def listen(self, channel: str, keepalive: float) -> Iterator[tuple[str, Any] | None]:
        inbox: queue.Queue = queue.Queue()
        with self._lock:
            self._subscribers.setdefault(channel, set()).add(inbox)
        try:
            while True:
                try:
                    yield inbox.get(timeout=keepalive)
                except queue.Empty:
                    yield None
        finally:
            with self._lock:
                self._subscribers.get(channel, set()).discard(inbox)


class RedisBus:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)

    def publish(self, channel: str, event: str, data: dict[str, Any]) -> None:
        self._client.publish(CHANNEL.format(channel), json.dumps({"event": event, "data": data}))

    def listen(self, channel: str, keepalive: float) -> Iterator[tuple[str, Any] | None]:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL.format(channel))
        try:
            quiet_since = time.monotonic()
            while True:
                message = pubsub.get_message(timeout=min(keepalive, 1.0))
                if message is not None and message["type"] == "message":
                    payload = json.loads(message["data"])
                    quiet_since = time.monotonic()
                    yield payload["event"], payload["data"]
                elif time.monotonic() - quiet_since >= keepalive:
                    quiet_since = time.monotonic()
                    yield None
        finally:
            pubsub.close()


def build_bus(redis_url: str | None) -> LocalBus | RedisBus:
    return RedisBus(redis_url) if redis_url else LocalBus()


def publish(session_id: str | None, event: str, data: dict[str, Any]) -> None:
    """Tell a session's stream; without a session id nothing is told."""
    if session_id:
        current_app.extensions["events"].publish(str(session_id), event, data)


def sse_stream(bus: LocalBus | RedisBus, session_id: str,
               keepalive: float = 15.0) -> Iterator[str]:
    """The text of an SSE response: events as they come, a comment while it is quiet."""
    yield ": connected\n\n"
    for item in bus.listen(session_id, keepalive):
        if item is None:
            yield ": keep-alive\n\n"
            continue
        event, data = item
        yield f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
